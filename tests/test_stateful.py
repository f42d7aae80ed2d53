"""A small VOPR: hypothesis drives earn / close-with-awards / donate / duplicate-key retries /
freeze / concurrent-conflict / wish pledge, fulfil and cancel steps against the application, keeps a model of what every
balance must be, and after every step checks the model and the ledger's invariants
(Σ = 0 per asset, no holder negative, guarded aggregates = read model, projection = replay).

The concurrent conflict is simulated deterministically: the losing command's first read of the
donor is served from before the winner's write, so its first save must fail optimistic
concurrency and its retry must decide again on the fresh balance.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.application import Jindou
from domain.bus import Actor
from domain.donating import Donate
from domain.earning import CloseReport, DispatchReport
from domain.errors import (
    AccountFrozen,
    DomainError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidState,
    OverPledged,
)
from domain.money import Asset, escrow_account
from domain.people import SetFrozen
from domain.wishing import CancelWish, CreateWish, FulfilWish, PledgeToWish
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN, PostgresDatabase, require_postgres
from tests.support import AppCommunity, check_invariants, new_app_community, new_key

VOLUNTEERS = 3
BENEFICIARIES = 2
volunteers = st.integers(min_value=0, max_value=VOLUNTEERS - 1)
beneficiaries = st.integers(min_value=0, max_value=BENEFICIARIES - 1)
awards = st.integers(min_value=1, max_value=30)
donations = st.integers(min_value=1, max_value=40)
wish_targets = st.integers(min_value=1, max_value=20)
pledges = st.integers(min_value=1, max_value=12)


@dataclass
class WishModel:
    """What a wish must hold: its target, every pledger's beans in escrow, its status."""

    id: UUID
    target: int
    pledges: dict[UUID, int] = field(default_factory=dict)
    status: str = "open"

    @property
    def pledged(self) -> int:
        return sum(self.pledges.values())


@contextmanager
def stale_first_read(app: Jindou, aggregate_id: UUID, stale: Any) -> Iterator[list[int]]:
    """Serve the next read of `aggregate_id` from `stale`, as if another process wrote after we
    read; yields a list that counts the saves attempted meanwhile."""
    real_get, real_save = app.cache.get, app.save
    served: list[bool] = []
    saves: list[int] = []

    def get(wanted: UUID, *args: Any, **kwargs: Any) -> Any:
        if wanted == aggregate_id and not served:
            served.append(True)
            return copy.deepcopy(stale)
        return real_get(wanted, *args, **kwargs)

    def save(*args: Any, **kwargs: Any) -> Any:
        saves.append(1)
        return real_save(*args, **kwargs)

    app.cache.get, app.save = get, save  # type: ignore[method-assign]
    try:
        yield saves
    finally:
        del app.cache.get, app.save


