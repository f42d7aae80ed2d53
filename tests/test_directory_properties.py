"""The directory's keys stay true whatever happens to the items: after any sequence of report
and account changes, every filter combination lists exactly the items a plain scan of the
aggregates finds, newest first, and paging by position neither skips nor repeats one."""

from __future__ import annotations

import itertools
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.accounts import Account, AccountKind, AccountStatus
from domain.bus import Actor
from domain.community import ReportCategory
from domain.earning import CloseReport, DispatchReport, RejectReport, VerifyReport
from domain.errors import DomainError
from domain.people import SetFrozen
from domain.reports import Report, ReportStatus
from infra.settings import Settings
from infra.wiring import Services, build_services
from projections import directory
from tests.conftest import ADMIN_TOKEN
from tests.support import AppCommunity, new_app_community

CATEGORIES = [c.value for c in ReportCategory]
REPORTS_MAX = 8
CHANGES_PER_REPORT_MAX = 3

# Each report's life: who submits it, its category, then the changes staff try on it in turn
# (some refused: verifying twice, closing what was never dispatched...).
report_lives = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from(CATEGORIES),
              st.lists(st.sampled_from(["verify", "reject", "dispatch", "close"]), max_size=CHANGES_PER_REPORT_MAX)),
    max_size=REPORTS_MAX,
)
account_changes = st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=6)  # (account, frozen)


def change_report(community: AppCommunity, report_id: UUID, change: str, handler: Actor) -> None:
    app, staff = community.app, community.staff
    try:
        if change == "verify":
            app.execute(VerifyReport(report_id=report_id), staff)
        elif change == "reject":
            app.execute(RejectReport(report_id=report_id, reason="不属实"), staff)
        elif change == "dispatch":
            app.execute(DispatchReport(report_id=report_id, handler_ids=(handler.account_id,)), staff)
        else:
            app.execute(CloseReport(report_id=report_id, handler_awards=((str(handler.account_id), 1),)), staff)
    except DomainError:
        pass  # a refused change records nothing, and the lists must not move either


def listed(services: Services, key: str, page_size: int) -> list[str]:
    ids: list[str] = []
    before = None
    while True:
        with services.store.read() as cursor:
            rows = directory.item_ids(cursor, key, limit=page_size, before=before)
        ids.extend(row["item_id"] for row in rows)
        if len(rows) < page_size:
            return ids
        before = int(rows[-1]["position"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lives=report_lives, freezes=account_changes, page_size=st.integers(1, 4))
def test_every_filter_combination_lists_exactly_the_matching_items(
    lives: list[tuple[int, str, list[str]]], freezes: list[tuple[int, bool]], page_size: int
) -> None:
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        community = new_app_community(services)
        volunteers = [community.open("volunteer"), community.open("volunteer")]
        accounts = [v.account_id for v in volunteers] + [community.open(kind).account_id for kind in ("beneficiary", "merchant")]
        reports: list[UUID] = []
        for reporter, category, changes in lives:
            reports.append(community.report(volunteers[reporter], category=category))
            for change in changes:
                change_report(community, reports[-1], change, handler=volunteers[1 - reporter])
        for account, frozen in freezes:
            community.app.execute(SetFrozen(account_id=accounts[account], frozen=frozen), community.staff)
        services.projector.catch_up()

        report_aggregates = [services.app.reader().get(Report, r, "report") for r in reversed(reports)]  # newest first
        for status, category, reporter in itertools.product(
            [None, *(s.value for s in ReportStatus)], [None, *CATEGORIES], [None, *(str(v.account_id) for v in volunteers)]
        ):
            expected = [str(r.id) for r in report_aggregates if _matches(r, status, category, reporter)]
            key = directory.REPORTS.key(community_id=str(community.id), status=status, category=category, reporter_id=reporter)
            assert listed(services, key, page_size) == expected, (status, category, reporter)

        account_aggregates = [services.app.reader().get(Account, a, "account") for a in reversed(accounts)]
        for kind, status in itertools.product([None, *(k.value for k in AccountKind)],
                                              [None, *(s.value for s in AccountStatus)]):
            expected = [str(a.id) for a in account_aggregates if _account_matches(a, kind, status)]
            key = directory.ACCOUNTS.key(community_id=str(community.id), kind=kind, status=status)
            assert listed(services, key, page_size) == expected, (kind, status)
    finally:
        services.close()


def _matches(report: Report, status: str | None, category: str | None, reporter: str | None) -> bool:
    return (status in (None, report.status) and category in (None, report.category)
            and reporter in (None, str(report.reporter_id)))


def _account_matches(account: Account, kind: str | None, status: str | None) -> bool:
    return kind in (None, account.kind) and status in (None, account.status)
