"""The ledger core through the application itself (`services.app`), on memory, SQLite and
PostgreSQL: earning with provenance, dispatch and close, maker-checker, verifying twice,
frozen accounts, donations, idempotency. Every test ends with the ledger invariants."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.accounts import Account
from domain.base import IdempotencyKey
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

    outcome = community.app.verify_report(community.staff, report_id)

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
    outcome = community.app.verify_report(community.staff, community.report(volunteer, category))
    assert outcome.result["award"] == award
    assert community.balance(volunteer) == award


@pytest.mark.backends("memory", "sqlite")
def test_a_communitys_own_schedule_and_an_explicit_award_win(services: Services) -> None:
    community = new_app_community(services, award_schedule={"sanitation": 7})
    volunteer = community.open("volunteer")
    assert community.app.verify_report(community.staff, community.report(volunteer, "sanitation")).result["award"] == 7
    assert community.app.verify_report(community.staff, community.report(volunteer), award=42).result["award"] == 42
    assert community.balance(volunteer) == 49
    check_invariants(services)


@pytest.mark.parametrize("award", [0, -5, 10_001, 2.5, True, "10"])
@pytest.mark.backends("memory")
def test_awards_are_whole_positive_and_bounded(community: AppCommunity, award: object) -> None:
    volunteer = community.open("volunteer")
    report_id = community.report(volunteer)
    with pytest.raises(ValidationFailed):
        community.app.verify_report(community.staff, report_id, award=award)  # type: ignore[arg-type]
    assert community.app.get_report(report_id).status == "submitted"
    assert community.balance(volunteer) == 0


def test_verifying_twice_is_invalid_state_and_mints_nothing_twice(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    report_id = community.report(volunteer)
    community.app.verify_report(community.staff, report_id, award=8)
    events_before = community.services.projector.head()

    with pytest.raises(InvalidState) as raised:
        community.app.verify_report(community.staff, report_id, award=8)
    assert raised.value.details["status"] == "verified"
    with pytest.raises(InvalidState):
        community.app.reject_report(community.staff, report_id, reason="重复")

    assert community.services.projector.head() == events_before
    assert community.balance(volunteer) == 8
    check_invariants(community.services)


def test_a_rejected_report_mints_nothing_and_cannot_be_verified(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    report_id = community.report(volunteer)
    assert community.app.reject_report(community.staff, report_id, reason="  照片看不清  ").result["status"] == "rejected"
    with pytest.raises(InvalidState):
        community.app.verify_report(community.staff, report_id)
    assert community.balance(volunteer) == 0
    check_invariants(community.services)


def test_maker_checker_a_staff_member_cannot_verify_their_own_report(community: AppCommunity) -> None:
    volunteer = community.open("volunteer", "既是志愿者又是网格员")
    same_person = community.register_staff("staff", account_id=volunteer.account_id)
    assert same_person.account_id == volunteer.account_id
    report_id = community.report(volunteer)

    with pytest.raises(SamePerson):
        community.app.verify_report(same_person, report_id)
    assert community.balance(volunteer) == 0

    community.app.verify_report(community.staff, report_id)  # someone else may
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
    community.app.dispatch_report(community.staff, report_id, handler_ids=[first.account_id, second.account_id, idle.account_id])

    awards = {str(first.account_id): 6, str(second.account_id): 4}
    outcome = community.app.close_report(community.staff, report_id, handler_awards=awards)

    assert outcome.result["status"] == "closed" and outcome.result["handler_awards"] == awards
    assert [community.balance(h) for h in (first, second, idle, reporter)] == [6, 4, 0, 0]
    closed = events_of(community.services, report_id)[-1]
    assert type(closed).__qualname__ == "Report.Closed" and closed.closed_by == community.staff.label
    issuance = system_account(community.id, SystemAccount.ISSUANCE)
    assert sum(p.amount for p in decode_postings(closed.postings) if p.account_id == issuance) == -10
    with pytest.raises(InvalidState):
        community.app.close_report(community.staff, report_id, handler_awards=awards)
    assert community.balance(first) == 6
    check_invariants(community.services)


def test_a_verified_report_can_still_be_dispatched_and_both_awards_stand(community: AppCommunity) -> None:
    reporter, handler = community.open("volunteer"), community.open("volunteer")
    report_id = community.report(reporter, "resident_need")
    community.app.verify_report(community.staff, report_id)
    community.app.dispatch_report(community.staff, report_id, handler_ids=[handler.account_id])
    community.app.close_report(community.staff, report_id, handler_awards={str(handler.account_id): 5})
    assert (community.balance(reporter), community.balance(handler)) == (3, 5)
    check_invariants(community.services)


def test_an_urgent_report_dispatched_first_is_verified_afterwards_once(community: AppCommunity) -> None:
    """The fire at 金夏苑: staff dispatch the patrol at once and verify the report later."""
    reporter, handler = community.open("volunteer"), community.open("volunteer")
    report_id = community.report(reporter, "fire")
    community.app.dispatch_report(community.staff, report_id, handler_ids=[handler.account_id])
    community.app.close_report(community.staff, report_id, handler_awards={str(handler.account_id): 5})

    verified = community.app.verify_report(community.staff, report_id).result
    assert verified["award"] == 10 and verified["status"] == "closed"  # verifying does not reopen it
    with pytest.raises(InvalidState):
        community.app.verify_report(community.staff, report_id)
    assert (community.balance(reporter), community.balance(handler)) == (10, 5)
    check_invariants(community.services)


def test_a_rejected_report_is_never_verified(community: AppCommunity) -> None:
    report_id = community.report(community.open("volunteer"))
    community.app.reject_report(community.staff, report_id, reason="经核实信息不属实")
    with pytest.raises(InvalidState):
        community.app.verify_report(community.staff, report_id)


def test_closing_with_no_awards_moves_nothing_and_the_read_model_goes_on(community: AppCommunity) -> None:
    reporter, handler = community.open("volunteer"), community.open("volunteer")
    report_id = community.report(reporter)
    community.app.dispatch_report(community.staff, report_id, handler_ids=[handler.account_id])
    assert community.app.close_report(community.staff, report_id, handler_awards={}).result["status"] == "closed"
    community.earn(handler, 2)  # the projection must have got past the empty close
    assert community.balance(handler) == 2
    check_invariants(community.services)


@pytest.mark.backends("memory", "sqlite")
def test_close_refuses_strangers_self_awards_and_bad_amounts(community: AppCommunity) -> None:
    reporter, handler, stranger = (community.open("volunteer") for _ in range(3))
    staff_handler = community.register_staff("staff", account_id=handler.account_id)
    report_id = community.report(reporter)
    community.app.dispatch_report(community.staff, report_id, handler_ids=[handler.account_id])

    with pytest.raises(ValidationFailed):
        community.app.close_report(community.staff, report_id, handler_awards={str(stranger.account_id): 5})
    with pytest.raises(SamePerson):
        community.app.close_report(staff_handler, report_id, handler_awards={str(handler.account_id): 5})
    for bad in (0, -1, 10_001):
        with pytest.raises(ValidationFailed):
            community.app.close_report(community.staff, report_id, handler_awards={str(handler.account_id): bad})
    assert community.app.get_report(report_id).status == "dispatched"
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
            here.app.dispatch_report(here.staff, report_id, handler_ids=handler_ids)
    with pytest.raises(NotFound):
        here.app.dispatch_report(here.staff, report_id, handler_ids=[uuid4()])
    with pytest.raises(Forbidden):
        here.app.dispatch_report(there.staff, report_id, handler_ids=[handler.account_id])
    assert here.app.get_report(report_id).status == "submitted"


# --- reports: who and what --------------------------------------------------------------------


@pytest.mark.backends("memory")
def test_only_volunteers_report_and_only_known_categories(community: AppCommunity) -> None:
    volunteer = community.open("volunteer")
    for kind in ("beneficiary", "merchant"):
        with pytest.raises(Forbidden):
            community.app.submit_report(community.open(kind), category="fire", description="x")
    for category in ("arson", "", "FIRE"):
        with pytest.raises(ValidationFailed):
            community.app.submit_report(volunteer, category=category, description="x")
    for description in ("", "   ", "x" * 2_001, "有\x00空字符", None):
        with pytest.raises(ValidationFailed):
            community.app.submit_report(volunteer, category="fire", description=description)  # type: ignore[arg-type]
    multiline = community.app.submit_report(volunteer, category="fire", description="\t一楼\r\n二楼 ")
    assert multiline.result["description"] == "一楼\r\n二楼"


@pytest.mark.backends("memory")
def test_staff_of_another_community_can_touch_nothing_here(services: Services) -> None:
    here, there = new_app_community(services), new_app_community(services)
    volunteer = here.open("volunteer")
    report_id = here.report(volunteer)
    with pytest.raises(Forbidden):
        here.app.verify_report(there.staff, report_id)
    with pytest.raises(Forbidden):
        here.app.reject_report(there.staff, report_id, reason="不是我们社区的")
    with pytest.raises(Forbidden):
        here.app.execute(SetFrozen(account_id=volunteer.account_id, frozen=True), there.staff)
    with pytest.raises(Forbidden):
        here.app.execute(OpenAccount(community_id=here.id, kind="volunteer", display_name="越权"), there.staff)
    assert here.app.get_report(report_id).status == "submitted"
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
        community.app.donate(volunteer, to_account_id=grandma.account_id, amount=1)
    assert community.balance(volunteer) == 15

    community.app.execute(SetFrozen(account_id=grandma.account_id, frozen=True), community.staff)
    unfreezing = SetFrozen(account_id=volunteer.account_id, frozen=False)
    assert community.app.execute(unfreezing, community.staff).result["status"] == "active"
    community.app.donate(volunteer, to_account_id=grandma.account_id, amount=15)  # a frozen beneficiary receives
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
    outcome = community.app.donate(volunteer, to_account_id=grandma.account_id, amount=4)
    assert outcome.result["from_account_id"] == str(volunteer.account_id)
    assert outcome.result["to_account_id"] == str(grandma.account_id) and outcome.result["amount"] == 4
    made = events_of(community.services, UUID(outcome.result["id"]))[0]
    assert {(p.account_id, p.amount) for p in decode_postings(made.postings)} == {
        (str(volunteer.account_id), -4), (str(grandma.account_id), 4)}
    with pytest.raises(InsufficientFunds) as raised:
        community.app.donate(volunteer, to_account_id=grandma.account_id, amount=7)
    assert raised.value.details == {"account_id": str(volunteer.account_id), "asset": "bean", "balance": 6, "needed": 7}
    community.app.donate(volunteer, to_account_id=grandma.account_id, amount=6)  # exactly everything
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
            here.app.donate(volunteer, to_account_id=recipient.account_id, amount=1)
    for missing in (uuid4(), None, here.id):
        with pytest.raises(NotFound):
            here.app.donate(volunteer, to_account_id=missing, amount=1)
    with pytest.raises(Forbidden):
        here.app.donate(grandma, to_account_id=grandpa.account_id, amount=1)
    for amount in (0, -1, 1.5, True, 1_000_001):
        with pytest.raises(ValidationFailed):
            here.app.donate(volunteer, to_account_id=grandma.account_id, amount=amount)  # type: ignore[arg-type]
    assert services.projector.head() == head, "a refused donation records nothing"
    assert here.balance(volunteer) == 10
    check_invariants(services)


# --- idempotency ----------------------------------------------------------------------------


def test_same_key_replays_the_outcome_and_a_different_request_conflicts(community: AppCommunity) -> None:
    volunteer, grandma = community.open("volunteer"), community.open("beneficiary")
    community.earn(volunteer, 10)
    key = new_key()
    same = IdempotencyKey(volunteer.principal_id, key, request_hash="donate 3")

    first = community.app.donate(volunteer, to_account_id=grandma.account_id, amount=3, idempotency=same)
    again = community.app.donate(volunteer, to_account_id=grandma.account_id, amount=3, idempotency=same)

    assert not first.replayed and again.replayed and again.result == first.result
    with pytest.raises(IdempotencyConflict):
        community.app.donate(volunteer, to_account_id=grandma.account_id, amount=4,
                             idempotency=IdempotencyKey(volunteer.principal_id, key, request_hash="donate 4"))
    other_principal = IdempotencyKey(grandma.principal_id, key, request_hash="donate 3")
    assert other_principal.record_id != same.record_id  # keys are per principal
    assert community.balance(volunteer) == 7
    check_invariants(community.services)


def test_a_declined_command_keeps_its_key_so_a_retry_after_a_top_up_moves_nothing(community: AppCommunity) -> None:
    """Contract v1.1: a 409 decided under a key is that key's outcome for good;
    a corrected request takes a new key. A request refused as invalid (422) leaves its key free."""
    volunteer, grandma = community.open("volunteer"), community.open("beneficiary")
    key = IdempotencyKey(volunteer.principal_id, new_key(), request_hash="donate 5")
    with pytest.raises(InsufficientFunds):
        community.app.donate(volunteer, to_account_id=grandma.account_id, amount=5, idempotency=key)
    community.earn(volunteer, 5)
    with pytest.raises(ReplayedDecline) as replayed:
        community.app.donate(volunteer, to_account_id=grandma.account_id, amount=5, idempotency=key)
    assert replayed.value.code == "insufficient_funds" and replayed.value.details["needed"] == 5
    assert community.balance(grandma) == 0 and community.balance(volunteer) == 5

    fresh = IdempotencyKey(volunteer.principal_id, new_key(), request_hash="donate 0")
    with pytest.raises(ValidationFailed):
        community.app.donate(volunteer, to_account_id=grandma.account_id, amount=0, idempotency=fresh)
    outcome = community.app.donate(volunteer, to_account_id=grandma.account_id, amount=5,
                                   idempotency=IdempotencyKey(volunteer.principal_id, fresh.key, request_hash="donate 0"))
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
