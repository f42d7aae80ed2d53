"""The unit of work every command runs in: decide, save in one transaction, retry, replay.

Every command is a `decide` function: it loads what it needs, checks the rules (raising named
domain errors before any event exists), triggers events and returns (result, aggregates).
`_execute` saves the aggregates, together with an idempotency record when the caller sent a
key, and retries the whole decision a bounded number of times when optimistic concurrency
(or an idempotency or uniqueness collision) says someone else wrote first.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain import clock
from domain.accounts import Account, post_transaction
from domain.bus import Actor, UnitOfWork, check_scope
from domain.community import Credential, Staff, StaffRole
from domain.credentials import Keyring
from domain.errors import NotFound
from domain.ids import derived_id
from domain.welfare import WELFARE_MONTHS_AHEAD_DEFAULT, WELFARE_MONTHS_AHEAD_SETTING
from domain.writer import AggregateCache, IdempotencyKey, Outcome, Writer

__all__ = ["Actor", "IdempotencyKey", "Outcome"]  # re-exported while the features move onto the bus

TOKEN_BYTES = 32

A = TypeVar("A", bound=Aggregate)
Decision = tuple[dict[str, Any], Iterable[Aggregate]]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "jd_" + secrets.token_urlsafe(TOKEN_BYTES)


def local_time(moment: datetime | str, timezone: str) -> str:
    """RFC 3339 with the community's offset (+08:00 in Kunming). `moment` may also be spelled as
    the read model stores event times (UTC ISO text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(timezone)).isoformat()


class JindouBase(Application[UUID]):
    name = "Jindou"
    is_snapshotting_enabled = True
    snapshotting_intervals = {Account: 500}  # a busy volunteer's account loads in one read

    # --- the unit of work -------------------------------------------------------------------

    card_secret = b""  # the deployment's secret behind card codes; the wiring sets it (decision 0008)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.cache = AggregateCache(self)
        self.writer = Writer(self, self.cache, now=lambda: self.now(), settings=self)
        self._job = threading.local()  # the unit of work of the command this thread is deciding

    @property
    def welfare_months_ahead(self) -> int:
        return int(self.env.get(WELFARE_MONTHS_AHEAD_SETTING) or WELFARE_MONTHS_AHEAD_DEFAULT)

    def close(self) -> None:
        self.writer.close()
        super().close()

    def now(self) -> datetime:
        """The clock the rules read (a code's expiry, a card's day, the welfare months); tests replace it."""
        return clock.now()

    def _execute(self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None = None) -> Outcome:
        def run(uow: UnitOfWork) -> dict[str, Any]:
            self._job.uow = uow
            try:
                result, aggregates = decide()
            finally:
                self._job.uow = None
            uow.add(*aggregates)
            return result

        return self.writer.submit(run, idempotency)

    def _uow(self) -> UnitOfWork:
        uow: UnitOfWork = self._job.uow
        return uow

    def _find(self, cls: type[A], aggregate_id: UUID | None) -> A | None:
        uow: UnitOfWork | None = getattr(self._job, "uow", None)
        if uow is not None:
            return uow.find(cls, aggregate_id)
        if aggregate_id is None:
            return None
        aggregate = self.cache.get(aggregate_id)
        return aggregate if isinstance(aggregate, cls) else None

    def _get(self, cls: type[A], aggregate_id: UUID | None, what: str) -> A:
        aggregate = self._find(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} not found", id=str(aggregate_id) if aggregate_id else None)
        return aggregate

    _check_scope = staticmethod(check_scope)

    _post = staticmethod(post_transaction)

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, token: str) -> Actor | None:
        self.cache.sync()  # another process may have revoked it: one look at the log's head
        credential = self._find(Credential, Credential.id_for(hash_token(token)))
        if credential is None or credential.revoked:
            return None
        if credential.role in {r.value for r in StaffRole}:
            staff = self._find(Staff, credential.principal_id)
            account_id = staff.account_id if staff else None
        else:
            account_id = credential.principal_id
        return Actor(credential.role, credential.principal_id, credential.community_id, account_id, credential.id)

    def bootstrap_admin(self, token: str) -> None:
        """Make `token` a deployment-wide admin credential (JINDOU_ADMIN_TOKEN); idempotent. A
        bootstrap token once rotated or revoked stays dead: its credential exists, revoked."""
        token_hash = hash_token(token)
        if self._find(Credential, Credential.id_for(token_hash)) is not None:
            return
        staff = Staff(
            id=derived_id("bootstrap-admin", token_hash), community_id=None, display_name="管理员",
            role=StaffRole.ADMIN.value, account_id=None, registered_by="bootstrap",
        )
        credential = Credential(
            id=Credential.id_for(token_hash), role=StaffRole.ADMIN.value, principal_id=staff.id, community_id=None
        )
        keyring = Keyring(id=Keyring.id_for(staff.id), principal_id=staff.id)
        keyring.add(credential.id)
        try:
            self.save(staff, credential, keyring)
        except IntegrityError:
            pass  # another process bootstrapped the same token first
