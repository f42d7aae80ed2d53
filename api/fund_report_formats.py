"""The public fund report as CSV and as HTML pages (Simplified Chinese first): the report of a
month, the index of months, the page that says a month has no report, and the landing page.

Everything renders what the read model returned; nothing here computes a figure. A page's body is
server-rendered HTML (with an SVG chart) placed in the one layout by api/templates/public.html;
it reads offline, on a slow phone and on a laptop, without scripts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from api.spreadsheet import csv_document
from domain.money import FEN_PER_UNIT

SUMMARY_FIELDS = (
    "period", "opening_balance_fen", "donations_fen", "reimbursements_fen", "rebates_fen", "closing_balance_fen",
    "beans_outstanding", "welfare_outstanding", "liability_fen", "coverage_ratio", "chain_head", "events_count",
    "wishes_fulfilled",
)
TREE_HEAD_FIELDS = ("tree_size", "root_hash", "timestamp", "key_id", "signature")  # present once reports carry one
MERCHANT_FIELDS = ("merchant_id", "display_name", "redeemed", "reimbursement_fen", "rebate_fen")
HTML_LANGUAGES = {"zh": "zh-CN", "en": "en"}

# The page's words, Simplified Chinese first.
TEXT: dict[str, dict[str, str]] = {
    "title": {"zh": "金豆基金公示", "en": "Golden Bean Fund report"},
    "period": {"zh": "月份", "en": "Month"},
    "opening_balance_fen": {"zh": "期初余额", "en": "Opening balance"},
    "donations_fen": {"zh": "本月捐赠收入", "en": "Donations received"},
    "reimbursements_fen": {"zh": "兑付商户（本金）", "en": "Paid to merchants"},
    "rebates_fen": {"zh": "商户返利", "en": "Merchant rebates"},
    "closing_balance_fen": {"zh": "期末余额", "en": "Closing balance"},
    "beans_outstanding": {"zh": "流通中的金豆", "en": "Beans outstanding"},
    "welfare_outstanding": {"zh": "流通中的福利积分", "en": "Welfare credits outstanding"},
    "liability_fen": {"zh": "待兑付负债", "en": "Liability if all were redeemed"},
    "coverage_ratio": {"zh": "资金覆盖率", "en": "Coverage"},
    "not_applicable": {"zh": "无负债", "en": "nothing owed"},
    "chart": {"zh": "近一年收支（元）", "en": "Money in and out, last twelve months (yuan)"},
    "inflow": {"zh": "收入", "en": "In"},
    "outflow": {"zh": "支出", "en": "Out"},
    "merchants": {"zh": "本月兑付商户", "en": "Merchants paid this month"},
    "merchant": {"zh": "商户", "en": "Merchant"},
    "redeemed": {"zh": "兑付数量", "en": "Units"},
    "reimbursement_fen": {"zh": "兑付金额", "en": "Reimbursed"},
    "rebate_fen": {"zh": "返利", "en": "Rebate"},
    "no_merchants": {"zh": "本月没有兑付", "en": "No merchant was paid this month"},
    "seal": {"zh": "防篡改校验", "en": "Tamper seal"},
    "chain_head": {"zh": "哈希链头", "en": "Hash-chain head"},
    "events_count": {"zh": "截至本报告的记录数", "en": "Events up to this report"},
    "tree_head_explained": {
        "zh": "截至本报告，系统里的每一笔记录都是一棵默克尔树的叶子；上面这行数字是这棵树的“指纹”，"
              "由本社区的密钥签名。以后任何人改动这之前的任何一笔记录，指纹就对不上了。请保存或打印本页；"
              "志愿者可以在钱包里看到自己的每笔金豆是否“已记入公示账本 ✓”，审计人员可以用公开的校验工具"
              "核对签名和一致性证明。",
        "en": "Up to this report, every record is a leaf of one Merkle tree; the line above is that tree's "
              "fingerprint, signed with this deployment's key. Changing any earlier record later would no longer "
              "match it. Keep or print this page; volunteers see in their wallet whether each of their beans is "
              "'in the published ledger ✓', and auditors can check the signature and consistency proofs with the "
              "public verifier.",
    },
    "privacy": {
        "zh": "本公示不含志愿者和受助居民的姓名。",
        "en": "This report names no volunteer and no resident who receives help.",
    },
    "downloads": {"zh": "下载数据", "en": "Data"},
    "switch": {"zh": "English", "en": "中文"},
    "running": {"zh": "截至 {moment}（本月未结束）", "en": "As of {moment} (the month is not over)"},
    "previous": {"zh": "← 上个月", "en": "← Previous month"},
    "next": {"zh": "下个月 →", "en": "Next month →"},
    "all_months": {"zh": "全部月份", "en": "All months"},
    "home": {"zh": "金豆首页", "en": "Jindou home"},
    "coverage_note": {
        "zh": "资金覆盖率 = 期末余额 ÷ 待兑付负债。待兑付负债是：假如居民手里所有的金豆和福利积分今天都拿到商户消费，"
              "基金要付给商户的钱（含返利）。覆盖率达到 100% 或以上，说明基金的钱足够全部兑付；低于 100%，"
              "说明还需要募集捐赠。",
        "en": "Coverage = closing balance ÷ liability. The liability is what the fund would pay merchants (rebates "
              "included) if every bean and welfare credit people hold were spent today. At 100% or more the fund "
              "can pay all of it; below 100% it needs more donations.",
    },
    "seal_note": {
        "zh": "哈希链头是把截至本报告的每一条记录依次算进去得到的 SHA-256 指纹。以后只要有任何一条旧记录被改动、删除"
              "或插入，重新算出的链头就对不上。怎样核对：先下载并保存本报告的 JSON；以后请社区的审计人员运行 "
              "jindou audit verify --published 报告文件，或调取 /v1/audit/chain：在同样的记录数下，链头必须与"
              "您保存的完全相同。",
        "en": "The hash-chain head is a SHA-256 fingerprint of every record up to this report, taken one after "
              "another. If any earlier record is later changed, removed or inserted, the recomputed head no longer "
              "matches. To check: download and keep this report's JSON; later ask the community's auditor to run "
              "jindou audit verify --published with that file, or to read /v1/audit/chain: at the same number of "
              "records the head must be exactly the one you kept.",
    },
    "tree_head": {"zh": "签名树头", "en": "Signed tree head"},
    "tree_head_note": {
        "zh": "签名树头是截至本报告全部记录的默克尔树根，由本系统的 Ed25519 密钥签名。任何人都能用 "
              "/v1/public/transparency/key 公布的公钥验证签名，并用 /v1/public/transparency/consistency "
              "证明后来的记录只是追加、没有改写。",
        "en": "The signed tree head is the Merkle root of every record up to this report, signed with this "
              "deployment's Ed25519 key. Anyone can check the signature with the public key at "
              "/v1/public/transparency/key, and use /v1/public/transparency/consistency to prove that later "
              "records were only appended, never rewritten.",
    },
    "index_title": {"zh": "基金公示 · 全部月份", "en": "Fund reports · all months"},
    "index_intro": {
        "zh": "每月一份公示：收到的捐赠、付给商户的钱、流通中的金豆和福利积分，以及防篡改校验。",
        "en": "One report a month: donations received, money paid to merchants, beans and credits outstanding, "
              "and a tamper seal.",
    },
    "this_month": {"zh": "本月（未结束）", "en": "this month (not over)"},
    "not_found_title": {"zh": "没有这个月份的公示", "en": "No report for this month"},
    "not_found_text": {
        "zh": "这个社区在该月份还没有公示：月份早于社区开始使用金豆，或者还没有到。",
        "en": "This community has no report for that month: it is before the community started using Jindou, "
              "or it has not come yet.",
    },
    "unknown_community": {"zh": "没有找到这个社区。", "en": "No such community."},
    "bad_request_title": {"zh": "地址有误", "en": "This address is not valid"},
    # The landing page (/).
    "landing_title": {"zh": "金豆 · 社区积分", "en": "Jindou · community points"},
    "landing_intro": {
        "zh": "志愿者上报安全隐患、帮助邻居，经社区核实后得到金豆；困难老人每月领取福利积分；金豆和积分都能在社区商户"
              "当钱用。商户由金豆基金兑付，基金的每一笔收支每月公开。",
        "en": "Volunteers earn beans for reports and help that the community verifies; elders in need receive "
              "welfare credits each month; both are spent like money at local merchants, who are repaid from the "
              "bean fund, whose every movement is published monthly.",
    },
    "landing_wallet": {"zh": "我的金豆钱包", "en": "My wallet"},
    "landing_wallet_who": {"zh": "志愿者、受助居民：查余额、出示付款码", "en": "Volunteers and residents: balance and payment code"},
    "landing_till": {"zh": "商户收款", "en": "Merchant till"},
    "landing_till_who": {"zh": "社区商户：扫码收款、查看流水", "en": "Merchants: scan to take payment, see sales"},
    "landing_staff": {"zh": "社区工作台", "en": "Staff console"},
    "landing_staff_who": {"zh": "社区工作人员：审核上报、发放积分、结算", "en": "Community staff: verify reports, allowances, settlements"},
    "landing_docs": {"zh": "接口文档", "en": "API documentation"},
    "landing_reports": {"zh": "各社区基金公示", "en": "Each community's fund reports"},
    "landing_no_communities": {"zh": "还没有社区。", "en": "No community yet."},
    "landing_current": {"zh": "本月公示", "en": "This month"},
    "wishes": {"zh": "本月实现微心愿 {n} 个 · 看心愿墙", "en": "Wishes fulfilled this month: {n} · see the wish wall"},
}

CHART_WIDTH, CHART_HEIGHT, CHART_AXIS = 360, 180, 20


def yuan(amount_fen: int) -> str:
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), FEN_PER_UNIT)
    return f"{sign}{whole:,}.{fen:02d}"


def to_csv(report: Mapping[str, Any]) -> str:
    """Two sections a spreadsheet shows as they are: `field,value` rows, then the merchants."""
    summary = [(field, report[field]) for field in SUMMARY_FIELDS]
    if isinstance(report.get("tree_head"), Mapping):  # signed, so kept whole: one JSON cell
        summary.append(("tree_head", json.dumps(report["tree_head"], separators=(",", ":"))))
    merchants = [tuple(line[field] for field in MERCHANT_FIELDS) for line in report["merchants"]]
    return csv_document((("field", "value"), summary), (MERCHANT_FIELDS, merchants))


@dataclass(frozen=True)
class ReportPlace:
    """Where a report sits: its community, its neighbours, and whether its month is still running."""

    community_name: str
    index_path: str  # the JSON index; `.html` is its page
    previous_period: str | None
    next_period: str | None
    running_since: str | None  # "YYYY-MM-DD HH:MM" local, when the month had not ended at the cut


def translator(lang: str) -> Any:
    def t(key: str, **values: str) -> str:
        text = TEXT[key][lang]
        return escape(text.format(**values) if values else text)

    return t


@dataclass(frozen=True)
class PublicPage:
    """What api/templates/public.html needs: the title, the language, the switch, the body."""

    title: str
    lang: str
    switch_href: str
    body: str

    def context(self) -> dict[str, Any]:
        return {"title": self.title, "html_lang": HTML_LANGUAGES[self.lang], "switch_href": self.switch_href,
                "other_lang": other_language(self.lang), "switch_label": TEXT["switch"][self.lang], "body": Markup(self.body)}


def with_lang(path: str, lang: str) -> str:
    return f"{path}?lang={lang}"


def other_language(lang: str) -> str:
    """The language the switch offers."""
    return "en" if lang == "zh" else "zh"


def to_html(
    report: Mapping[str, Any], flows: Sequence[Mapping[str, Any]], *, place: ReportPlace, lang: str,
    base_path: str,
) -> PublicPage:
    t = translator(lang)
    running = f'<p class="running">{t("running", moment=place.running_since)}</p>' if place.running_since else ""
    body = f"""<p class="community">{escape(place.community_name)}</p>
{_navigation(place, lang, t)}
{running}
<div class="columns">
<section>
{_summary(report, t)}
<p class="note">{t("coverage_note")}</p>
<h2>{t("chart")}</h2>
<p class="legend"><span class="in">■ {t("inflow")}</span><span class="out">■ {t("outflow")}</span></p>
{_chart(flows, t)}
</section>
<section>
<h2>{t("merchants")}</h2>
{_merchants(report["merchants"], t)}
{_seal(report, t)}
</section>
</div>
<footer>
<p>{t("privacy")}</p>
<p>{t("downloads")}: <a href="{escape(base_path)}">JSON</a> · <a href="{escape(base_path)}.csv">CSV</a></p>
<p><a href="{escape(base_path.rsplit("/fund-reports/", 1)[0])}/wishes.html?lang={lang}">{t("wishes", n=str(int(report["wishes_fulfilled"])))}</a></p>
</footer>"""
    title = f"{TEXT['title'][lang]} · {report['period']}"
    return PublicPage(title, lang, with_lang(base_path + ".html", other_language(lang)), body)


def _navigation(place: ReportPlace, lang: str, t: Any) -> str:
    def month_link(period: str | None, label: str, rel: str) -> str:
        if period is None:
            return f"<span>{t(label)}</span>"
        path = place.index_path + f"/{period}.html"
        return f'<a href="{escape(with_lang(path, lang))}" rel="{rel}">{t(label)}</a>'

    index = f'<a href="{escape(with_lang(place.index_path + ".html", lang))}" rel="index">{t("all_months")}</a>'
    return (f'<nav class="months">{month_link(place.previous_period, "previous", "prev")}{index}'
            f'{month_link(place.next_period, "next", "next")}</nav>')


def _seal(report: Mapping[str, Any], t: Any) -> str:
    parts = [
        f"<h2>{t('seal')}</h2>",
        f'<p>{t("chain_head")}:<br><span class="seal">{escape(report["chain_head"])}</span></p>',
        f'<p>{t("events_count")}: {int(report["events_count"]):,}</p>',
        f'<p class="note">{t("seal_note")}</p>',
    ]
    tree_head = report.get("tree_head")
    if isinstance(tree_head, Mapping):
        rows = "".join(
            f'<tr><td>{escape(field)}</td><td class="seal">{escape(str(tree_head.get(field, "")))}</td></tr>'
            for field in TREE_HEAD_FIELDS
        )
        parts += [f"<h2>{t('tree_head')}</h2>", f"<table>{rows}</table>", f'<p>{t("tree_head_explained")}</p>',
                  f'<p class="note">{t("tree_head_note")}</p>']
    return "\n".join(parts)


@dataclass(frozen=True)
class IndexMonth:
    period: str
    running: bool


def index_html(months: Sequence[IndexMonth], *, community_name: str, index_path: str, lang: str) -> PublicPage:
    """The community's months, newest first, each with its page and its data."""
    t = translator(lang)
    items = "".join(
        f'<li><a class="period" href="{escape(with_lang(f"{index_path}/{month.period}.html", lang))}">'
        f'{escape(month.period)}</a>{" <span class=running>" + t("this_month") + "</span>" if month.running else ""}'
        f'<span><a href="{escape(f"{index_path}/{month.period}")}">JSON</a> · '
        f'<a href="{escape(f"{index_path}/{month.period}.csv")}">CSV</a></span></li>'
        for month in months
    )
    body = f"""<p class="community">{escape(community_name)}</p>
<p>{t("index_intro")}</p>
<ul class="months">{items}</ul>
<footer><p>{t("privacy")}</p><p><a href="{with_lang("/", lang)}">{t("home")}</a> ·
<a href="{escape(index_path)}">JSON</a></p></footer>"""
    return PublicPage(TEXT["index_title"][lang], lang, with_lang(index_path + ".html", other_language(lang)), body)


