"""The wallet (/wallet) in a real headless Chromium, on a phone (390x844) and a laptop (1280x800):
a volunteer reports, follows the report, donates to an elder by name and reads what every entry
was for; an elder signs in by the card's sign-in QR link and gets elder mode (big text, welfare
first in yuan, no empty tiles, a big QR, the next allowance, the shops that take welfare), which
holds at 200% zoom. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import Api, new_key, this_period
from tests.test_pages_browser import (  # noqa: F401 (fixtures)
    COMMUNITY_TIMEZONE,
    PHONE,
    api,
    base_url,
    browser,
    new_phone,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1280, "height": 800}}
DEVICES = {"phone": PHONE, "laptop": LAPTOP}
# 200% browser zoom on a 390x844 phone: half as many CSS pixels, each drawn twice as big.
PHONE_AT_200_PERCENT = {**PHONE, "viewport": {"width": 195, "height": 422}, "device_scale_factor": 4}
FIRE_AWARD = 10
SANITATION_AWARD = 2
WELFARE_PER_MONTH = 50
DONATED = 3
ELDER_TEXT_PX_MIN = 24


def this_period() -> str:
    return datetime.now(timezone.utc).astimezone(ZoneInfo(COMMUNITY_TIMEZONE)).strftime("%Y-%m")


def next_month_number() -> int:
    return int(this_period()[5:]) % 12 + 1


@pytest.fixture
def town(api: Api) -> dict[str, Any]:
    community = api.community()
    staff = api.staff(community["id"])
    grocer = api.account(community["id"], "merchant", "老王杂货店", merchant_categories=["grocery"])
    barber = api.account(community["id"], "merchant", "老街理发", merchant_categories=["barber"])
    volunteer = api.account(community["id"], "volunteer", "王师傅")
    grandma = api.account(community["id"], "beneficiary", "李奶奶")
    api.ok("POST", "/v1/welfare/allowances", staff["token"], key=new_key(), status=201, json={
        "community_id": community["id"], "period": this_period(), "amount_per_beneficiary": WELFARE_PER_MONTH,
    })
    return {"staff": staff, "grocer": grocer, "barber": barber, "volunteer": volunteer, "grandma": grandma}


@pytest.mark.parametrize("device", DEVICES)
def test_a_volunteer_reports_follows_it_donates_and_reads_every_entrys_reason(
    device: str, browser: Any, base_url: str, api: Api, town: dict[str, Any],
) -> None:
    volunteer, grandma = town["volunteer"], town["grandma"]
    api.earn(volunteer, town["staff"]["token"], "fire")
    with new_phone(browser, base_url, DEVICES[device]) as context:
        wallet = context.new_page()
        sign_in(wallet, "/wallet", volunteer)
        wallet.get_by_text(f"本月获得 {FIRE_AWARD} 金豆").wait_for()
        assert wallet.locator("#balance-bean").inner_text() == str(FIRE_AWARD)
        assert wallet.locator("#bean-yuan").inner_text() == f"= {FIRE_AWARD} 元，商户处可用"
        assert wallet.locator("#tile-welfare").is_hidden()  # a volunteer holds no welfare: no empty tile
        wallet.locator("#entries-list").get_by_text("上报奖励 · 消防").wait_for()
        shops = wallet.locator("#shops-list")
        shops.locator(".shop", has_text="老王杂货店").get_by_text("收福利").wait_for()  # welfare-taking shops marked
        assert shops.locator(".shop", has_text="老街理发").get_by_text("收福利").count() == 0

        report = wallet.locator("#report")
        report.get_by_label("类别").select_option(label="环境卫生")
        report.get_by_label("情况说明").fill("3号楼门口垃圾堆了三天")
        report.get_by_role("button", name="提交上报").click()
        report.get_by_text("已提交，等待工作人员核实。").wait_for()
        mine = wallet.locator("#reports-list")
        mine.get_by_text("待核实").wait_for()
        mine.get_by_text("3号楼门口垃圾堆了三天").wait_for()
        shot(wallet, f"wallet-volunteer-report-{device}")

        submitted = api.ok("GET", "/v1/reports?status=submitted", volunteer["token"])["items"]
        assert [(r["category"], r["description"]) for r in submitted] == [("sanitation", "3号楼门口垃圾堆了三天")]
        api.ok("POST", f"/v1/reports/{submitted[0]['id']}/verify", town["staff"]["token"], {}, key=new_key())

        donate = wallet.locator("#donate")
        donate.get_by_label("捐给谁").select_option(label="李奶奶")
        donate.get_by_label("金豆数").fill(str(DONATED))
        donate.get_by_role("button", name="捐赠").click()
        donate.get_by_text(f"已捐给 李奶奶 {DONATED} 金豆").wait_for()
        entries = wallet.locator("#entries-list")
        entries.get_by_text("捐赠给 李奶奶").wait_for()
        entries.get_by_text("上报奖励 · 环境卫生").wait_for()

        code = api.ok("POST", f"/v1/accounts/{volunteer['id']}/payment-codes", volunteer["token"], status=201)["code"]
        sale = api.call("POST", "/v1/redemptions", town["barber"]["token"], {"payment_code": code, "amount": 4}, key=new_key())
        assert sale.status_code == 201
        entries.get_by_text("在 老街理发 消费").wait_for(timeout=20_000)  # the wallet notices the sale itself
        wallet.reload()
        wallet.locator("#reports-list").get_by_text(f"已核实 +{SANITATION_AWARD} 金豆").wait_for()
        wallet.get_by_text(f"本月获得 {FIRE_AWARD + SANITATION_AWARD} 金豆").wait_for()
        balance = FIRE_AWARD + SANITATION_AWARD - DONATED - 4
        assert wallet.locator("#balance-bean").inner_text() == str(balance)
        shot(wallet, f"wallet-volunteer-{device}")

        wallet.get_by_role("button", name="Switch to English").click()
        wallet.locator("#entries-list").get_by_text("Given to 李奶奶").wait_for()
        wallet.locator("#entries-list").get_by_text("Report award · Sanitation").wait_for()
        wallet.get_by_role("button", name="切换到中文").click()
    assert api.balances(grandma["id"]) == {"bean": DONATED, "welfare": WELFARE_PER_MONTH}


def open_by_sign_in_link(context: Any, api: Api, town: dict[str, Any]) -> Any:
    """The card's sign-in QR: a URL to /wallet#sign-in=CODE, opened on a fresh phone."""
    link = api.ok("POST", f"/v1/accounts/{town['grandma']['id']}/sign-in-codes", town["staff"]["token"], status=201)
    assert "/wallet#sign-in=" in link["url"]
    wallet = context.new_page()
    wallet.goto(link["url"])
    wallet.locator("#app").wait_for(state="visible")
    assert "sign-in" not in wallet.url
    return wallet


