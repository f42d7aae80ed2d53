"""The ledger core through the application itself (`services.app`), on memory, SQLite and
PostgreSQL: earning with provenance, dispatch and close, maker-checker, verifying twice,
frozen accounts, donations, idempotency. Every test ends with the ledger invariants."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.accounts import Account
from domain.donating import Donate
from domain.earning import (
    CloseReport,
    DispatchReport,
    RejectReport,
    SubmitReport,
    VerifyReport,
)
from domain.errors import (
    AccountFrozen,
    Forbidden,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidState,
    NotFound,
    ReplayedDecline,
    SamePerson,
    ValidationFailed,
)
from domain.money import SystemAccount, decode_postings, system_account
from domain.people import OpenAccount, RegisterCommunity, SetFrozen
from domain.reports import Report
from domain.writer import IdempotencyKey
from infra.wiring import Services
from tests.support import AppCommunity, check_invariants, new_app_community, new_key


@pytest.fixture
def community(services: Services) -> AppCommunity:
    return new_app_community(services)


def events_of(services: Services, aggregate_id: UUID) -> list[Any]:
    return list(services.app.repository.event_store.get(aggregate_id))


# --- earning -------------------------------------------------------------------------------


def test_verified_report_mints_the_scheduled_award_with_its_provenance(community: AppCommunity) -> None:
    volunteer = community.open("volunteer", "金豆哥 王师傅")
    report_id = community.report(volunteer, "fire")

    outcome = community.app.execute(VerifyReport(report_id=report_id), community.staff)

    assert outcome.result == {"id": str(report_id), "status": "verified", "award": 10}
    assert community.balance(volunteer) == 10
    verified = events_of(community.services, report_id)[-1]
    assert type(verified).__qualname__ == "Report.Verified"
    assert verified.verified_by == community.staff.label
    postings = decode_postings(verified.postings)
    issuance = system_account(community.id, SystemAccount.ISSUANCE)
    assert {(p.account_id, p.amount) for p in postings} == {(issuance, -10), (str(volunteer.account_id), 10)}
    posted = events_of(community.services, volunteer.account_id)[-1]
    assert type(posted).__qualname__ == "Account.Posted"
    assert posted.transaction_id == verified.transaction_id and posted.deltas == {"bean": 10}
    check_invariants(community.services)


@pytest.mark.parametrize(("category", "award"), [("security", 5), ("fire", 10), ("dispute", 5), ("sanitation", 2), ("resident_need", 3)])
@pytest.mark.backends("memory")
def test_default_award_schedule_per_category(community: AppCommunity, category: str, award: int) -> None:
    volunteer = community.open("volunteer")
    outcome = community.app.execute(VerifyReport(report_id=community.report(volunteer, category)), community.staff)
    assert outcome.result["award"] == award
    assert community.balance(volunteer) == award


@pytest.mark.backends("memory", "sqlite")
def test_a_communitys_own_schedule_and_an_explicit_award_win(services: Services) -> None:
    community = new_app_community(services, award_schedule={"sanitation": 7})
    volunteer = community.open("volunteer")
    scheduled = VerifyReport(report_id=community.report(volunteer, "sanitation"))
    assert community.app.execute(scheduled, community.staff).result["award"] == 7
    chosen = VerifyReport(report_id=community.report(volunteer), award=42)
    assert community.app.execute(chosen, community.staff).result["award"] == 42
    assert community.balance(volunteer) == 49
    check_invariants(services)


@pytest.mark.parametrize("award", [0, -5, 10_001, 2.5, True, "10"])
@pytest.mark.backends("memory")
def test_awards_are_whole_positive_and_bounded(community: AppCommunity, award: object) -> None:
    volunteer = community.open("volunteer")
    report_id = community.report(volunteer)
    with pytest.raises(ValidationFailed):
        community.app.execute(VerifyReport(report_id=report_id, award=award), community.staff)  # type: ignore[arg-type]
    assert community.app.reader().get(Report, report_id, "report").status == "submitted"
    assert community.balance(volunteer) == 0


def test_verifying_twice_is_invalid_state_and_mints_nothing_twice(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    report_id = community.report(volunteer)
    community.app.execute(VerifyReport(report_id=report_id, award=8), community.staff)
    events_before = community.services.projector.head()

    with pytest.raises(InvalidState) as raised:
        community.app.execute(VerifyReport(report_id=report_id, award=8), community.staff)
    assert raised.value.details["status"] == "verified"
    with pytest.raises(InvalidState):
        community.app.execute(RejectReport(report_id=report_id, reason="重复"), community.staff)

    assert community.services.projector.head() == events_before
    assert community.balance(volunteer) == 8
    check_invariants(community.services)


def test_a_rejected_report_mints_nothing_and_cannot_be_verified(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    report_id = community.report(volunteer)
    rejected = community.app.execute(RejectReport(report_id=report_id, reason="  照片看不清  "), community.staff)
    assert rejected.result["status"] == "rejected"
    with pytest.raises(InvalidState):
        community.app.execute(VerifyReport(report_id=report_id), community.staff)
    assert community.balance(volunteer) == 0
    check_invariants(community.services)


def test_maker_checker_a_staff_member_cannot_verify_their_own_report(community: AppCommunity) -> None:
    volunteer = community.open("volunteer", "既是志愿者又是网格员")
    same_person = community.register_staff("staff", account_id=volunteer.account_id)
    assert same_person.account_id == volunteer.account_id
    report_id = community.report(volunteer)

    with pytest.raises(SamePerson):
        community.app.execute(VerifyReport(report_id=report_id), same_person)
    assert community.balance(volunteer) == 0

    community.app.execute(VerifyReport(report_id=report_id), community.staff)  # someone else may
    assert community.balance(volunteer) == 10
    check_invariants(community.services)


@pytest.mark.backends("memory")
def test_staff_link_only_to_a_volunteer_of_their_own_community(services: Services) -> None:
    here, there = new_app_community(services), new_app_community(services)
    beneficiary = here.open("beneficiary")
    volunteer_there = there.open("volunteer")
    for account_id in (beneficiary.account_id, volunteer_there.account_id):
        with pytest.raises(ValidationFailed):
            here.register_staff("staff", account_id=account_id)
    with pytest.raises(NotFound):
        here.register_staff("staff", account_id=uuid4())


def test_dispatch_and_close_mint_each_handlers_award_in_one_transaction(community: AppCommunity) -> None:
    reporter = community.open("volunteer")
    first, second, idle = (community.open("volunteer") for _ in range(3))
    report_id = community.report(reporter, "dispute")
    handler_ids = (first.account_id, second.account_id, idle.account_id)
    community.app.execute(DispatchReport(report_id=report_id, handler_ids=handler_ids), community.staff)

    awards = {str(first.account_id): 6, str(second.account_id): 4}
    close = CloseReport(report_id=report_id, handler_awards=tuple(awards.items()))
    outcome = community.app.execute(close, community.staff)

    assert outcome.result["status"] == "closed" and outcome.result["handler_awards"] == awards
    assert [community.balance(h) for h in (first, second, idle, reporter)] == [6, 4, 0, 0]
    closed = events_of(community.services, report_id)[-1]
    assert type(closed).__qualname__ == "Report.Closed" and closed.closed_by == community.staff.label
    issuance = system_account(community.id, SystemAccount.ISSUANCE)
    assert sum(p.amount for p in decode_postings(closed.postings) if p.account_id == issuance) == -10
    with pytest.raises(InvalidState):
        community.app.execute(close, community.staff)
    assert community.balance(first) == 6
    check_invariants(community.services)


def test_only_staff_mint_awards_whatever_the_route_admits(community: AppCommunity) -> None:
    """The handlers refuse by themselves: a route's `roles=` is not the only guard on a mint."""
    reporter, handler, other = (community.open("volunteer") for _ in range(3))
    auditor = community.register_staff("auditor")
    verifiable = community.report(reporter)
    dispatched = community.report(reporter)
    community.app.execute(DispatchReport(report_id=dispatched, handler_ids=(handler.account_id,)), community.staff)

    for outsider in (other, handler, auditor):
        with pytest.raises(Forbidden, match="only staff and admins verify reports"):
            community.app.execute(VerifyReport(report_id=verifiable, award=50), outsider)
        with pytest.raises(Forbidden, match="only staff and admins close reports"):
            community.app.execute(CloseReport(report_id=dispatched, handler_awards=((str(handler.account_id), 50),)),
                                  outsider)
    assert [community.balance(v) for v in (reporter, handler, other)] == [0, 0, 0]

    community.app.execute(VerifyReport(report_id=verifiable), community.staff)
    community.app.execute(CloseReport(report_id=dispatched, handler_awards=((str(handler.account_id), 5),)),
                          community.staff)
    assert [community.balance(v) for v in (reporter, handler)] == [10, 5]
    check_invariants(community.services)


