"""The demo month is recorded through the public API; afterwards the ledger must still balance,
every settlement and report must replay identically, and public reports must carry no names of
volunteers or beneficiaries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from api.demo import populate
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, check_invariants


@pytest.mark.backends("memory")
def test_demo_month_balances_replays_and_keeps_people_private(services) -> None:
    demo = populate(services, ADMIN_TOKEN)

    check_invariants(services)
    assert (len(demo.volunteers), len(demo.elders), len(demo.merchants), len(demo.cards)) == (40, 10, 12, 4)
    this_month = datetime.now(ZoneInfo(demo.community["timezone"])).strftime("%Y-%m")
    report_path = f"/v1/public/communities/{demo.community['id']}/fund-reports/{this_month}"
    with api_for(services, ADMIN_TOKEN) as api:
        report = api.ok("GET", report_path)
        page = api.call("GET", report_path + ".html").text + api.call("GET", report_path + ".csv").text
        wall = api.ok("GET", f"/v1/public/communities/{demo.community['id']}/wishes")["items"]
        page += api.call("GET", f"/v1/public/communities/{demo.community['id']}/wishes.html").text
    assert report["donations_fen"] == 3_000_000 + 500_000 + 128_800
    assert report["reimbursements_fen"] == sum(line["reimbursement_fen"] for line in report["merchants"]) > 0
    assert report["rebates_fen"] == sum(line["rebate_fen"] for line in report["merchants"])
    assert sorted(w["status"] for w in wall) == ["fulfilled", "fulfilled", "open"] and report["wishes_fulfilled"] == 2
    for person in demo.volunteers + demo.elders:
        assert person["display_name"] not in page
        assert person["display_name"] not in str(report)