class LedgerMachine(RuleBasedStateMachine):
    """Subclasses name the backend; each example gets a fresh database."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._database: PostgresDatabase | None = None
        self.services = build_services(Settings(database_url=self._database_url(), admin_token=ADMIN_TOKEN))
        self.community: AppCommunity = new_app_community(self.services)
        self.volunteers: list[Actor] = [self.community.open("volunteer") for _ in range(VOLUNTEERS)]
        self.beneficiaries: list[Actor] = [self.community.open("beneficiary") for _ in range(BENEFICIARIES)]
        self.expected: dict[UUID, int] = {a.account_id: 0 for a in self.volunteers + self.beneficiaries}  # type: ignore[misc]
        self.frozen: set[UUID] = set()
        self.keyed: list[tuple[Actor, str, UUID, int, dict[str, Any]]] = []  # donations made under a key
        self.merchant: Actor = self.community.open("merchant")
        self.expected[self.merchant.account_id] = 0  # type: ignore[index]
        self.wishes: list[WishModel] = []

    def _database_url(self) -> str:
        if self.backend == "memory":
            return "memory://"
        if self.backend == "sqlite":
            import tempfile

            self._tmp = tempfile.TemporaryDirectory()
            return f"sqlite:///{self._tmp.name}/jindou.db"
        self._database = PostgresDatabase()
        self._database.create()
        return self._database.url

    def teardown(self) -> None:
        self.services.close()
        if self._database is not None:
            self._database.drop()
        if self.backend == "sqlite":
            self._tmp.cleanup()

    @property
    def app(self) -> Jindou:
        return self.services.app

    # --- the model ---------------------------------------------------------------------------

    def _spend(self, donor: Actor, recipient: Actor, amount: int) -> str | None:
        """What the model says a donation does: the refusal's code, or None after moving it."""
        if donor.account_id in self.frozen:
            return AccountFrozen.code
        if amount > self.expected[donor.account_id]:  # type: ignore[index]
            return InsufficientFunds.code
        self.expected[donor.account_id] -= amount  # type: ignore[index]
        self.expected[recipient.account_id] += amount  # type: ignore[index]
        return None

    def _donate(self, donor: Actor, recipient: Actor, amount: int, key: str | None = None) -> str | None:
        try:
            outcome = self.app.execute(Donate(to_account_id=recipient.account_id, amount=amount), donor, key)
        except DomainError as refused:
            return refused.code
        assert not outcome.replayed
        if key is not None:
            self.keyed.append((donor, key, recipient.account_id, amount, outcome.result))  # type: ignore[arg-type]
        return None

    # --- rules -------------------------------------------------------------------------------

    @rule(volunteer=volunteers, award=awards)
    def earn(self, volunteer: int, award: int) -> None:
        holder = self.volunteers[volunteer]
        self.community.earn(holder, award)  # a frozen account still receives
        self.expected[holder.account_id] += award  # type: ignore[index]

    @rule(reporter=volunteers, handler=volunteers, award=awards)
    def close_with_award(self, reporter: int, handler: int, award: int) -> None:
        report_id = self.community.report(self.volunteers[reporter], "dispute")
        holder = self.volunteers[handler]
        staff = self.community.staff
        self.app.execute(DispatchReport(report_id=report_id, handler_ids=(holder.account_id,)), staff)
        self.app.execute(CloseReport(report_id=report_id, handler_awards=((str(holder.account_id), award),)), staff)
        self.expected[holder.account_id] += award  # type: ignore[index]

    @rule(volunteer=volunteers, beneficiary=beneficiaries, amount=donations, keyed=st.booleans())
    def donate(self, volunteer: int, beneficiary: int, amount: int, keyed: bool) -> None:
        donor, recipient = self.volunteers[volunteer], self.beneficiaries[beneficiary]
        key = new_key() if keyed else None
        assert self._donate(donor, recipient, amount, key) == self._spend(donor, recipient, amount)

    @precondition(lambda self: self.keyed)
    @rule(data=st.data())
    def retry_with_the_same_key(self, data: st.DataObject) -> None:
        donor, key, recipient_id, amount, result = data.draw(st.sampled_from(self.keyed))
        head = self.services.projector.head()
        outcome = self.app.execute(Donate(to_account_id=recipient_id, amount=amount), donor, key)
        assert outcome.replayed and outcome.result == result
        with pytest.raises(IdempotencyConflict):  # the same key for another donation
            self.app.execute(Donate(to_account_id=recipient_id, amount=amount + 1), donor, key)
        assert self.services.projector.head() == head, "a retry records nothing"

    @rule(volunteer=volunteers)
    def toggle_frozen(self, volunteer: int) -> None:
        account_id = self.volunteers[volunteer].account_id
        freeze = account_id not in self.frozen
        outcome = self.app.execute(SetFrozen(account_id=account_id, frozen=freeze, reason="核查中"), self.community.staff)
        assert outcome.result["status"] == ("frozen" if freeze else "active")
        self.frozen ^= {account_id}  # type: ignore[arg-type]

    @rule(volunteer=volunteers, first=beneficiaries, second=beneficiaries, winner=donations, loser=donations)
    def concurrent_conflict(self, volunteer: int, first: int, second: int, winner: int, loser: int) -> None:
        """Two donations from one volunteer at once: the loser read before the winner wrote."""
        donor = self.volunteers[volunteer]
        stale = self.app.repository.get(donor.account_id)  # type: ignore[arg-type]
        assert self._donate(donor, self.beneficiaries[first], winner) == self._spend(donor, self.beneficiaries[first], winner)
        winner_moved = self.app.repository.get(donor.account_id).version != stale.version  # type: ignore[arg-type]

        with stale_first_read(self.app, donor.account_id, stale) as saves:  # type: ignore[arg-type]
            refused = self._donate(donor, self.beneficiaries[second], loser)
        assert refused == self._spend(donor, self.beneficiaries[second], loser)
        stale_decision_saved = not stale.is_frozen and loser <= stale.balance(Asset.BEAN)
        if winner_moved and stale_decision_saved:
            # The stale save lost; the retry decided again on the fresh balance and saved or refused.
            assert len(saves) == (1 if refused else 2), (saves, refused)

    # --- the wish wall -----------------------------------------------------------------------

    def _pledge_refusal(self, wish: WishModel, volunteer: Actor, amount: int) -> str | None:
        if wish.status not in ("open", "funded"):
            return InvalidState.code
        if amount > wish.target - wish.pledged:
            return OverPledged.code
        if volunteer.account_id in self.frozen:
            return AccountFrozen.code
        if amount > self.expected[volunteer.account_id]:  # type: ignore[index]
            return InsufficientFunds.code
        return None

    @rule(beans=wish_targets)
    def create_wish(self, beans: int) -> None:
        wish = CreateWish(community_id=self.community.id, title="修一把轮椅", story="轮椅坏了", target=beans)
        outcome = self.app.execute(wish, self.community.staff)
        self.wishes.append(WishModel(UUID(outcome.result["id"]), beans))

    @precondition(lambda self: self.wishes)
    @rule(data=st.data(), volunteer=volunteers, amount=pledges)
    def pledge(self, data: st.DataObject, volunteer: int, amount: int) -> None:
        self._pledge(data.draw(st.sampled_from(self.wishes)), self.volunteers[volunteer], amount)

    @precondition(lambda self: self.wishes)
    @rule(data=st.data(), volunteer=volunteers)
    def pledge_what_it_still_needs(self, data: st.DataObject, volunteer: int) -> None:
        wish = data.draw(st.sampled_from(self.wishes))
        self._pledge(wish, self.volunteers[volunteer], max(1, wish.target - wish.pledged))

    def _pledge(self, wish: WishModel, holder: Actor, amount: int) -> None:
        expected = self._pledge_refusal(wish, holder, amount)
        try:
            result = self.app.execute(PledgeToWish(wish_id=wish.id, amount=amount), holder).result
        except DomainError as refused:
            assert refused.code == expected
            return
        assert expected is None
        self.expected[holder.account_id] -= amount  # type: ignore[index]
        wish.pledges[holder.account_id] = wish.pledges.get(holder.account_id, 0) + amount  # type: ignore[index]
        wish.status = "funded" if wish.pledged == wish.target else "open"
        assert (result["pledged"], result["status"]) == (wish.pledged, wish.status)

    @precondition(lambda self: self.wishes)
    @rule(data=st.data())
    def fulfil_wish(self, data: st.DataObject) -> None:
        wish = data.draw(st.sampled_from(self.wishes))
        try:
            self.app.execute(FulfilWish(wish_id=wish.id, merchant_id=self.merchant.account_id),
                             self.community.staff)
        except InvalidState:
            assert wish.status != "funded"
            return
        assert wish.status == "funded"
        wish.status = "fulfilled"
        self.expected[self.merchant.account_id] += wish.target  # type: ignore[index]

    @precondition(lambda self: self.wishes)
    @rule(data=st.data())
    def cancel_wish(self, data: st.DataObject) -> None:
        wish = data.draw(st.sampled_from(self.wishes))
        try:
            self.app.execute(CancelWish(wish_id=wish.id), self.community.staff)
        except InvalidState:
            assert wish.status in ("fulfilled", "cancelled")
            return
        assert wish.status in ("open", "funded")
        wish.status = "cancelled"
        for volunteer_id, amount in wish.pledges.items():
            self.expected[volunteer_id] += amount

    # --- after every step --------------------------------------------------------------------

    @invariant()
    def balances_match_the_model_and_the_ledger_holds(self) -> None:
        for account_id, expected in self.expected.items():
            assert self.community.balance(account_id) == expected, account_id
        for wish in self.wishes:
            held = wish.pledged if wish.status in ("open", "funded") else 0
            assert self.community.balance(escrow_account(self.community.id, wish.id)) == held, wish
        check_invariants(self.services)


def run_machine(backend: str, *, examples: int, steps: int) -> None:
    machine = type(f"LedgerMachine_{backend}", (LedgerMachine,), {"backend": backend})
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine.TestCase().runTest()


def test_ledger_machine_on_memory() -> None:
    run_machine("memory", examples=30, steps=25)


def test_ledger_machine_on_sqlite() -> None:
    run_machine("sqlite", examples=12, steps=20)


@pytest.mark.postgres
def test_ledger_machine_on_postgres() -> None:
    require_postgres()
    run_machine("postgres", examples=4, steps=15)