def test_a_verified_report_can_still_be_dispatched_and_both_awards_stand(community: AppCommunity) -> None:
    reporter, handler = community.open("volunteer"), community.open("volunteer")
    report_id = community.report(reporter, "resident_need")
    community.app.execute(VerifyReport(report_id=report_id), community.staff)
    community.app.execute(DispatchReport(report_id=report_id, handler_ids=(handler.account_id,)), community.staff)
    community.app.execute(CloseReport(report_id=report_id, handler_awards=((str(handler.account_id), 5),)),
                          community.staff)
    assert (community.balance(reporter), community.balance(handler)) == (3, 5)
    check_invariants(community.services)


def test_an_urgent_report_dispatched_first_is_verified_afterwards_once(community: AppCommunity) -> None:
    """The fire at 金夏苑: staff dispatch the patrol at once and verify the report later."""
    reporter, handler = community.open("volunteer"), community.open("volunteer")
    report_id = community.report(reporter, "fire")
    community.app.execute(DispatchReport(report_id=report_id, handler_ids=(handler.account_id,)), community.staff)
    community.app.execute(CloseReport(report_id=report_id, handler_awards=((str(handler.account_id), 5),)),
                          community.staff)

    verified = community.app.execute(VerifyReport(report_id=report_id), community.staff).result
    assert verified["award"] == 10 and verified["status"] == "closed"  # verifying does not reopen it
    with pytest.raises(InvalidState):
        community.app.execute(VerifyReport(report_id=report_id), community.staff)
    assert (community.balance(reporter), community.balance(handler)) == (10, 5)
    check_invariants(community.services)


