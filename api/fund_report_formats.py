"""The public fund report as CSV and as a phone-sized HTML page (Simplified Chinese first).

Both render the same dict the JSON endpoint returns; nothing here computes a figure. The page
is plain server-rendered HTML with its CSS and an SVG chart inline: it works offline, on a slow
phone, without scripts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from domain.money import FEN_PER_UNIT

SUMMARY_FIELDS = (
    "period", "opening_balance_fen", "donations_fen", "reimbursements_fen", "rebates_fen", "closing_balance_fen",
    "beans_outstanding", "welfare_outstanding", "liability_fen", "coverage_ratio", "chain_head", "events_count",
    "wishes_fulfilled",
)
MERCHANT_FIELDS = ("merchant_id", "display_name", "redeemed", "reimbursement_fen", "rebate_fen")
LANGUAGES = ("zh", "en")

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
    "privacy": {
        "zh": "本公示不含志愿者和受助居民的姓名。",
        "en": "This report names no volunteer and no resident who receives help.",
    },
    "downloads": {"zh": "下载数据", "en": "Data"},
    "switch": {"zh": "English", "en": "中文"},
    "wishes": {"zh": "本月实现微心愿 {n} 个 · 看心愿墙", "en": "Wishes fulfilled this month: {n} · see the wish wall"},
}

CHART_WIDTH, CHART_HEIGHT, CHART_AXIS = 360, 180, 20
PAGE_CSS = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;color:#222;background:#faf7f0;line-height:1.5}
main{max-width:36rem;margin:0 auto;padding:1rem}
header{display:flex;justify-content:space-between;align-items:baseline;gap:1rem}
h1{font-size:1.35rem;margin:.2rem 0;color:#8a5a00}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
a{color:#8a5a00}header a{white-space:nowrap}.community{color:#555;margin:0}
table{width:100%;border-collapse:collapse;background:#fff;border-radius:.5rem;overflow:hidden}
td,th{padding:.5rem .4rem;font-size:.95rem;border-bottom:1px solid #eee;text-align:left}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums}tr.total td{font-weight:600}
svg{width:100%;height:auto;background:#fff;border-radius:.5rem}.legend span{margin-right:1rem}
.in{color:#2e7d32}.out{color:#c75b12}.seal{word-break:break-all;font-family:ui-monospace,monospace;font-size:.8rem}
footer{margin-top:1.5rem;font-size:.85rem;color:#555}
"""


def yuan(amount_fen: int) -> str:
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), FEN_PER_UNIT)
    return f"{sign}{whole:,}.{fen:02d}"


def to_csv(report: Mapping[str, Any]) -> str:
    """Two blocks a spreadsheet shows as they are: `field,value` rows, then the merchants."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("field", "value"))
    for field in SUMMARY_FIELDS:
        value = report[field]
        writer.writerow((field, "" if value is None else value))
    writer.writerow(())
    writer.writerow(MERCHANT_FIELDS)
    for line in report["merchants"]:
        writer.writerow(tuple(line[field] for field in MERCHANT_FIELDS))
    return out.getvalue()


def to_html(
    report: Mapping[str, Any], flows: Sequence[Mapping[str, Any]], *, community_name: str, lang: str,
    base_path: str,
) -> str:
    def t(key: str) -> str:
        return escape(TEXT[key][lang])

    other = "en" if lang == "zh" else "zh"
    html_lang = "zh-Hans" if lang == "zh" else "en"
    return f"""<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(community_name)} · {t("title")} · {escape(report["period"])}</title>
<style>{PAGE_CSS}</style></head>
<body><main>
<header><div><p class="community">{escape(community_name)}</p>
<h1>{t("title")} · {escape(report["period"])}</h1></div>
<a href="{escape(base_path)}.html?lang={other}" hreflang="{other}">{t("switch")}</a></header>
{_summary(report, t)}
<h2>{t("chart")}</h2>
<p class="legend"><span class="in">■ {t("inflow")}</span><span class="out">■ {t("outflow")}</span></p>
{_chart(flows, t)}
<h2>{t("merchants")}</h2>
{_merchants(report["merchants"], t)}
<footer>
<h2>{t("seal")}</h2>
<p>{t("chain_head")}:<br><span class="seal">{escape(report["chain_head"])}</span></p>
<p>{t("events_count")}: {int(report["events_count"]):,}</p>
<p>{t("privacy")}</p>
<p>{t("downloads")}: <a href="{escape(base_path)}">JSON</a> · <a href="{escape(base_path)}.csv">CSV</a></p>
<p><a href="{escape(base_path.rsplit("/fund-reports/", 1)[0])}/wishes.html?lang={lang}">{t("wishes").format(n=int(report["wishes_fulfilled"]))}</a></p>
</footer>
</main></body></html>
"""


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
