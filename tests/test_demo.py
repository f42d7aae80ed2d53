"""The demo's three months are recorded through the public API under a simulated clock; afterwards
the ledger must still balance and replay, every closed month must be settled and paid in the
next, the activity must be spread over days and hours, and public reports must carry no names
of volunteers or beneficiaries."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.domain import CanCreateTimestamp

from api.demo import (
    SMALL,
    Calendar,
    Timeline,
    populate,
    reset_database,
    run_demo,
    welcome,
)
from domain import clock
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, check_invariants

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO_NOW = datetime(2026, 6, 20, 12, 0, tzinfo=SHANGHAI)  # so the months are known: April, May, June
MONTHS = ("2026-04", "2026-05", "2026-06")


@pytest.mark.backends("memory")
def test_three_demo_months_balance_settle_spread_and_keep_people_private(database_url: str) -> None:
    services = build_services(Settings(database_url=database_url))  # empty: the admin is recorded in the past too
    try:
        demo = populate(services, ADMIN_TOKEN, size=SMALL, now=DEMO_NOW)
        check_invariants(services)
        assert CanCreateTimestamp.__dict__["create_timestamp"].__func__ is not clock.now  # the library's clock is back
        assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)
        assert (len(demo.volunteers), len(demo.elders), len(demo.merchants), len(demo.cards)) == (24, 6, 8, 2)
        with pytest.raises(ValueError):
            populate(services, ADMIN_TOKEN, size=SMALL, now=DEMO_NOW)

        with api_for(services, ADMIN_TOKEN) as api:
            base = f"/v1/public/communities/{demo.community['id']}/fund-reports"
            index = api.ok("GET", base)
            assert [item["period"] for item in index["items"]][-3:] == list(reversed(MONTHS))
            reports = {period: api.ok("GET", f"{base}/{period}") for period in MONTHS}
            public_text = str(reports) + "".join(
                api.call("GET", f"{base}/{period}{suffix}").text for period in MONTHS for suffix in (".html", ".csv"))
            settlements = [api.ok("GET", f"/v1/settlements/{s['id']}", ADMIN_TOKEN) for s in demo.settlements]
            wall = api.ok("GET", f"/v1/public/communities/{demo.community['id']}/wishes")["items"]
            public_text += api.call("GET", f"/v1/public/communities/{demo.community['id']}/wishes.html").text
            sales = [sale for merchant in demo.merchants for period in MONTHS for sale in api.ok(
                "GET", f"/v1/merchants/{merchant['id']}/redemptions?period={period}&limit=500", ADMIN_TOKEN)["items"]]
    finally:
        services.close()

    # April and May were settled early the next month and paid; June is still running.
    assert sorted((s["period"], s["status"]) for s in settlements) == [("2026-04", "paid"), ("2026-05", "paid")]
    paid = {s["period"]: s for s in settlements}
    assert reports["2026-04"]["reimbursements_fen"] == 0
    for settled, paid_in in (("2026-04", "2026-05"), ("2026-05", "2026-06")):
        report = reports[paid_in]
        assert report["reimbursements_fen"] + report["rebates_fen"] == paid[settled]["total_fen"] > 0
        assert report["reimbursements_fen"] == sum(line["reimbursement_fen"] for line in report["merchants"])
    assert reports["2026-05"]["opening_balance_fen"] == reports["2026-04"]["closing_balance_fen"]
    assert reports["2026-06"]["opening_balance_fen"] == reports["2026-05"]["closing_balance_fen"]
    assert all(report["donations_fen"] > 0 and report["coverage_ratio"] > 1 for report in reports.values())
    assert reports["2026-04"]["events_count"] < reports["2026-05"]["events_count"] < reports["2026-06"]["events_count"]

    # The wish wall: two wishes funded by pledges and delivered by local shops, one still gathering beans.
    assert sorted(wish["status"] for wish in wall) == ["fulfilled", "fulfilled", "open"]
    assert sum(report["wishes_fulfilled"] for report in reports.values()) == 2  # each counted in its month

    # Sales happened on their own days and hours, all inside the three months.
    moments = [datetime.fromisoformat(sale["occurred_at"]).astimezone(SHANGHAI) for sale in sales]
    assert len(sales) > 150
    assert len({moment.date() for moment in moments}) > 60 and len({moment.hour for moment in moments}) >= 10
    assert min(moments) >= datetime(2026, 4, 1, tzinfo=SHANGHAI) and max(moments) <= DEMO_NOW
    assert {sale["status"] for sale in sales} == {"completed", "reversed"}

    for person in demo.volunteers + demo.elders:
        assert person["display_name"] not in public_text
    table = welcome(demo, "http://127.0.0.1:8000")
    for expected in (ADMIN_TOKEN, demo.volunteers[0]["token"], "/wallet", "/merchant", "/staff", "fund-reports.html",
                     "wishes.html"):
        assert expected in table
    volunteer_link = demo.sign_in_urls[demo.volunteers[0]["id"]]
    merchant_link = demo.sign_in_urls[demo.merchants[0]["id"]]
    assert volunteer_link and volunteer_link.startswith("http://127.0.0.1:8000/wallet#sign-in=") and volunteer_link in table
    assert merchant_link and merchant_link.startswith("http://127.0.0.1:8000/merchant#sign-in=")
    auditor_link = demo.sign_in_urls[demo.staff["auditor"]["id"]]
    assert auditor_link and auditor_link.startswith("http://127.0.0.1:8000/staff#sign-in=") and auditor_link in table


def test_the_demo_command_is_quiet_and_ends_with_who_to_sign_in_as(caplog) -> None:
    out = io.StringIO()
    settings = Settings(database_url="memory://", admin_token="demo-admin")
    with caplog.at_level(logging.INFO):
        assert run_demo(settings, "127.0.0.1", 8123, serve_after=False, size=SMALL, out=out) == 0
    printed = out.getvalue()
    assert "demo-admin" in printed and "http://127.0.0.1:8123/wallet" in printed and "HTTP Request" not in printed
    assert "http://127.0.0.1:8123/wallet#sign-in=" in printed and "fund-reports.html" in printed
    assert not [record for record in caplog.records if "HTTP Request" in record.getMessage()]
    assert len(printed.splitlines()) < 30


def test_the_demo_leaves_a_history_alone_until_reset(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", admin_token="demo-admin")
    build_services(settings).close()  # someone's history: the admin at least
    out = io.StringIO()
    assert run_demo(settings, "127.0.0.1", 8123, serve_after=False, size=SMALL, out=out) == 0
    assert "--reset" in out.getvalue() and "demo ready" not in out.getvalue()
    reset_database(settings)
    assert not (tmp_path / "demo.db").exists()


def test_the_calendar_reports_how_far_through_the_months_it_is() -> None:
    start = datetime(2026, 4, 1, tzinfo=timezone.utc)
    calendar, heard = Calendar(start + timedelta(days=10)), []
    for day in range(10):
        calendar.add(start + timedelta(days=day, hours=1), lambda: None)
    calendar.run(Timeline(start), heard.append)
    assert len(heard) == 10 and heard == sorted(heard) and 0 < heard[0] < heard[-1] <= 1
