"""The unit of work every command runs in: decide, save in one transaction, retry, replay.

Every command is a `decide` function: it loads what it needs, checks the rules (raising named
domain errors before any event exists), triggers events and returns (result, aggregates).
`_execute` saves the aggregates, together with an idempotency record when the caller sent a
key, and retries the whole decision a bounded number of times when optimistic concurrency
(or an idempotency or uniqueness collision) says someone else wrote first.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, Recording

from domain import clock
from domain.accounts import Account
from domain.community import Credential, Staff, StaffRole
from domain.credentials import LIVE_CREDENTIALS_MAX, Keyring
from domain.errors import ConcurrencyConflict, Declined, DomainError, Forbidden, NotFound, OutcomeUnknown, Unavailable
from domain.idempotency import IdempotencyRecord
from domain.ids import derived_id
from domain.money import Posting, deltas_for

WRITE_QUEUE_WAIT_S = 2.5  # with the 1 s pool wait, a write the database cannot take is answered within 5 s
SAVE_ATTEMPTS_MAX = 10  # optimistic-concurrency retries before answering 409
RETRY_BACKOFF_BASE_S = 0.002
RETRY_BACKOFF_MAX_S = 0.2  # attempts spread over about a second before we give up
TOKEN_BYTES = 32
SECRET_RESULT_FIELDS = ("token", "card_code", "code")  # never stored in an idempotency record

A = TypeVar("A", bound=Aggregate)
Decision = tuple[dict[str, Any], Iterable[Aggregate]]


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member (admin, staff, auditor) or an account holder."""

    role: str
    principal_id: UUID
    community_id: UUID | None  # None: a deployment-wide administrator
    account_id: UUID | None  # a holder's account, or a staff member's own volunteer account
    credential_id: UUID | None = None  # the credential this request authenticated with

    @property
    def label(self) -> str:
        return f"{self.role}:{self.principal_id}"


