"""The month's dashboard as a property: whatever reports, awards, rejections, dispatches and
donations happen, its counts and totals are those a model kept alongside says, and a read model
rebuilt from event 1 says the same."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.community import Community
from domain.donating import Donate
from domain.earning import CloseReport, DispatchReport, RejectReport, VerifyReport
from domain.money import Asset
from infra.settings import Settings
from infra.wiring import build_services, memory_read_store
from projections import dashboard
from projections.projector import Projector
from projections.registry import all_projections
from tests.conftest import ADMIN_TOKEN
from tests.support import check_invariants, new_app_community

CATEGORIES = ("security", "fire", "dispute", "sanitation", "resident_need")
OUTCOMES = ("submitted", "verified", "rejected", "dispatched", "closed", "verified_then_closed")
EXAMPLES_MAX = 25
awards = st.integers(min_value=1, max_value=50)
reports = st.tuples(st.sampled_from(CATEGORIES), st.sampled_from(OUTCOMES), st.integers(0, 1), awards)
donations = st.tuples(st.just("donate"), st.integers(0, 1), st.integers(min_value=1, max_value=30))
steps = st.lists(st.one_of(reports, donations), max_size=12)


def month_now(timezone_name: str) -> str:
    return datetime.now(timezone.utc).astimezone(ZoneInfo(timezone_name)).strftime("%Y-%m")


@settings(max_examples=EXAMPLES_MAX, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_the_dashboard_counts_what_happened(plan: list[tuple[Any, ...]]) -> None:
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        community = new_app_community(services)
        app, staff = community.app, community.staff
        volunteers = [community.open("volunteer"), community.open("volunteer")]
        beneficiary = community.open("beneficiary")
        counted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        minted = donated = 0
        active: set[UUID] = set()
        for step in plan:
            if step[0] == "donate":
                _, who, amount = step
                donor = volunteers[who]
                if community.balance(donor, Asset.BEAN) < amount:
                    continue  # the ledger would refuse it: nothing to count
                app.execute(Donate(to_account_id=beneficiary.account_id, amount=amount), donor)
                donated += amount
                continue
            category, outcome, who, award = step
            reporter, other = volunteers[who], volunteers[1 - who]
            report_id = community.report(reporter, category)
            active.add(reporter.account_id)
            status = outcome
            if outcome in ("verified", "verified_then_closed"):
                app.execute(VerifyReport(report_id=report_id, award=award), staff)
                minted += award
                status = "verified"
            if outcome == "rejected":
                app.execute(RejectReport(report_id=report_id, reason="重复上报"), staff)
            if outcome in ("dispatched", "closed", "verified_then_closed"):
                app.execute(DispatchReport(report_id=report_id, handler_ids=(other.account_id,)), staff)
                status = "dispatched"
            if outcome in ("closed", "verified_then_closed"):
                app.execute(CloseReport(report_id=report_id, handler_awards=((str(other.account_id), award),)), staff)
                minted += award
                active.add(other.account_id)
                status = "closed"
            counted[category][status] += 1

        period = month_now(app.reader().get(Community, community.id, "community").timezone)
        services.projector.catch_up()
        with services.store.read() as cursor:
            board = dashboard.month(cursor, str(community.id), period)
        assert board["reports"]["by_category"] == {category: dict(by) for category, by in counted.items()}
        assert board["reports"]["total"] == sum(sum(by.values()) for by in counted.values())
        assert board["beans"] == {"minted": minted, "redeemed": 0, "donated": donated}
        assert board["active_volunteers"] == len(active)

        scratch = Projector(app, memory_read_store(), all_projections())
        scratch.create_tables()
        scratch.catch_up()
        with scratch.store.read() as cursor:
            assert dashboard.month(cursor, str(community.id), period) == board
        scratch.store.close()
        check_invariants(services)
    finally:
        services.close()
