"""The public pages in a real headless Chromium: the landing page, a community's index of fund
reports and its months (navigated by their links) on a phone and on a laptop, the Chinese 404
page, and the API documentation, which must load nothing from outside. Screenshots land in
test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import Api, new_key
from tests.test_pages_browser import PHONE, api, base_url, browser, new_phone, shot  # noqa: F401 — shared fixtures

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1366, "height": 900}, "device_scale_factor": 1}
SHANGHAI = ZoneInfo("Asia/Shanghai")
DOCS_TIMEOUT_MS = 30_000
CSP_FAILURES = ("csp", "net::ERR_BLOCKED_BY_CSP")  # how Chromium names a request its page's policy refused  # ReDoc parses the whole schema on a slow shared machine


@pytest.fixture
def community(api: Api) -> dict[str, Any]:  # noqa: F811 — the imported fixture
    """A community paid out this month, with a cheque received last month and entered late."""
    created = api.community(name="金沙社区")
    cid = created["id"]
    staff, admin = api.staff(cid)["token"], api.staff(cid, "admin")["token"]
    volunteer = api.account(cid, "volunteer", "志愿者王小明")
    merchant = api.account(cid, "merchant", "金沙菜市场·老周蔬菜", merchant_categories=["vegetable"])
    last_month_day = datetime.now(SHANGHAI).date().replace(day=1) - timedelta(days=1)
    api.ok("POST", "/v1/fund/donations", staff, {"community_id": cid, "donor": "退休教师协会", "amount_fen": 80_000,
                                                 "received_on": last_month_day.isoformat(), "reference": "cheque 7"})
    api.earn(volunteer, staff, award=30)
    code = api.ok("POST", f"/v1/accounts/{volunteer['id']}/payment-codes", volunteer["token"], status=201)["code"]
    api.ok("POST", "/v1/redemptions", merchant["token"], {"payment_code": code, "amount": 12}, key=new_key())
    period = datetime.now(SHANGHAI).strftime("%Y-%m")
    settlement = api.ok("POST", "/v1/settlements", staff, {"community_id": cid, "period": period}, key=new_key())
    api.ok("POST", f"/v1/settlements/{settlement['id']}/approve", admin)
    api.ok("POST", f"/v1/settlements/{settlement['id']}/pay", staff, {"bank_reference": "BOC-1"}, key=new_key())
    return {"id": cid, "period": period, "previous": last_month_day.strftime("%Y-%m")}


@pytest.fixture
def laptop(browser: Any, base_url: str) -> Iterator[Any]:  # noqa: F811 — the imported fixtures
    with new_phone(browser, base_url, LAPTOP) as context:
        yield context


@pytest.fixture
def phone(browser: Any, base_url: str) -> Iterator[Any]:  # noqa: F811
    with new_phone(browser, base_url, PHONE) as context:
        yield context


def fits_the_width(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_reader_finds_and_walks_the_reports_on_a_phone(phone: Any, community: dict[str, Any]) -> None:
    page = phone.new_page()
    page.goto("/")
    page.get_by_role("heading", name="金豆 · 社区积分").wait_for()
    assert fits_the_width(page)
    shot(page, "public-landing-phone")

    page.locator(f'a[href^="/v1/public/communities/{community["id"]}/fund-reports.html"]').click()
    page.get_by_role("heading", name="基金公示 · 全部月份").wait_for()
    assert fits_the_width(page)
    shot(page, "public-index-phone")

    page.get_by_role("link", name=community["period"], exact=True).click()
    page.get_by_role("heading", name=f"金豆基金公示 · {community['period']}").wait_for()
    assert "本月未结束" in page.locator(".running").inner_text()
    page.get_by_text("金沙菜市场·老周蔬菜").wait_for()
    assert fits_the_width(page)
    shot(page, "public-report-phone")

    page.get_by_role("link", name="← 上个月").click()
    page.get_by_role("heading", name=f"金豆基金公示 · {community['previous']}").wait_for()
    assert page.locator(".running").count() == 0
    page.get_by_role("link", name="下个月 →").click()
    page.get_by_role("heading", name=f"金豆基金公示 · {community['period']}").wait_for()
    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", name=f"Golden Bean Fund report · {community['period']}").wait_for()
    page.get_by_role("link", name="All months").click()
    page.get_by_role("heading", name="Fund reports · all months").wait_for()

    missing = page.goto(f"/v1/public/communities/{community['id']}/fund-reports/2001-01.html")
    assert missing is not None and missing.status == 404
    page.get_by_role("heading", name="没有这个月份的公示").wait_for()
    shot(page, "public-report-404-phone")
    page.get_by_role("link", name="全部月份").click()
    page.get_by_role("heading", name="基金公示 · 全部月份").wait_for()


def test_a_report_uses_two_columns_on_a_laptop(laptop: Any, community: dict[str, Any]) -> None:
    page = laptop.new_page()
    page.goto(f"/v1/public/communities/{community['id']}/fund-reports/{community['period']}.html")
    page.get_by_role("heading", name="本月兑付商户").wait_for()
    summary, merchants = page.locator(".columns > section").all()
    left, right = summary.bounding_box(), merchants.bounding_box()
    assert left is not None and right is not None
    assert right["x"] > left["x"] + left["width"] - 1 and abs(right["y"] - left["y"]) < 5  # side by side
    assert page.locator("main").bounding_box()["width"] > 900
    shot(page, "public-report-laptop")
    page.goto("/")
    shot(page, "public-landing-laptop")


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".swagger-ui .info"), ("/redoc", "h1")])
def test_the_api_documentation_renders_without_leaving_the_server(browser: Any, base_url: str, path: str,  # noqa: F811
                                                                  ready: str) -> None:
    """Nothing goes out (ReDoc's logo, which its bundle loads from its maker's CDN, is served
    inline: api/static/vendor/redoc/README.md) and nothing goes wrong."""
    context = browser.new_context(base_url=base_url, locale="zh-CN", **LAPTOP)
    outside: list[str] = []
    blocked: list[str] = []
    problems: list[str] = []
    context.on("request", lambda request: None if request.url.startswith((base_url, "data:", "blob:"))
               else outside.append(request.url))
    context.on("requestfailed", lambda request: blocked.append(request.url)
               if request.failure in CSP_FAILURES else None)
    context.on("weberror", lambda error: problems.append(f"uncaught: {error.error}"))
    context.on("console", lambda message: problems.append(message.text) if message.type == "error"
               and "Content Security Policy" not in message.text else None)
    try:
        page = context.new_page()
        page.goto(path)
        page.locator(ready).first.wait_for(timeout=DOCS_TIMEOUT_MS)
        page.get_by_text("Jindou").first.wait_for(timeout=DOCS_TIMEOUT_MS)
        page.get_by_text("/v1/public/communities/{community_id}/fund-reports").first.wait_for(timeout=DOCS_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        shot(page, f"docs{path.replace('/', '-')}")
    finally:
        context.close()
    assert not outside and not blocked, (outside, blocked)
    assert not problems, problems