def font_px(page: Any, selector: str) -> float:
    return page.eval_on_selector(selector, "(node) => parseFloat(getComputedStyle(node).fontSize)")


@pytest.mark.parametrize("device", DEVICES)
def test_an_elder_signs_in_by_the_cards_link_and_gets_elder_mode(
    device: str, browser: Any, base_url: str, api: Api, town: dict[str, Any],
) -> None:
    with new_phone(browser, base_url, DEVICES[device]) as context:
        wallet = open_by_sign_in_link(context, api, town)
        wallet.locator("body.elder").wait_for()
        wallet.locator("#qr svg").wait_for()
        assert wallet.locator("#balance-welfare").inner_text() == str(WELFARE_PER_MONTH)
        assert wallet.locator("#welfare-yuan").inner_text() == "食品店可用"
        assert wallet.eval_on_selector("#balance-welfare", "(node) => getComputedStyle(node, '::after').content") == '" 元"'
        assert wallet.locator("#tile-bean").is_hidden()  # no "金豆 0"
        for selector in ("body", "#entries-list .entry-time", "#welfare-yuan", ".muted", "#shops-list .shop-name"):
            assert font_px(wallet, selector) >= ELDER_TEXT_PX_MIN, selector
        assert wallet.locator("#qr").bounding_box()["width"] >= 300
        wallet.get_by_text(f"下次福利：{next_month_number()}月1日").wait_for()
        shops = wallet.locator("#shops-list")
        shops.locator(".shop").first.get_by_text("老王杂货店").wait_for()  # the shop that takes welfare comes first
        assert shops.locator(".shop").first.get_by_text("收福利").is_visible()
        assert shops.get_by_text("老街理发").count() == 0  # nothing to spend there without beans
        wallet.locator("#entries-list").get_by_text(f"每月福利 · {int(this_period()[:4])}年{int(this_period()[5:])}月").wait_for()
        assert wallet.locator("#report").is_hidden() and wallet.locator("#donate").is_hidden()
        shot(wallet, f"wallet-elder-{device}")

        # Beans arrive: both tiles, welfare first.
        api.earn(town["volunteer"], town["staff"]["token"], "fire")
        api.ok("POST", "/v1/donations", town["volunteer"]["token"], {"to_account_id": town["grandma"]["id"], "amount": DONATED},
               key=new_key(), status=201)
        wallet.reload()
        wallet.locator("#tile-bean").wait_for()
        welfare_box, bean_box = wallet.locator("#tile-welfare").bounding_box(), wallet.locator("#tile-bean").bounding_box()
        assert welfare_box["y"] + welfare_box["height"] <= bean_box["y"]
        wallet.locator("#entries-list").get_by_text("王师傅 捐赠").wait_for()

        # Anyone may switch it off, and the choice is remembered.
        wallet.get_by_role("button", name="大字模式开关").click()
        wallet.locator("body:not(.elder)").wait_for()
        wallet.reload()
        wallet.locator("#qr svg").wait_for()
        assert wallet.evaluate("document.body.classList.contains('elder')") is False