def test_a_rejected_report_is_never_verified(community: AppCommunity) -> None:
    report_id = community.report(community.open("volunteer"))
    community.app.execute(RejectReport(report_id=report_id, reason="经核实信息不属实"), community.staff)
    with pytest.raises(InvalidState):
        community.app.execute(VerifyReport(report_id=report_id), community.staff)


def test_closing_with_no_awards_moves_nothing_and_the_read_model_goes_on(community: AppCommunity) -> None:
    reporter, handler = community.open("volunteer"), community.open("volunteer")
    report_id = community.report(reporter)
    community.app.execute(DispatchReport(report_id=report_id, handler_ids=(handler.account_id,)), community.staff)
    closed = community.app.execute(CloseReport(report_id=report_id, handler_awards=()), community.staff)
    assert closed.result["status"] == "closed"
    community.earn(handler, 2)  # the projection must have got past the empty close
    assert community.balance(handler) == 2
    check_invariants(community.services)


@pytest.mark.backends("memory", "sqlite")
def test_close_refuses_strangers_self_awards_and_bad_amounts(community: AppCommunity) -> None:
    reporter, handler, stranger = (community.open("volunteer") for _ in range(3))
    staff_handler = community.register_staff("staff", account_id=handler.account_id)
    report_id = community.report(reporter)
    community.app.execute(DispatchReport(report_id=report_id, handler_ids=(handler.account_id,)), community.staff)

    with pytest.raises(ValidationFailed):
        community.app.execute(CloseReport(report_id=report_id, handler_awards=((str(stranger.account_id), 5),)),
                              community.staff)
    with pytest.raises(SamePerson):
        community.app.execute(CloseReport(report_id=report_id, handler_awards=((str(handler.account_id), 5),)),
                              staff_handler)
    for bad in (0, -1, 10_001):
        with pytest.raises(ValidationFailed):
            community.app.execute(CloseReport(report_id=report_id, handler_awards=((str(handler.account_id), bad),)),
                                  community.staff)
    assert community.app.reader().get(Report, report_id, "report").status == "dispatched"
    assert community.balance(handler) == 0
    check_invariants(community.services)


@pytest.mark.backends("memory", "sqlite")
def test_dispatch_only_to_distinct_volunteers_of_the_community(services: Services) -> None:
    here, there = new_app_community(services), new_app_community(services)
    reporter, handler = here.open("volunteer"), here.open("volunteer")
    report_id = here.report(reporter)
    for handler_ids in ([], [handler.account_id, handler.account_id], [here.open("beneficiary").account_id],
                        [there.open("volunteer").account_id]):
        with pytest.raises(ValidationFailed):
            here.app.execute(DispatchReport(report_id=report_id, handler_ids=tuple(handler_ids)), here.staff)
    with pytest.raises(NotFound):
        here.app.execute(DispatchReport(report_id=report_id, handler_ids=(uuid4(),)), here.staff)
    with pytest.raises(Forbidden):
        here.app.execute(DispatchReport(report_id=report_id, handler_ids=(handler.account_id,)), there.staff)
    assert here.app.reader().get(Report, report_id, "report").status == "submitted"


# --- reports: who and what --------------------------------------------------------------------


