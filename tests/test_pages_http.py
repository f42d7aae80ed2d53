"""The phone pages over HTTP: served in Chinese, self-contained (no internet needed), locked down,
every word translated, and every contract error a shopkeeper can meet explained in Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.errors import STATUS_BY_CODE
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for

pytestmark = pytest.mark.backends("memory")

HOLDER_PAGES = ("/merchant", "/wallet")
PAGES = (*HOLDER_PAGES, "/staff")
STATIC_DIR = Path(__file__).resolve().parent.parent / "api" / "static"
ASSET_REFERENCE = re.compile(r'(?:src|href)="([^"]*)"')
PROTOCOL_RELATIVE = re.compile(r"""["'(]\s*//""")  # "//cdn.example/x.js" or url(//...)
CHINESE = re.compile(r"[\u4e00-\u9fff]")
# The language switch speaks the other language, so that its readers find it; "0" is "0".
NOT_CHINESE = {"lang.switch", "lang.switch.label", "sale.amount.placeholder"}
# Every refusal the merchant and wallet pages can receive from the endpoints they call.
PAGE_ERROR_CODES = (
    "unauthorized", "forbidden", "not_found", "validation_error", "insufficient_funds", "account_frozen",
    "idempotency_conflict", "invalid_payment_code", "payment_code_expired", "daily_limit_exceeded",
    "welfare_not_accepted", "already_settled", "already_reversed", "invalid_state", "rate_limited",
)


def _messages(language: str) -> dict[str, str]:
    """The dictionary for one language, read out of i18n.js."""
    source = (STATIC_DIR / "i18n.js").read_text(encoding="utf-8")
    block = re.search(rf"\n  {language}: \{{\n(.*?)\n  \}},", source, re.S)
    assert block, f"no {language} block in i18n.js"
    return dict(re.findall(r'^\s+"([\w.]+)": "(.*)",$', block.group(1), re.M))


def test_pages_are_chinese_self_contained_and_locked_down(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        for path in PAGES:
            page = api.call("GET", path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            html = page.text
            assert '<html lang="zh-CN">' in html
            assert 'name="viewport"' in html
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assert page.headers["x-content-type-options"] == "nosniff"
            assert "http://" not in html and "https://" not in html
            for reference in ASSET_REFERENCE.findall(html):
                if reference.startswith("data:"):
                    continue
                assert reference.startswith("/static/"), reference
                asset = api.call("GET", reference)
                assert asset.status_code == 200, reference
                assert "http://" not in asset.text and "https://" not in asset.text, reference
                assert not PROTOCOL_RELATIVE.search(asset.text), reference


def test_pages_stay_out_of_the_api_schema_and_static_files_stay_in_their_folder(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        paths = api.ok("GET", "/openapi.json")["paths"]
        assert not [path for path in paths if path in PAGES or path.startswith("/static")]
        assert api.call("GET", "/static/wallet.js").headers["content-type"].startswith("text/javascript")
        for outside in ("/static/../routes/pages.py", "/static/%2e%2e/routes/pages.py", "/static/missing.js"):
            assert api.call("GET", outside).status_code == 404, outside


def test_every_word_on_the_pages_is_in_both_languages() -> None:
    chinese, english = _messages("zh"), _messages("en")
    assert chinese.keys() == english.keys()
    templates = Path(__file__).resolve().parent.parent / "api" / "templates"
    used = set()
    for html in templates.glob("*.html"):
        used |= set(re.findall(r'data-i18n(?:-placeholder|-label|-title)?="([\w.]+)"', html.read_text(encoding="utf-8")))
    for script in STATIC_DIR.glob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.]+)"', script.read_text(encoding="utf-8")))
    assert used and used <= chinese.keys(), used - chinese.keys()
    untranslated = [key for key, text in chinese.items() if not CHINESE.search(text) and key not in NOT_CHINESE]
    assert not untranslated


def test_every_refusal_a_shopkeeper_can_meet_reads_in_chinese() -> None:
    chinese, english = _messages("zh"), _messages("en")
    for code in PAGE_ERROR_CODES:
        assert code in STATUS_BY_CODE, code
        assert CHINESE.search(chinese[f"error.{code}"]), code
        assert english[f"error.{code}"], code
    assert chinese["error.insufficient_funds"].startswith("余额不足")
    assert chinese["error.payment_code_expired"].startswith("付款码已过期")
    assert chinese["error.invalid_payment_code"].startswith("付款码无效")
    assert chinese["error.account_frozen"].startswith("账户已冻结")
    assert chinese["error.daily_limit_exceeded"].startswith("超过每日限额")
    assert chinese["error.welfare_not_accepted"].startswith("本店不收福利额度")
    assert chinese["error.rate_limited"].startswith("尝试过多")


def test_every_page_extends_the_one_layout_without_inline_code() -> None:
    templates = Path(__file__).resolve().parent.parent / "api" / "templates"
    pages = [path for path in templates.glob("*.html") if path.name != "layout.html"]
    assert pages
    for path in [*pages, templates / "layout.html"]:
        html = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path.name  # the CSP refuses inline scripts
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), path.name
    for path in pages:
        html = path.read_text(encoding="utf-8")
        assert html.startswith('{% extends "layout.html" %}'), path.name
        assert "<head>" not in html and 'id="signin-form"' not in html, path.name


def test_the_sign_in_panel_offers_a_token_or_a_sign_in_code(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        for path in PAGES:
            html = api.call("GET", path).text
            assert html.count('id="signin-form"') == 1
            assert 'name="token"' in html and 'name="code"' in html
            assert ('name="account"' in html) == (path in HOLDER_PAGES), path  # staff sign in with a token alone
