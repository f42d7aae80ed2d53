"""The phone pages in a real headless Chromium, at a phone's size, against a served Jindou.

A shopkeeper signs in on /merchant, types the code a grandmother's /wallet shows, takes the sale,
sees the receipt's welfare/bean split and today's totals, and reverses it; a lost answer is retried
without charging twice; refusals read in Chinese. Screenshots land in test-artifacts/.

Debian's chromium is driven by Playwright (never `playwright install`). Without /usr/bin/chromium
these tests skip and say why, except under CI (JINDOU_REQUIRE_BROWSER=1), where they fail.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from api.app import create_app
from infra.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, new_key

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
SMALL_PHONE = {**PHONE, "viewport": {"width": 375, "height": 812}}
TAP_TARGET_PX_MIN = 44  # Apple's and Google's smallest comfortable tap target
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SERVER_START_TIMEOUT_S = 20
UI_TIMEOUT_MS = 10_000
CODE_REFRESHES_UNATTENDED_MAX = 5  # wallet.js
COMMUNITY_TIMEZONE = "Asia/Shanghai"
WELFARE_PER_MONTH = 50
BEANS_DONATED = 5
FIRE_AWARD = 10  # the default award schedule
VOLUNTEER_BEANS = 2 * FIRE_AWARD - BEANS_DONATED


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` served by uvicorn in a thread, on a loopback port the OS chose: its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="jindou-browser-tests-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(SERVER_START_TIMEOUT_S)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright. Without it the browser tests skip, saying so,
    except where JINDOU_REQUIRE_BROWSER=1 (CI): there they fail."""
    if not CHROMIUM.exists():
        reason = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("JINDOU_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Jindou served over a fresh SQLite file."""
    database = tmp_path_factory.mktemp("pages") / "jindou.db"
    with serving(create_app(settings=Settings(database_url=f"sqlite:///{database}", admin_token=ADMIN_TOKEN))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as launched:
        yield launched


@contextmanager
def new_phone(browser: Any, base_url: str, device: dict[str, Any]) -> Iterator[Any]:
    """A fresh phone (its own storage), in China, whose pages must not throw or break their own CSP.
    Refused requests (a 409, a dropped connection) are logged by Chromium and are expected here."""
    context = browser.new_context(base_url=base_url, locale="zh-CN", timezone_id=COMMUNITY_TIMEZONE, **device)
    context.set_default_timeout(UI_TIMEOUT_MS)
    problems: list[str] = []
    context.on("weberror", lambda error: problems.append(f"uncaught: {error.error}"))
    context.on("console", lambda message: problems.append(message.text) if message.type == "error"
               and not message.text.startswith("Failed to load resource") else None)
    try:
        yield context
    finally:
        context.close()
    assert not problems, problems


@pytest.fixture
def phone(browser: Any, base_url: str) -> Iterator[Any]:
    with new_phone(browser, base_url, PHONE) as context:
        yield context


@pytest.fixture
def api(base_url: str) -> Iterator[Api]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield Api(client, ADMIN_TOKEN)


@pytest.fixture
def people(api: Api) -> dict[str, dict[str, Any]]:
    """A grocer who takes welfare, a volunteer with beans, a grandmother with welfare and a few beans."""
    community = api.community()
    staff = api.staff(community["id"])
    grocer = api.account(community["id"], "merchant", "老王杂货店", merchant_categories=["grocery", "vegetable"])
    volunteer = api.account(community["id"], "volunteer", "金豆哥 王师傅")
    grandma = api.account(community["id"], "beneficiary", "李奶奶")
    api.earn(volunteer, staff["token"], "fire")
    api.earn(volunteer, staff["token"], "fire")
    period = datetime.now(timezone.utc).astimezone(ZoneInfo(COMMUNITY_TIMEZONE)).strftime("%Y-%m")
    api.ok("POST", "/v1/welfare/allowances", staff["token"], key=new_key(), status=201, json={
        "community_id": community["id"], "period": period, "amount_per_beneficiary": WELFARE_PER_MONTH,
        "beneficiary_ids": [grandma["id"]],
    })
    api.ok("POST", "/v1/donations", volunteer["token"], {"to_account_id": grandma["id"], "amount": BEANS_DONATED},
           key=new_key(), status=201)
    return {"grocer": grocer, "volunteer": volunteer, "grandma": grandma}


def sign_in(page: Any, path: str, account: dict[str, Any]) -> None:
    page.goto(path)
    page.get_by_label("账户编号").fill(account["id"])
    page.get_by_label("令牌").fill(account["token"])
    page.get_by_role("button", name="登录").click()
    page.locator("#app").wait_for(state="visible")
    assert account["token"] not in page.url


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def shown_code(wallet: Any) -> str:
    """The digits under the wallet's QR code, as the customer would read them out."""
    wallet.locator("#qr svg").wait_for()
    grouped = wallet.locator("#code-digits").inner_text()
    assert re.fullmatch(r"\d{4}( \d{1,4})+", grouped), grouped
    return grouped


def take_payment(merchant: Any, amount: int, code: str) -> None:
    merchant.get_by_label("金额（元）", exact=True).fill(str(amount))
    merchant.get_by_label("付款码", exact=True).fill(code)
    merchant.get_by_role("button", name="确认收款").click()


def test_wallet_shows_balance_and_a_fresh_qr_code(phone: Any, people: dict[str, Any]) -> None:
    wallet = phone.new_page()
    sign_in(wallet, "/wallet", people["grandma"])
    assert wallet.evaluate("document.documentElement.lang") == "zh-CN"
    balances = wallet.locator("#balances")
    balances.get_by_text(str(WELFARE_PER_MONTH), exact=True).wait_for()
    assert wallet.locator("#balance-welfare").inner_text() == str(WELFARE_PER_MONTH)
    assert wallet.locator("#balance-bean").inner_text() == str(BEANS_DONATED)
    first = shown_code(wallet)
    assert len(first.replace(" ", "")) >= 18
    wallet.get_by_text("秒后自动更新").wait_for()
    wallet.locator("#entries-list").get_by_text("每月福利").wait_for()
    wallet.locator("#entries-list").get_by_text("捐赠").wait_for()
    shot(wallet, "wallet")

    wallet.get_by_role("button", name="换一个码").click()
    wallet.wait_for_function("(first) => document.getElementById('code-digits').textContent !== first", arg=first)

    wallet.get_by_role("button", name="Switch to English").click()
    wallet.get_by_role("heading", name="Payment code").wait_for()
    wallet.reload()  # the choice and the sign-in are remembered on this phone
    wallet.get_by_role("heading", name="My balance").wait_for()
    assert wallet.evaluate("document.documentElement.lang") == "en"
    shown_code(wallet)
    shot(wallet, "wallet-en")

    wallet.get_by_role("button", name="Sign out").click()
    wallet.get_by_role("heading", name="Sign in").wait_for()
    assert people["grandma"]["token"] not in wallet.evaluate("JSON.stringify(localStorage)")


def test_wallet_code_is_replaced_before_it_expires(phone: Any, people: dict[str, Any]) -> None:
    wallet = phone.new_page()
    wallet.clock.install()
    sign_in(wallet, "/wallet", people["volunteer"])
    first = shown_code(wallet)
    wallet.clock.fast_forward("01:30")  # 90 s: still the same code
    assert wallet.locator("#code-digits").inner_text() == first
    wallet.clock.fast_forward("00:20")  # 110 s: past the refresh point, 15 s before the 120 s expiry
    wait_for_new_code(wallet, first)

    # Left open on the table, it stops asking for codes after a few, until someone touches it.
    for _ in range(CODE_REFRESHES_UNATTENDED_MAX - 1):
        before = shown_code(wallet)
        wallet.clock.fast_forward("01:50")
        wait_for_new_code(wallet, before)
    wallet.clock.fast_forward("01:50")
    wallet.get_by_text("付款码已暂停更新").wait_for()
    assert wallet.locator("#qr svg").count() == 0 and wallet.locator("#code-digits").inner_text() == ""
    shot(wallet, "wallet-paused")
    wallet.locator("#balances").tap()
    shown_code(wallet)


def wait_for_new_code(wallet: Any, old: str) -> None:
    wallet.wait_for_function("(old) => document.getElementById('code-digits').textContent !== old", arg=old)


def test_merchant_takes_a_typed_code_sees_the_split_and_reverses_it(
    phone: Any, api: Api, people: dict[str, Any]
) -> None:
    grocer, grandma = people["grocer"], people["grandma"]
    wallet = phone.new_page()
    sign_in(wallet, "/wallet", grandma)
    code = shown_code(wallet)

    merchant = phone.new_page()
    sign_in(merchant, "/merchant", grocer)
    merchant.get_by_text("今天还没有收款。").wait_for()
    shot(merchant, "merchant")
    take_payment(merchant, 53, code)  # 50 in welfare first, then 3 beans
    receipt = merchant.locator("#receipt")
    receipt.get_by_role("heading", name="收款成功").wait_for()
    assert merchant.locator("#receipt-amount").inner_text() == "53"
    assert merchant.locator("#receipt-welfare").inner_text() == "50"
    assert merchant.locator("#receipt-bean").inner_text() == "3"
    assert merchant.locator("#receipt-customer").inner_text() == grandma["id"][:4] + "****"
    shot(merchant, "merchant-receipt")
    assert api.balances(grandma["id"]) == {"welfare": 0, "bean": 2}

    merchant.get_by_role("button", name="下一笔").click()
    merchant.locator("#today-list .sale").first.wait_for()
    assert merchant.locator("#total-count").inner_text() == "1"
    assert merchant.locator("#total-amount").inner_text() == "53"
    assert merchant.locator("#total-welfare").inner_text() == "50"
    assert merchant.locator("#total-bean").inner_text() == "3"
    shot(merchant, "merchant-today")

    # The wallet notices the payment by itself and puts up a new code.
    wallet.get_by_text("已付款，余额已更新。").wait_for(timeout=15_000)
    assert wallet.locator("#balance-welfare").inner_text() == "0"
    wallet.wait_for_function("(used) => document.getElementById('code-digits').textContent !== used", arg=code)

    merchant.get_by_role("button", name=re.compile("撤销 .* 53 元收款")).click()
    dialog = merchant.get_by_role("dialog")
    dialog.get_by_text("撤销这笔收款？").wait_for()
    shot(merchant, "merchant-reverse-dialog")
    dialog.get_by_role("button", name="确认撤销").click()
    merchant.get_by_text("已撤销 53 元。").wait_for()
    merchant.locator("#today-list .sale.reversed").wait_for()
    assert merchant.locator("#total-count").inner_text() == "0"
    assert merchant.locator("#total-amount").inner_text() == "0"
    shot(merchant, "merchant-reversed")
    assert api.balances(grandma["id"]) == {"welfare": WELFARE_PER_MONTH, "bean": BEANS_DONATED}


def test_a_lost_answer_is_retried_with_the_same_key_and_charged_once(
    phone: Any, api: Api, people: dict[str, Any]
) -> None:
    volunteer = people["volunteer"]
    code = api.ok("POST", f"/v1/accounts/{volunteer['id']}/payment-codes", volunteer["token"], status=201)["code"]
    merchant = phone.new_page()
    sign_in(merchant, "/merchant", people["grocer"])
    keys: list[str] = []

    def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server takes the payment, but the answer never reaches the phone
            route.abort("connectionreset")
        else:
            route.continue_()

    merchant.route("**/v1/redemptions", lose_first_answer)
    take_payment(merchant, 8, code)
    merchant.get_by_role("alert").get_by_text("同一笔不会重复扣款").wait_for()
    shot(merchant, "merchant-network-retry")
    merchant.get_by_role("button", name="确认收款").click()
    merchant.get_by_role("heading", name="收款成功").wait_for()
    assert merchant.locator("#receipt-bean").inner_text() == "8"
    assert len(keys) == 2 and keys[0] == keys[1]
    assert api.balances(volunteer["id"]) == {"bean": VOLUNTEER_BEANS - 8, "welfare": 0}


# A phone whose browser decodes QR codes (Chrome on Android): the camera is a canvas, and the
# detector "sees" whatever code the test holds up in window.heldUpCode.
CAMERA_AND_DETECTOR = """
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code", "ean_13"]; }
  constructor(options) { window.detectorFormats = options.formats; }
  async detect(source) { return window.heldUpCode ? [{ format: "qr_code", rawValue: window.heldUpCode }] : []; }
};
navigator.mediaDevices.getUserMedia = async (constraints) => {
  window.cameraConstraints = constraints;
  const canvas = Object.assign(document.createElement("canvas"), { width: 64, height: 64 });
  const paint = () => canvas.getContext("2d").fillRect(0, 0, 64, 64);
  paint();
  setInterval(paint, 50);
  window.cameraStream = canvas.captureStream(20);
  return window.cameraStream;
};
"""


def test_merchant_scans_the_customers_qr_code_with_the_camera(
    phone: Any, api: Api, people: dict[str, Any]
) -> None:
    volunteer = people["volunteer"]
    code = api.ok("POST", f"/v1/accounts/{volunteer['id']}/payment-codes", volunteer["token"], status=201)["code"]
    plain = phone.new_page()
    sign_in(plain, "/merchant", people["grocer"])
    # No detector in this browser, yet the till scans (with jsQR: tests/test_till_browser.py).
    assert plain.get_by_role("button", name="用摄像头扫描付款码").is_visible()

    merchant = phone.new_page()
    merchant.add_init_script(CAMERA_AND_DETECTOR)
    merchant.goto("/merchant")  # still signed in on this phone
    merchant.get_by_label("金额（元）", exact=True).fill("6")
    shot(merchant, "merchant-with-camera")
    merchant.get_by_role("button", name="用摄像头扫描付款码").click()
    merchant.get_by_role("dialog").get_by_text("把顾客的二维码放进框内").wait_for()
    shot(merchant, "merchant-scanner")
    merchant.evaluate("(code) => { window.heldUpCode = `jindou:${code}`; }", code)
    merchant.get_by_role("dialog").wait_for(state="hidden")
    assert merchant.get_by_label("付款码", exact=True).input_value().replace(" ", "") == code
    assert merchant.evaluate("window.cameraConstraints.video.facingMode") == "environment"
    assert merchant.evaluate("window.detectorFormats") == ["qr_code"]
    assert merchant.evaluate("window.cameraStream.getTracks().every((track) => track.readyState === 'ended')")
    merchant.get_by_role("button", name="确认收款").click()
    merchant.get_by_role("heading", name="收款成功").wait_for()
    assert api.balances(volunteer["id"]) == {"bean": VOLUNTEER_BEANS - 6, "welfare": 0}


def test_refusals_read_in_chinese(phone: Any, api: Api, people: dict[str, Any]) -> None:
    volunteer = people["volunteer"]
    merchant = phone.new_page()
    sign_in(merchant, "/merchant", people["grocer"])
    code = api.ok("POST", f"/v1/accounts/{volunteer['id']}/payment-codes", volunteer["token"], status=201)["code"]

    take_payment(merchant, 999, code)
    merchant.get_by_role("alert").get_by_text("余额不足").wait_for()

    take_payment(merchant, 5, code)
    merchant.get_by_role("heading", name="收款成功").wait_for()
    merchant.get_by_role("button", name="下一笔").click()
    take_payment(merchant, 5, code)  # the same code again: a code pays once
    merchant.get_by_role("alert").get_by_text("已使用").wait_for()
    shot(merchant, "merchant-error")

    take_payment(merchant, 0, code)
    merchant.get_by_role("alert").get_by_text("金额须为 1 至").wait_for()
    assert api.balances(volunteer["id"]) == {"bean": VOLUNTEER_BEANS - 5, "welfare": 0}


def test_pages_fit_a_small_phone_with_large_tap_targets(browser: Any, base_url: str, people: dict[str, Any]) -> None:
    with new_phone(browser, base_url, SMALL_PHONE) as context:
        page = context.new_page()
        page.goto("/merchant")
        page.get_by_role("heading", name="登录").wait_for()
        shot(page, "merchant-signin")
        for path, holder in (("/merchant", people["grocer"]), ("/wallet", people["grandma"])):
            sign_in(page, path, holder)
            page.locator("#today-list li, #qr svg").first.wait_for()
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= SMALL_PHONE["viewport"]["width"], f"{path} scrolls sideways: {width}px"
            heights = page.eval_on_selector_all(
                "main button:not([hidden])", "buttons => buttons.filter(b => b.offsetParent).map(b => b.offsetHeight)")
            assert heights and min(heights) >= TAP_TARGET_PX_MIN, (path, heights)
            shot(page, f"{path.strip('/')}-375")
