"""The wallet's own transparency check, in a real headless Chromium: transparency.js verifies an
entry against the signed head of the community's fund report with WebCrypto (SHA-256, Ed25519),
through today's tree and a consistency proof when the entry is newer than the report, and says no
once the database was rewritten behind the report's back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.app import create_app
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.audit_history import RawDatabase, rewrite_chain_and_tree
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, new_key
from tests.test_pages_browser import PHONE, chromium, serving

pytestmark = pytest.mark.browser

UI_TIMEOUT_MS = 15_000
CHECK = "([account, entry, token]) => window.JindouTransparency.checkEntry(account, entry, token)"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Services, str]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'jindou.db'}", admin_token=ADMIN_TOKEN,
                        transparency_key_file=str(tmp_path / "signing.key"))
    services = build_services(settings)
    try:
        with serving(create_app(services)) as url:
            yield services, url
    finally:
        services.close()


@pytest.fixture
def wallet(served: tuple[Services, str]) -> Iterator[Any]:
    _, base_url = served
    with chromium() as browser:
        context = browser.new_context(base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai", **PHONE)
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto("/wallet")
        page.wait_for_function("() => window.JindouTransparency !== undefined")
        yield page
        assert not errors, errors


def _people(api: Api) -> dict[str, Any]:
    community = api.community()
    staff = api.staff(community["id"])
    volunteer = api.account(community["id"], "volunteer")
    beneficiary = api.account(community["id"], "beneficiary")
    api.earn(volunteer, staff["token"], "fire")
    return {"community": community, "staff": staff, "volunteer": volunteer, "beneficiary": beneficiary}


def _entry_ids(api: Api, volunteer: dict[str, Any]) -> list[str]:
    items = api.ok("GET", f"/v1/accounts/{volunteer['id']}/entries", volunteer["token"])["items"]
    return [item["entry_id"] for item in items]  # newest first


def test_the_wallet_verifies_an_entry_against_the_published_head(served, wallet) -> None:
    services, _ = served
    with api_for(services, ADMIN_TOKEN) as api:
        people = _people(api)
        volunteer = people["volunteer"]
        (entry_id,) = _entry_ids(api, volunteer)
    period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    result = wallet.evaluate(CHECK, [volunteer["id"], entry_id, volunteer["token"]])
    assert result == {"verified": True, "period": period, "reason": "in the published tree"}
    assert wallet.evaluate(CHECK, [volunteer["id"], "999999.0", volunteer["token"]])["verified"] is False
    stranger = wallet.evaluate(CHECK, [volunteer["id"], entry_id, "not-a-token"])
    assert stranger["verified"] is False and "HTTP 401" in stranger["reason"]


def test_a_newer_entry_is_proved_through_today_s_tree_and_a_rewrite_is_refused(served, wallet) -> None:
    services, _ = served
    with api_for(services, ADMIN_TOKEN) as api:
        people = _people(api)
        period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        report_path = f"/v1/public/communities/{people['community']['id']}/fund-reports/{period}"
        published = api.ok("GET", report_path)  # printed on the notice board this morning
        volunteer = people["volunteer"]
        api.ok("POST", "/v1/donations", volunteer["token"], {"to_account_id": people["beneficiary"]["id"], "amount": 4},
               key=new_key(), status=201)
        newest, older = _entry_ids(api, volunteer)
    # The wallet sees the report as it was published, not as the server would cut it now.
    wallet.route(f"**{report_path}", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                  body=json.dumps(published)))
    result = wallet.evaluate(CHECK, [volunteer["id"], newest, volunteer["token"]])
    assert result == {"verified": True, "period": period,
                      "reason": "in today's tree, which extends the published one"}
    assert wallet.evaluate(CHECK, [volunteer["id"], older, volunteer["token"]])["reason"] == "in the published tree"

    raw = RawDatabase(services)
    raw.edit_state(raw.positions_of("Report.Verified")[0], award=500)  # beans that were never earned
    rewrite_chain_and_tree(services, raw)
    refused = wallet.evaluate(CHECK, [volunteer["id"], newest, volunteer["token"]])
    assert refused == {"verified": False, "period": period,
                       "reason": "today's ledger does not extend the published one: history was rewritten"}
    assert wallet.evaluate(CHECK, [volunteer["id"], older, volunteer["token"]])["verified"] is False
