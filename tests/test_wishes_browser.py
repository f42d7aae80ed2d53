"""The wish wall module (api/static/wishes.js) in a real headless Chromium, against a served Jindou.

The wallet and staff pages are being rebuilt elsewhere, so the module is tested on its own: the
existing /wallet page is opened, wishes.js is injected from /static, and each mount function is
called on an element added for it, with a session object shaped as the pages' (call() returns
parsed JSON or throws the API's error, and sends an Idempotency-Key with every POST).
A volunteer pledges on a phone; staff create, fulfil (choosing the merchant) and cancel on a laptop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from infra.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.support import Api
from tests.test_pages_browser import ARTIFACTS, PHONE, browser, new_phone, serving  # noqa: F401 — `browser` is a fixture

pytestmark = pytest.mark.browser

LAPTOP = {"viewport": {"width": 1280, "height": 800}}
WISH_TARGET = 15

SESSION_JS = """([token, kind, communityId]) => {
  window.testSession = {
    token, kind, role: kind, community_id: communityId,
    async call(method, path, body) {
      const headers = { Authorization: `Bearer ${token}` };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
      const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const data = await response.json();
      if (!response.ok) throw data.error;
      return data;
    },
  };
}"""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Jindou served over a fresh SQLite file."""
    database = tmp_path_factory.mktemp("wishes") / "jindou.db"
    with serving(create_app(settings=Settings(database_url=f"sqlite:///{database}", admin_token=ADMIN_TOKEN))) as url:
        yield url


@pytest.fixture
def api(base_url: str) -> Iterator[Api]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield Api(client, ADMIN_TOKEN)


@pytest.fixture
def wall(api: Api) -> dict[str, Any]:
    community = api.community()
    staff = api.staff(community["id"])
    volunteer = api.account(community["id"], "volunteer", "志愿者 小周")
    other = api.account(community["id"], "volunteer", "志愿者 小吴")
    for holder in (volunteer, volunteer, other):
        api.earn(holder, staff["token"], "fire")  # 10 beans each time
    merchant = api.account(community["id"], "merchant", "康复用品店")
    wish = api.ok("POST", "/v1/wishes", staff["token"], {
        "community_id": community["id"], "title": "给张爷爷买一副拐杖", "story": "张爷爷摔伤后行走不便。", "target": WISH_TARGET,
    }, status=201)
    return {"community": community, "staff": staff, "volunteer": volunteer, "other": other, "merchant": merchant,
            "wish": wish}


def mounted(context: Any, holder_token: str, kind: str, community_id: str, mount: str) -> Any:
    """A page that ships the module (/wallet), the module mounted on a new element of its own."""
    page = context.new_page()
    page.goto("/wallet")
    # The module on its own, outside the page's signed-in content (the wallet and the console
    # include and mount it themselves once signed in: tests/test_wallet_browser.py).
    page.evaluate("() => { const s = document.createElement('section'); s.id = 'wishes-under-test';"
                  " document.body.prepend(s); }")
    page.evaluate(SESSION_JS, [holder_token, kind, community_id])
    page.evaluate(f"() => JindouWishes.{mount}(document.getElementById('wishes-under-test'), window.testSession)")
    return page


def test_a_volunteer_pledges_from_the_wallet_on_a_phone(browser: Any, base_url: str, api: Api, wall: dict[str, Any]) -> None:  # noqa: F811
    with new_phone(browser, base_url, PHONE) as context:
        page = mounted(context, wall["volunteer"]["token"], "volunteer", wall["community"]["id"], "mountWallet")
        card = page.locator(f'li[data-wish-id="{wall["wish"]["id"]}"]')
        card.get_by_text("给张爷爷买一副拐杖").wait_for()
        assert "已认领 0 / 15 金豆 · 0 人" in card.inner_text() and "还差 15 金豆" in card.inner_text()
        assert page.locator("link[href='/static/wishes.css']").count() == 1

        amount = card.get_by_label("认领金豆数")
        amount.fill("16")
        card.get_by_role("button", name="认领").click()
        assert card.locator(".jd-pledge-error").inner_text() == "请填写 1 至 15 的整数。"
        amount.fill("10")
        card.get_by_role("button", name="认领").click()
        page.get_by_text("认领成功：10 金豆已存入心愿专户。").wait_for()
        card.get_by_text("已认领 10 / 15 金豆 · 1 人").wait_for()
        assert card.locator("progress").evaluate("bar => [bar.value, bar.max]") == [10, 15]
        assert api.balances(wall["volunteer"]["id"])["bean"] == 10
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        page.screenshot(path=str(ARTIFACTS / "wishes-wallet-phone.png"), full_page=True)

        # Someone else pledges meanwhile: the page still offers 5, the server refuses it in Chinese.
        api.ok("POST", f"/v1/wishes/{wall['wish']['id']}/pledges", wall["other"]["token"], {"amount": 3}, status=201)
        amount.fill("5")
        card.get_by_role("button", name="认领").click()
        card.get_by_text("超过了心愿还差的金豆数，请少认领一些。").wait_for()
        assert api.balances(wall["volunteer"]["id"])["bean"] == 10

        amount.fill("2")
        card.get_by_role("button", name="认领").click()
        page.get_by_text("现在没有待认领的心愿。").wait_for()  # funded: no longer open
        assert api.ok("GET", f"/v1/wishes/{wall['wish']['id']}", wall["staff"]["token"])["status"] == "funded"