def test_a_volunteer_switches_elder_mode_on_and_it_is_remembered(
    browser: Any, base_url: str, api: Api, town: dict[str, Any],
) -> None:
    with new_phone(browser, base_url, PHONE) as context:
        wallet = context.new_page()
        sign_in(wallet, "/wallet", town["volunteer"])
        assert wallet.evaluate("document.body.classList.contains('elder')") is False
        wallet.get_by_role("button", name="大字模式开关").click()
        wallet.locator("body.elder").wait_for()
        wallet.reload()
        wallet.locator("body.elder").wait_for()
        assert font_px(wallet, "body") >= ELDER_TEXT_PX_MIN


def boxes_overlap(first: dict[str, float], second: dict[str, float]) -> bool:
    return not (first["x"] + first["width"] <= second["x"] or second["x"] + second["width"] <= first["x"]
                or first["y"] + first["height"] <= second["y"] or second["y"] + second["height"] <= first["y"])


def test_elder_mode_holds_at_200_percent_zoom(browser: Any, base_url: str, api: Api, town: dict[str, Any]) -> None:
    with new_phone(browser, base_url, PHONE_AT_200_PERCENT) as context:
        wallet = open_by_sign_in_link(context, api, town)
        wallet.locator("body.elder").wait_for()
        wallet.locator("#qr svg").wait_for()
        width = wallet.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE_AT_200_PERCENT["viewport"]["width"], f"scrolls sideways: {width}px"
        parts = [wallet.locator(selector).bounding_box()
                 for selector in (".brand h1", "#elder-switch", "#language", "#signout")]
        for index, first in enumerate(parts):
            for second in parts[index + 1:]:
                assert not boxes_overlap(first, second), (first, second)
        header = wallet.locator(".topbar").bounding_box()
        balances = wallet.locator("#balances").bounding_box()
        assert header["y"] + header["height"] <= balances["y"]
        shot(wallet, "wallet-elder-200-percent")
        wallet.evaluate("() => window.scrollTo(0, 600)")  # scrolled, the header does not sit on the content
        assert wallet.evaluate("() => window.scrollY") > 0
        header = wallet.locator(".topbar").bounding_box()
        assert header["y"] + header["height"] <= 0 or wallet.evaluate(
            "getComputedStyle(document.querySelector('.topbar')).position") == "static"
        shot(wallet, "wallet-elder-200-percent-scrolled")


# The page modules other branches ship (shared interfaces): present here as the smallest modules that
# keep their promise, to check that the wallet uses them when they exist.
def test_the_wallet_proves_its_entries_and_shows_the_wish_wall(
    browser: Any, base_url: str, api: Api, town: dict[str, Any],
) -> None:
    """The wallet's own modules at work: each entry checked against the signed log in the page
    (transparency.js), and the community's open wishes (wishes.js)."""
    volunteer = town["volunteer"]
    api.earn(volunteer, town["staff"]["token"], "fire")
    with new_phone(browser, base_url, PHONE) as context:
        wallet = context.new_page()
        sign_in(wallet, "/wallet", volunteer)
        wallet.locator("#entries-list").get_by_text(f"已记入 {this_period()} 公示账本 ✓").wait_for(timeout=20_000)
        wishes = wallet.locator("#wishes")
        wishes.get_by_text("现在没有待认领的心愿。").wait_for()