@pytest.mark.backends("memory")
def test_only_volunteers_report_and_only_known_categories(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    for kind in ("beneficiary", "merchant"):
        with pytest.raises(Forbidden):
            community.app.execute(SubmitReport(category="fire", description="x"), community.open(kind))
    for category in ("arson", "", "FIRE"):
        with pytest.raises(ValidationFailed):
            community.app.execute(SubmitReport(category=category, description="x"), volunteer)
    for description in ("", "   ", "x" * 2_001, "有\x00空字符", None):
        with pytest.raises(ValidationFailed):
            report = SubmitReport(category="fire", description=description)  # type: ignore[arg-type]
            community.app.execute(report, volunteer)
    multiline = community.app.execute(SubmitReport(category="fire", description="\t一楼\r\n二楼 "), volunteer)
    assert multiline.result["description"] == "一楼\r\n二楼"


@pytest.mark.backends("memory")
def test_staff_of_another_community_can_touch_nothing_here(services: Services) -> None:
    here, there = new_app_community(services), new_app_community(services)
    volunteer = here.open("volunteer")
    report_id = here.report(volunteer)
    with pytest.raises(Forbidden):
        here.app.execute(VerifyReport(report_id=report_id), there.staff)
    with pytest.raises(Forbidden):
        here.app.execute(RejectReport(report_id=report_id, reason="不是我们社区的"), there.staff)
    with pytest.raises(Forbidden):
        here.app.execute(SetFrozen(account_id=volunteer.account_id, frozen=True), there.staff)
    with pytest.raises(Forbidden):
        here.app.execute(OpenAccount(community_id=here.id, kind="volunteer", display_name="越权"), there.staff)
    assert here.app.reader().get(Report, report_id, "report").status == "submitted"
    assert not here.app.reader().get(Account, volunteer.account_id, "account").is_frozen


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "名字\x00", "tab\there", "bell\x07", None, 5])
def test_names_with_control_characters_or_out_of_bounds_are_refused(community: AppCommunity, name: object) -> None:
    events_before = community.services.projector.head()
    with pytest.raises(ValidationFailed):
        opening = OpenAccount(community_id=community.id, kind="volunteer", display_name=name)  # type: ignore[arg-type]
        community.app.execute(opening, community.staff)
    with pytest.raises(ValidationFailed):
        community.app.execute(RegisterCommunity(name=name), community.admin)  # type: ignore[arg-type]
    assert community.services.projector.head() == events_before


# --- frozen accounts ------------------------------------------------------------------------


def test_a_frozen_account_can_receive_but_not_spend(community: AppCommunity) -> None:
    volunteer, grandma = community.open("volunteer"), community.open("beneficiary", "李奶奶")
    community.earn(volunteer, 10)
    freezing = SetFrozen(account_id=volunteer.account_id, frozen=True)
    assert community.app.execute(freezing, community.staff).result["status"] == "frozen"

    community.earn(volunteer, 5)  # receiving still works
    with pytest.raises(AccountFrozen):
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=1), volunteer)
    assert community.balance(volunteer) == 15

    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=True), community.staff)
    unfreezing = SetFrozen(account_id=volunteer.account_id, frozen=False)
    assert community.app.execute(unfreezing, community.staff).result["status"] == "active"
    # a frozen beneficiary receives
    community.app.execute(Donate(to_account_id=grandma.account_id, amount=15), volunteer)
    assert (community.balance(volunteer), community.balance(grandma)) == (0, 15)
    check_invariants(community.services)


@pytest.mark.backends("memory", "sqlite")
def test_freezing_twice_records_nothing_new(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    community.app.execute(SetFrozen(account_id=volunteer.account_id, frozen=True), community.staff)
    head = community.services.projector.head()
    freezing = SetFrozen(account_id=volunteer.account_id, frozen=True)
    assert community.app.execute(freezing, community.staff).result["status"] == "frozen"
    assert community.services.projector.head() == head
    with pytest.raises(NotFound):
        community.app.execute(SetFrozen(account_id=uuid4(), frozen=True), community.staff)


# --- donations ------------------------------------------------------------------------------


def test_donation_moves_beans_to_a_beneficiary_of_the_same_community(community: AppCommunity) -> None:
    volunteer, grandma = community.open("volunteer"), community.open("beneficiary")
    community.earn(volunteer, 10)
    outcome = community.app.execute(Donate(to_account_id=grandma.account_id, amount=4), volunteer)
    assert outcome.result["from_account_id"] == str(volunteer.account_id)
    assert outcome.result["to_account_id"] == str(grandma.account_id) and outcome.result["amount"] == 4
    made = events_of(community.services, UUID(outcome.result["id"]))[0]
    assert {(p.account_id, p.amount) for p in decode_postings(made.postings)} == {
        (str(volunteer.account_id), -4), (str(grandma.account_id), 4)}
    with pytest.raises(InsufficientFunds) as raised:
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=7), volunteer)
    assert raised.value.details == {"account_id": str(volunteer.account_id), "asset": "bean", "balance": 6, "needed": 7}
    community.app.execute(Donate(to_account_id=grandma.account_id, amount=6), volunteer)  # exactly everything
    assert (community.balance(volunteer), community.balance(grandma)) == (0, 10)
    check_invariants(community.services)


