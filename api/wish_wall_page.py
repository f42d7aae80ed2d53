"""The public wish wall (微心愿) as a phone-sized HTML page, Simplified Chinese first.

It renders the same items the public JSON list returns (titles, targets, pledged totals,
pledger counts, status: no names) in the public pages' one layout (api/templates/public.html,
styles in api/static/public.css), with no script and nothing loaded from elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from api.fund_report_formats import PublicPage, with_lang

TEXT: dict[str, dict[str, str]] = {
    "title": {"zh": "微心愿墙", "en": "Wish wall"},
    "lead": {
        "zh": "社区把居民一时解决不了的小心愿记下来，志愿者用金豆认领；凑齐后由商户把心愿送到居民手中。",
        "en": "Residents' small wishes, funded by volunteers with their beans and delivered by a local merchant.",
    },
    "progress": {"zh": "已认领 {pledged} / {target} 金豆 · {pledgers} 人", "en": "{pledged} of {target} beans · {pledgers} pledgers"},
    "empty": {"zh": "还没有心愿。", "en": "No wishes yet."},
    "open": {"zh": "认领中", "en": "Open"},
    "funded": {"zh": "已凑齐，待实现", "en": "Funded, to be delivered"},
    "fulfilled": {"zh": "已实现", "en": "Fulfilled"},
    "cancelled": {"zh": "已取消，金豆已退回", "en": "Cancelled, beans returned"},
    "privacy": {
        "zh": "本页不含居民和志愿者的姓名。",
        "en": "This page names no resident and no volunteer.",
    },
    "data": {"zh": "下载数据", "en": "Data"},
    "switch": {"zh": "English", "en": "中文"},
}

def to_html(items: Sequence[Mapping[str, Any]], *, community_name: str, lang: str, base_path: str) -> PublicPage:
    def t(key: str, **values: Any) -> str:
        return escape(TEXT[key][lang].format(**values))

    other = "en" if lang == "zh" else "zh"
    listed = "".join(_wish(item, t) for item in items) if items else f"<p>{t('empty')}</p>"
    body = f"""<p class="community">{escape(community_name)}</p>
<h1>{t("title")}</h1>
<p>{t("lead")}</p>
<ul class="wishes">{listed}</ul>
<footer>
<p>{t("privacy")}</p>
<p>{t("data")}: <a href="{escape(base_path)}">JSON</a></p>
</footer>"""
    return PublicPage(f"{community_name} · {TEXT['title'][lang]}", lang, with_lang(base_path + ".html", other), body)


def _wish(item: Mapping[str, Any], t: Any) -> str:
    pledged, target, status = int(item["pledged"]), int(item["target"]), str(item["status"])
    figures = t("progress", pledged=f"{pledged:,}", target=f"{target:,}", pledgers=int(item["pledgers"]))
    return (
        f'<li><h2>{escape(str(item["title"]))}</h2><span class="status {escape(status)}">{t(status)}</span>'
        f'<p class="figures">{figures}</p><progress max="{target}" value="{pledged}">{figures}</progress></li>'
    )
