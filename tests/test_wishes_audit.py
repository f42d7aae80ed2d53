"""`jindou audit replay` covers the wish wall: its tables, the escrow in the ledger and the fund
report's count of fulfilled wishes, on a stored history someone edited behind the application."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.cli import main
from infra.audit import replay_and_compare
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.audit_history import RawDatabase
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, new_key


def make_wish_history(services: Services) -> dict[str, Any]:
    """Three wishes: one fulfilled and settled, one cancelled after pledges, one still open."""
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        cid = community["id"]
        staff = api.staff(cid)["token"]
        checker = api.staff(cid, "admin")["token"]
        merchant = api.account(cid, "merchant", "爱心超市")
        volunteers = [api.account(cid, "volunteer") for _ in range(3)]
        for volunteer in volunteers:
            api.earn(volunteer, staff, award=40)
        made = [api.ok("POST", "/v1/wishes", staff, {"community_id": cid, "title": f"心愿{i}", "story": "故事",
                                                      "target": 30}, status=201) for i in range(3)]
        for wish, amounts in zip(made, ((10, 20, 0), (5, 5, 5), (7, 0, 0))):
            for volunteer, amount in zip(volunteers, amounts):
                if amount:
                    api.ok("POST", f"/v1/wishes/{wish['id']}/pledges", volunteer["token"], {"amount": amount},
                           key=new_key(), status=201)
        api.ok("POST", f"/v1/wishes/{made[0]['id']}/fulfil", staff, {"merchant_id": merchant["id"]}, key=new_key())
        api.ok("POST", f"/v1/wishes/{made[1]['id']}/cancel", staff, key=new_key())
        period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        api.ok("POST", "/v1/fund/donations", staff, {"community_id": cid, "donor": "商会", "amount_fen": 10_000,
                                                     "received_on": today, "reference": ""}, key=new_key(), status=201)
        settlement = api.ok("POST", "/v1/settlements", staff, {"community_id": cid, "period": period}, status=201)
        api.ok("POST", f"/v1/settlements/{settlement['id']}/approve", checker)
        api.ok("POST", f"/v1/settlements/{settlement['id']}/pay", staff, {"bank_reference": "BANK-1"})
    return {"community_id": cid, "wishes": made, "period": period}


@pytest.fixture
def wish_history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, dict[str, Any]]]:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    made = make_wish_history(services)
    monkeypatch.setenv("JINDOU_DATABASE_URL", database_url)
    monkeypatch.delenv("JINDOU_ADMIN_TOKEN", raising=False)
    try:
        yield services, made
    finally:
        services.close()


def test_replay_of_a_wish_history_equals_live_on_every_backend(services: Services) -> None:
    make_wish_history(services)
    report = replay_and_compare(services.app, services.store)
    assert report.ok, [t for t in report.tables if t.count]
    assert {"wishes", "wish_pledgers"} <= {t.table for t in report.tables}


@pytest.mark.backends("sqlite", "postgres")
def test_replay_names_wish_rows_and_reports_edited_directly(wish_history, capsys) -> None:
    services, made = wish_history
    code = main(["audit", "replay"])
    out = capsys.readouterr().out
    assert code == 0, out
    raw = RawDatabase(services)
    open_wish = made["wishes"][2]["id"]
    raw.execute("UPDATE wishes SET pledged = pledged + 20 WHERE wish_id = ?", (open_wish,))
    raw.execute("UPDATE wishes SET fulfilled_period = '2000-01' WHERE status = 'fulfilled'")
    code = main(["audit", "replay"])
    out = capsys.readouterr().out
    assert code == 1
    assert "wishes: 2 difference(s)" in out and "pledged live=27 replay=7" in out
    assert f"{made['community_id']} {made['period']}: wishes_fulfilled live=0 replay=1" in out
