"""The till (/merchant) in a real headless Chromium, on a phone (390x844) and a laptop (1280x800).

The camera test feeds Chromium a real QR image as its camera: the server renders the customer's
payment code as PNG, the test turns it into a .y4m video, and Chromium's fake capture device plays
it (`--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE.y4m`). This Chromium
has no BarcodeDetector, so the page decodes the frames with the vendored jsQR: nothing is stubbed.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from tests.support import Api, new_key
from tests.test_pages_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    CHROMIUM_ARGS,
    COMMUNITY_TIMEZONE,
    PHONE,
    api,
    base_url,
    browser,
    new_phone,
    shot,
    sign_in,
    take_payment,
)

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1280, "height": 800}}
DEVICES = {"phone": PHONE, "laptop": LAPTOP}
CAMERA_FRAME_SIZE_PX = (640, 480)
CAMERA_FRAMES = 10
QR_SIZE_PX = 360
BEANS = 20  # the volunteer's two fire reports
CARD_DAILY_LIMIT = 20
CARD_SPENT_FIRST = 12
SALE_YUAN = 7
REBATE_RATE_BPS = 1000  # the default

# Every sentence the till speaks, kept for the test (the speaking itself is the browser's).
RECORD_SPEECH = """
window.spoken = [];
if ("speechSynthesis" in window) {
  const speak = speechSynthesis.speak.bind(speechSynthesis);
  speechSynthesis.speak = (utterance) => { window.spoken.push(utterance.text); speak(utterance); };
}
"""


def this_period() -> str:
    return datetime.now(timezone.utc).astimezone(ZoneInfo(COMMUNITY_TIMEZONE)).strftime("%Y-%m")


@pytest.fixture
def shop(api: Api) -> dict[str, Any]:
    """A grocer, a volunteer with beans and a grandmother with welfare credits and a printed card."""
    community = api.community()
    staff = api.staff(community["id"])
    grocer = api.account(community["id"], "merchant", "老王杂货店", merchant_categories=["grocery"])
    volunteer = api.account(community["id"], "volunteer", "王师傅")
    grandma = api.account(community["id"], "beneficiary", "李奶奶")
    api.earn(volunteer, staff["token"], "fire")
    api.earn(volunteer, staff["token"], "fire")
    api.ok("POST", "/v1/welfare/allowances", staff["token"], key=new_key(), status=201, json={
        "community_id": community["id"], "period": this_period(), "amount_per_beneficiary": 50,
        "beneficiary_ids": [grandma["id"]],
    })
    card = api.ok("POST", f"/v1/accounts/{grandma['id']}/cards", staff["token"], {"daily_limit": CARD_DAILY_LIMIT},
                  status=201)
    return {"staff": staff, "grocer": grocer, "volunteer": volunteer, "grandma": grandma, "card": card["card_code"]}


def payment_code(api: Api, holder: dict[str, Any]) -> str:
    return api.ok("POST", f"/v1/accounts/{holder['id']}/payment-codes", holder["token"], status=201)["code"]


def camera_video(api: Api, holder: dict[str, Any], code: str, path: Path) -> Path:
    """The QR the server renders for `code`, held up in front of a fake camera: a 4:2:0 .y4m file."""
    response = api.call("GET", f"/v1/accounts/{holder['id']}/payment-codes/{code}.png", holder["token"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    qr = Image.open(io.BytesIO(response.content)).convert("L").resize((QR_SIZE_PX, QR_SIZE_PX), Image.NEAREST)
    width, height = CAMERA_FRAME_SIZE_PX
    frame = Image.new("L", CAMERA_FRAME_SIZE_PX, 235)  # a pale counter top around the phone's screen
    frame.paste(qr, ((width - QR_SIZE_PX) // 2, (height - QR_SIZE_PX) // 2))
    luma, blue, red = frame.convert("RGB").convert("YCbCr").split()
    chroma = [plane.resize((width // 2, height // 2)).tobytes() for plane in (blue, red)]
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(CAMERA_FRAMES):
            video.write(b"FRAME\n" + luma.tobytes() + chroma[0] + chroma[1])
    return path


@contextmanager
def till_with_camera(browser: Any, base_url: str, device: dict[str, Any], video: Path) -> Iterator[Any]:
    """A second Chromium, whose camera films `video`, and one page of it."""
    arguments = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={video}"]
    launched = browser.browser_type.launch(executable_path=str(CHROMIUM), args=arguments)
    try:
        with new_phone(launched, base_url, device) as context:
            context.grant_permissions(["camera"], origin=base_url)
            page = context.new_page()
            page.add_init_script(RECORD_SPEECH)
            yield page
    finally:
        launched.close()


@pytest.mark.parametrize("device", DEVICES)
def test_the_till_scans_a_real_qr_from_the_camera_with_the_fallback_decoder(
    device: str, browser: Any, base_url: str, api: Api, shop: dict[str, Any], tmp_path: Path,
) -> None:
    code = payment_code(api, shop["volunteer"])
    video = camera_video(api, shop["volunteer"], code, tmp_path / "camera.y4m")
    with till_with_camera(browser, base_url, DEVICES[device], video) as till:
        sign_in(till, "/merchant", shop["grocer"])
        assert till.evaluate("'BarcodeDetector' in window") is False  # so the vendored decoder does the work
        till.get_by_label("金额（元）", exact=True).fill(str(SALE_YUAN))
        till.get_by_role("button", name="用摄像头扫描付款码").click()
        shot(till, f"till-scanning-{device}")
        till.get_by_role("dialog").wait_for(state="hidden", timeout=20_000)
        assert till.locator("#scanner-video").get_attribute("data-decoder") == "jsqr"
        typed = till.get_by_label("付款码", exact=True).input_value()
        assert typed.replace(" ", "") == code and re.fullmatch(r"\d{4}( \d{4})*", typed), typed
        till.get_by_role("button", name="确认收款").click()

        banner = till.locator("#receipt-spoken")
        banner.wait_for()
        assert banner.inner_text() == f"收款 {SALE_YUAN} 元"
        assert till.evaluate("window.spoken") == [f"收款 {SALE_YUAN} 元"]
        assert banner.evaluate("(node) => parseFloat(getComputedStyle(node).fontSize)") >= 30
        shot(till, f"till-confirmed-{device}")
    assert api.balances(shop["volunteer"]["id"]) == {"bean": BEANS - SALE_YUAN, "welfare": 0}


@pytest.mark.parametrize("device", DEVICES)
def test_the_till_refuses_decimals_and_says_used_and_what_a_card_has_left(
    device: str, browser: Any, base_url: str, api: Api, shop: dict[str, Any],
) -> None:
    with new_phone(browser, base_url, DEVICES[device]) as context:
        till = context.new_page()
        sales_sent: list[str] = []
        till.on("request", lambda request: sales_sent.append(request.url) if request.url.endswith("/v1/redemptions") else None)
        sign_in(till, "/merchant", shop["grocer"])
        code = payment_code(api, shop["volunteer"])

        take_payment(till, "8.50", code)  # type: ignore[arg-type]
        till.get_by_role("alert").get_by_text("只收整数元").wait_for()
        assert "8.50" in till.get_by_role("alert").inner_text() and sales_sent == []
        shot(till, f"till-decimal-{device}")

        # Typed by hand: the digits group by four as they are typed.
        till.get_by_label("金额（元）", exact=True).fill("5")
        till.get_by_label("付款码", exact=True).fill("")
        till.get_by_label("付款码", exact=True).press_sequentially(code[:10])
        assert till.get_by_label("付款码", exact=True).input_value() == f"{code[:4]} {code[4:8]} {code[8:10]}"
        till.get_by_label("付款码", exact=True).press_sequentially(code[10:])
        till.get_by_role("button", name="确认收款").click()
        till.get_by_role("heading", name="收款成功").wait_for()
        till.get_by_role("button", name="下一笔").click()
        take_payment(till, 5, code)
        till.get_by_role("alert").get_by_text("已使用").wait_for()
        shot(till, f"till-used-{device}")

        redeemed = api.call("POST", "/v1/redemptions", shop["grocer"]["token"],
                            {"payment_code": shop["card"], "amount": CARD_SPENT_FIRST}, key=new_key())
        assert redeemed.status_code == 201
        take_payment(till, 9, shop["card"])
        till.get_by_role("alert").get_by_text(f"这张卡今天还可用 {CARD_DAILY_LIMIT - CARD_SPENT_FIRST} 元").wait_for()
        shot(till, f"till-card-limit-{device}")
    assert api.balances(shop["volunteer"]["id"]) == {"bean": BEANS - 5, "welfare": 0}


@pytest.mark.parametrize("device", DEVICES)
def test_the_till_shows_a_months_sales_and_the_expected_repayment(
    device: str, browser: Any, base_url: str, api: Api, shop: dict[str, Any],
) -> None:
    for amount in (SALE_YUAN, 3):
        sold = api.call("POST", "/v1/redemptions", shop["grocer"]["token"],
                        {"payment_code": payment_code(api, shop["volunteer"]), "amount": amount}, key=new_key())
        assert sold.status_code == 201
    with new_phone(browser, base_url, DEVICES[device]) as context:
        till = context.new_page()
        sign_in(till, "/merchant", shop["grocer"])
        history = till.locator("#history")
        history.locator("#history-list .sale").nth(1).wait_for()
        year, month = this_period().split("-")
        assert history.get_by_label("月份").input_value() == this_period()
        assert f"{year}年{int(month)}月" in history.get_by_label("月份").inner_text()
        redeemed = SALE_YUAN + 3
        rebate_fen = redeemed * 100 * REBATE_RATE_BPS // 10000
        assert till.locator("#month-count").inner_text() == "2"
        assert till.locator("#month-redeemed").inner_text() == str(redeemed)
        expected_total = f"¥{redeemed + rebate_fen // 100}" + (f".{rebate_fen % 100:02d}" if rebate_fen % 100 else "")
        assert till.locator("#month-repayment").inner_text() == expected_total
        assert "返利率 10%" in till.locator("#month-repayment-detail").inner_text()
        shot(till, f"till-month-{device}")

        history.get_by_label("月份").select_option(index=1)  # last month: nothing sold here then
        history.get_by_text("这个月没有收款。").wait_for()
        assert till.locator("#month-repayment").inner_text() == "¥0"