def problem_html(*, lang: str, title_key: str, text: str, index_path: str | None, here: str) -> PublicPage:
    """The page a person sees instead of a report (404, or an address that is not valid)."""
    t = translator(lang)
    links = [f'<a href="{with_lang("/", lang)}">{t("home")}</a>']
    if index_path is not None:
        links.insert(0, f'<a href="{escape(with_lang(index_path + ".html", lang))}">{t("all_months")}</a>')
    body = f"<p>{escape(text)}</p>\n<p>{' · '.join(links)}</p>"
    return PublicPage(TEXT[title_key][lang], lang, with_lang(here, other_language(lang)), body)


def _summary(report: Mapping[str, Any], t: Any) -> str:
    money_rows = ("opening_balance_fen", "donations_fen", "reimbursements_fen", "rebates_fen", "closing_balance_fen")
    rows = [
        f'<tr{" class=total" if key == "closing_balance_fen" else ""}><td>{t(key)}</td>'
        f'<td class="n">¥{yuan(int(report[key]))}</td></tr>'
        for key in money_rows
    ]
    rows += [
        f'<tr><td>{t(key)}</td><td class="n">{int(report[key]):,}</td></tr>'
        for key in ("beans_outstanding", "welfare_outstanding")
    ]
    rows.append(f'<tr><td>{t("liability_fen")}</td><td class="n">¥{yuan(int(report["liability_fen"]))}</td></tr>')
    ratio = report["coverage_ratio"]
    coverage = t("not_applicable") if ratio is None else f"{ratio:.1%}"
    rows.append(f'<tr><td>{t("coverage_ratio")}</td><td class="n">{coverage}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


def _chart(flows: Sequence[Mapping[str, Any]], t: Any) -> str:
    """Two bars per month, inflow beside outflow, on one scale (its top labelled); months below."""
    peak = max([1, *(int(f["inflow_fen"]) for f in flows), *(int(f["outflow_fen"]) for f in flows)])
    slot = CHART_WIDTH / max(1, len(flows))
    bar = slot * 0.35
    plot_height = CHART_HEIGHT - CHART_AXIS
    parts = []
    for index, flow in enumerate(flows):
        x = index * slot + slot * 0.15
        for offset, key, colour in ((0.0, "inflow_fen", "#2e7d32"), (bar, "outflow_fen", "#c75b12")):
            amount = int(flow[key])
            height = plot_height * amount / peak
            label = f'{flow["period"]} {t("inflow" if key == "inflow_fen" else "outflow")} ¥{yuan(amount)}'
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{plot_height - height:.1f}" width="{bar:.1f}" height="{height:.1f}"'
                f' fill="{colour}"><title>{escape(label)}</title></rect>'
            )
        parts.append(
            f'<text x="{index * slot + slot / 2:.1f}" y="{CHART_HEIGHT - 5}" font-size="10" text-anchor="middle"'
            f' fill="#555">{escape(str(flow["period"])[5:])}</text>'
        )
    axis = (
        f'<line x1="0" y1="{plot_height}" x2="{CHART_WIDTH}" y2="{plot_height}" stroke="#bbb"/>'
        f'<text x="4" y="12" font-size="10" fill="#555">{"¥" + yuan(peak) if peak > 1 else ""}</text>'
    )
    return (
        f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="{t("chart")}"'
        f' xmlns="http://www.w3.org/2000/svg">{axis}{"".join(parts)}</svg>'
    )


def _merchants(lines: Sequence[Mapping[str, Any]], t: Any) -> str:
    if not lines:
        return f"<p>{t('no_merchants')}</p>"
    head = (
        f'<tr><th>{t("merchant")}</th><th class="n">{t("redeemed")}</th>'
        f'<th class="n">{t("reimbursement_fen")}</th><th class="n">{t("rebate_fen")}</th></tr>'
    )
    rows = "".join(
        f'<tr><td>{escape(line["display_name"])}</td><td class="n">{int(line["redeemed"]):,}</td>'
        f'<td class="n">¥{yuan(int(line["reimbursement_fen"]))}</td><td class="n">¥{yuan(int(line["rebate_fen"]))}</td></tr>'
        for line in lines
    )
    return f"<table>{head}{rows}</table>"