def test_the_wall_speaks_english_when_the_page_does(browser: Any, base_url: str, wall: dict[str, Any]) -> None:  # noqa: F811
    with new_phone(browser, base_url, PHONE) as context:
        context.add_init_script("if (location.protocol === 'http:') localStorage.setItem('jindou.language', 'en')")
        page = mounted(context, wall["volunteer"]["token"], "volunteer", wall["community"]["id"], "mountWallet")
        page.get_by_text("0 of 15 beans · 0 pledgers").wait_for()
        assert page.get_by_role("heading", name="Wish wall").is_visible()
        assert page.get_by_role("button", name="Pledge").is_visible()
        page.locator("#language").click()  # the page's own switch: the wall follows it
        page.get_by_text("已认领 0 / 15 金豆 · 0 人").wait_for()
        assert page.get_by_role("heading", name="微心愿").is_visible()


def test_staff_create_fulfil_with_a_merchant_and_cancel(browser: Any, base_url: str, api: Api, wall: dict[str, Any]) -> None:  # noqa: F811
    api.ok("POST", f"/v1/wishes/{wall['wish']['id']}/pledges", wall["volunteer"]["token"], {"amount": 15}, status=201)
    with new_phone(browser, base_url, LAPTOP) as context:
        page = mounted(context, wall["staff"]["token"], "staff", wall["community"]["id"], "mountStaff")
        funded = page.locator(f'li[data-wish-id="{wall["wish"]["id"]}"]')
        funded.get_by_text("已凑齐").wait_for()

        page.get_by_text("新建心愿").click()
        form = page.locator(".jd-create-form")
        form.get_by_label("所需金豆").fill("8")
        form.get_by_role("button", name="发布心愿").click()
        form.locator('.jd-field-error[data-field="title"]').get_by_text("填写有误").wait_for()
        form.get_by_label("心愿标题").fill("帮李阿姨修好窗户")
        form.get_by_label("心愿故事").fill("窗户漏风，冬天很冷。")
        form.get_by_role("button", name="发布心愿").click()
        page.get_by_text("心愿已发布。").wait_for()
        created = page.locator("li.jd-wish", has_text="帮李阿姨修好窗户")
        created.get_by_text("认领中").wait_for()

        # Fulfil the funded wish: no merchant was chosen at creation, so name one.
        funded.get_by_role("button", name="实现心愿").click()
        funded.get_by_text("填写有误，请检查。").wait_for()
        funded.locator(".jd-merchant").select_option(wall["merchant"]["id"])  # the community's shops, by name
        funded.get_by_role("button", name="实现心愿").click()
        page.get_by_text("心愿已实现，金豆已转给商户，月度结算时兑付。").wait_for()
        page.locator(f'li[data-wish-id="{wall["wish"]["id"]}"]').get_by_text("已实现").wait_for()
        assert api.balances(wall["merchant"]["id"])["bean"] == WISH_TARGET

        # Cancel asks once more, in the page.
        created.get_by_role("button", name="取消心愿").click()
        created.get_by_text("确定取消？已认领的金豆将原数退回每位认领人。").wait_for()
        created.get_by_role("button", name="返回").click()
        assert created.get_by_role("button", name="取消心愿").is_visible()
        created.get_by_role("button", name="取消心愿").click()
        created.get_by_role("button", name="确定取消").click()
        page.get_by_text("心愿已取消，金豆已退回。").wait_for()
        page.locator("li.jd-wish", has_text="帮李阿姨修好窗户").get_by_text("已取消").wait_for()
        page.get_by_label("状态").select_option("fulfilled")
        page.locator("li.jd-wish").first.get_by_text("已实现").wait_for()
        assert page.locator("li.jd-wish").count() == 1
        page.screenshot(path=str(ARTIFACTS / "wishes-staff-laptop.png"), full_page=True)


def test_the_public_wall_fits_a_phone(browser: Any, base_url: str, api: Api, wall: dict[str, Any]) -> None:  # noqa: F811
    api.ok("POST", f"/v1/wishes/{wall['wish']['id']}/pledges", wall["volunteer"]["token"], {"amount": 6}, status=201)
    with new_phone(browser, base_url, PHONE) as context:
        page = context.new_page()
        page.goto(f"/v1/public/communities/{wall['community']['id']}/wishes.html")
        page.get_by_role("heading", name="微心愿墙", exact=True).wait_for()
        assert page.locator("progress").evaluate("bar => [bar.value, bar.max]") == [6, WISH_TARGET]
        assert "已认领 6 / 15 金豆 · 1 人" in page.inner_text("body") and "小周" not in page.inner_text("body")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        page.get_by_role("link", name="English").click()
        page.get_by_role("heading", name="Wish wall", exact=True).wait_for()
        page.screenshot(path=str(ARTIFACTS / "wishes-public-wall-phone.png"), full_page=True)