@dataclass(frozen=True)
class IdempotencyKey:
    principal_id: UUID
    key: str
    request_hash: str

    @property
    def record_id(self) -> UUID:
        return IdempotencyRecord.id_for(self.principal_id, self.key)


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    replayed: bool = False
    position: int | None = None  # the last notification this command recorded (None: it recorded nothing)


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

    # The database serialises writers anyway (SQLite's write lock, PostgreSQL's EXCLUSIVE lock on
    # the events table), so serialising this process's decisions costs no throughput and means
    # optimistic-concurrency conflicts can only come from another process: threads spending from
    # one account queue here instead of exhausting their retries against each other.
    _write_lock = threading.Lock()

    def now(self) -> datetime:
        """The clock the rules read (a code's expiry, a card's day, the welfare months); tests replace it."""
        return clock.now()

    def _execute(self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None = None) -> Outcome:
        # Bounded: when the database is slow or away, writers must not queue here for minutes.
        if not self._write_lock.acquire(timeout=WRITE_QUEUE_WAIT_S):
            raise Unavailable("too many changes are waiting for the database; retry shortly")
        try:
            return self._decide_and_save(decide, idempotency)
        finally:
            self._write_lock.release()

    def _decide_and_save(self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None) -> Outcome:
        for attempt in range(SAVE_ATTEMPTS_MAX):
            if idempotency is not None:
                record = self._find(IdempotencyRecord, idempotency.record_id)
                if record is not None:
                    return Outcome(record.replay(idempotency.request_hash), replayed=True)
            try:
                result, aggregates = decide()
            except DomainError as refusal:
                # Another process may have committed this very request between our look-up and
                # the decision (a used code, an already reversed sale): then replay its outcome.
                replay = self._find(IdempotencyRecord, idempotency.record_id) if idempotency is not None else None
                if replay is not None:
                    assert idempotency is not None
                    return Outcome(replay.replay(idempotency.request_hash), replayed=True)
                if idempotency is None or not isinstance(refusal, Declined):
                    raise
                if not self._save_or_collide(self._declined_record(idempotency, refusal)):
                    continue  # someone recorded this key meanwhile: replay theirs
                raise
            pending = list(aggregates)
            if idempotency is not None:
                stored = {k: (None if k in SECRET_RESULT_FIELDS else v) for k, v in result.items()}
                pending.append(
                    IdempotencyRecord(id=idempotency.record_id, request_hash=idempotency.request_hash, outcome=stored)
                )
            recordings = self._save_or_collide(*pending)
            if recordings is None:
                # Another process wrote first: back off exponentially, with jitter to de-synchronise the racers.
                time.sleep(random.uniform(0, min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_BASE_S * 2**attempt)))
                continue
            position = max((r.notification.id for r in recordings if r.notification.id is not None), default=None)
            return Outcome(result, position=position)
        raise ConcurrencyConflict("too many concurrent changes to the same accounts; please retry")

    def _save_or_collide(self, *aggregates: Aggregate) -> list[Recording] | None:
        """Save in one transaction; None when another writer came first (nothing was recorded).
        A database that fails during the save may have committed it or not: say exactly that."""
        try:
            return self.save(*aggregates)
        except IntegrityError:
            return None
        except (OperationalError, InterfaceError) as failure:
            raise OutcomeUnknown(
                "the database failed while this was being recorded; it may or may not have been recorded: "
                "retry with the same Idempotency-Key to find out"
            ) from failure

    @staticmethod
    def _declined_record(idempotency: IdempotencyKey, refusal: DomainError) -> IdempotencyRecord:
        return IdempotencyRecord(
            id=idempotency.record_id, request_hash=idempotency.request_hash, outcome={},
            declined={"code": refusal.code, "message": refusal.message, "details": refusal.details},
        )

    def _find(self, cls: type[A], aggregate_id: UUID | None) -> A | None:
        if aggregate_id is None:
            return None
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _get(self, cls: type[A], aggregate_id: UUID | None, what: str) -> A:
        aggregate = self._find(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} not found", id=str(aggregate_id) if aggregate_id else None)
        return aggregate

    @staticmethod
    def _check_scope(actor: Actor, community_id: UUID) -> None:
        if actor.community_id is not None and actor.community_id != community_id:
            raise Forbidden("this belongs to another community")

    def _issue_credential(
        self, role: str, principal_id: UUID, community_id: UUID | None, *, replacing: str | None = None,
        retiring: UUID | None = None,
    ) -> tuple[str, list[Aggregate]]:
        """A new token for the principal, added to its keyring. `replacing` (a reason) revokes
        every earlier token of the principal; `retiring` revokes that one credential. Beyond
        `LIVE_CREDENTIALS_MAX` live tokens the oldest die. Returns the token and what to save."""
        token = new_token()
        credential = Credential(
            id=Credential.id_for(hash_token(token)), role=role, principal_id=principal_id, community_id=community_id
        )
        keyring = self._find(Keyring, Keyring.id_for(principal_id))
        if keyring is None:
            keyring = Keyring(id=Keyring.id_for(principal_id), principal_id=principal_id)
        if replacing is not None:
            revoked = self._reset_keyring(keyring, replacing)
        else:
            doomed = keyring.credential_ids[: max(0, len(keyring.credential_ids) + 1 - LIVE_CREDENTIALS_MAX)]
            doomed += [retiring] if retiring is not None and retiring not in doomed else []
            revoked = self._revoke_credentials(doomed, "replaced by a newer token")
            if doomed:
                keyring.remove(doomed)
        keyring.add(credential.id)
        return token, [credential, keyring, *revoked]

    def _reset_keyring(self, keyring: Keyring, reason: str) -> list[Credential]:
        """Revoke every credential the keyring lists and kill its unused sign-in codes."""
        revoked = self._revoke_credentials(keyring.credential_ids, reason)
        keyring.reset()
        return revoked

    def _keyring_resets(self, principal_id: UUID) -> int:
        keyring = self._find(Keyring, Keyring.id_for(principal_id))
        return keyring.resets if keyring is not None else 0

    def _revoke_credentials(self, credential_ids: Iterable[UUID], reason: str) -> list[Credential]:
        revoked = []
        for credential_id in credential_ids:
            credential = self._find(Credential, credential_id)
            if credential is not None and not credential.revoked:
                credential.revoke(reason)
                revoked.append(credential)
        return revoked

    def _post(self, transaction_id: str, postings: list[Posting], accounts: Iterable[Account]) -> None:
        """Record each guarded account's side of a transaction on the account itself."""
        for account in accounts:
            if account.is_guarded:
                account.post(transaction_id, deltas_for(str(account.id), postings))

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, token: str) -> Actor | None:
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