def test_donations_go_nowhere_else(services: Services) -> None:
    here, there = new_app_community(services), new_app_community(services)
    volunteer = here.open("volunteer")
    here.earn(volunteer, 10)
    wrong_recipients = (here.open("volunteer"), here.open("merchant"), there.open("beneficiary"), volunteer)
    grandma, grandpa = here.open("beneficiary"), here.open("beneficiary")
    head = services.projector.head()
    for recipient in wrong_recipients:
        with pytest.raises(ValidationFailed):
            here.app.execute(Donate(to_account_id=recipient.account_id, amount=1), volunteer)
    for missing in (uuid4(), None, here.id):
        with pytest.raises(NotFound):
            here.app.execute(Donate(to_account_id=missing, amount=1), volunteer)
    with pytest.raises(Forbidden):
        here.app.execute(Donate(to_account_id=grandpa.account_id, amount=1), grandma)
    for amount in (0, -1, 1.5, True, 1_000_001):
        with pytest.raises(ValidationFailed):
            here.app.execute(Donate(to_account_id=grandma.account_id, amount=amount), volunteer)  # type: ignore[arg-type]
    assert services.projector.head() == head, "a refused donation records nothing"
    assert here.balance(volunteer) == 10
    check_invariants(services)


# --- idempotency ----------------------------------------------------------------------------


def test_same_key_replays_the_outcome_and_a_different_request_conflicts(community: AppCommunity) -> None:
    volunteer, grandma = community.open("volunteer"), community.open("beneficiary")
    community.earn(volunteer, 10)
    key = new_key()
    same = IdempotencyKey(volunteer.principal_id, key, request_hash="donate 3")

    first = community.app.execute(Donate(to_account_id=grandma.account_id, amount=3), volunteer, key)
    again = community.app.execute(Donate(to_account_id=grandma.account_id, amount=3), volunteer, key)

    assert not first.replayed and again.replayed and again.result == first.result
    with pytest.raises(IdempotencyConflict):
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=4), volunteer, key)
    other_principal = IdempotencyKey(grandma.principal_id, key, request_hash="donate 3")
    assert other_principal.record_id != same.record_id  # keys are per principal
    assert community.balance(volunteer) == 7
    check_invariants(community.services)


def test_a_declined_command_keeps_its_key_so_a_retry_after_a_top_up_moves_nothing(community: AppCommunity) -> None:
    """Contract v1.1: a 409 decided under a key is that key's outcome for good;
    a corrected request takes a new key. A request refused as invalid (422) leaves its key free."""
    volunteer, grandma = community.open("volunteer"), community.open("beneficiary")
    key = new_key()
    with pytest.raises(InsufficientFunds):
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=5), volunteer, key)
    community.earn(volunteer, 5)
    with pytest.raises(ReplayedDecline) as replayed:
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=5), volunteer, key)
    assert replayed.value.code == "insufficient_funds" and replayed.value.details["needed"] == 5
    assert community.balance(grandma) == 0 and community.balance(volunteer) == 5

    fresh = new_key()
    with pytest.raises(ValidationFailed):
        community.app.execute(Donate(to_account_id=grandma.account_id, amount=0), volunteer, fresh)
    outcome = community.app.execute(Donate(to_account_id=grandma.account_id, amount=5), volunteer, fresh)
    assert not outcome.replayed and community.balance(grandma) == 5
    check_invariants(community.services)


def test_secrets_are_never_kept_for_a_replay(community: AppCommunity) -> None:
    key = new_key()
    opening = OpenAccount(community_id=community.id, kind="volunteer", display_name="新志愿者")
    first = community.app.execute(opening, community.staff, key)
    again = community.app.execute(opening, community.staff, key)
    assert first.result["token"] and again.replayed
    assert again.result["token"] is None and again.result["id"] == first.result["id"]


def test_an_empty_category_list_is_no_category_for_any_kind(community: AppCommunity) -> None:
    volunteer = community.open("volunteer", merchant_categories=[])
    assert community.app.reader().get(Account, volunteer.account_id, "account").merchant_categories == []
    with pytest.raises(ValidationFailed):
        community.open("volunteer", merchant_categories=["meal"])
