"""The Jindou application: persistence configured by the eventsourcing library, one bus of
commands (each feature module's `HANDLERS`), and the writer that decides and records them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import IntegrityError, Recording

from domain import (
    card_sheets,
    clock,
    credentialing,
    donating,
    earning,
    month,
    paying,
    people,
    wishing,
)
from domain.accounts import Account
from domain.bus import Actor, Bus, Command, Result, UnitOfWork
from domain.community import Credential, Staff, StaffRole
from domain.credentials import Keyring, hash_token
from domain.errors import Unauthenticated
from domain.ids import derived_id
from domain.welfare import WELFARE_MONTHS_AHEAD_DEFAULT, WELFARE_MONTHS_AHEAD_SETTING
from domain.writer import AggregateCache, Decide, IdempotencyKey, Limit, Outcome, Writer

BUS = Bus(paying.HANDLERS, people.HANDLERS, credentialing.HANDLERS, card_sheets.HANDLERS, earning.HANDLERS,
          donating.HANDLERS, wishing.HANDLERS, month.HANDLERS)


class Jindou(Application[UUID]):
    """The whole application: the library's persistence, our writer, the bus."""

    name = "Jindou"
    is_snapshotting_enabled = True
    snapshotting_intervals = {Account: 500}  # a busy volunteer's account loads in one read
    card_secret = b""  # the deployment's secret behind card codes; the wiring sets it (decision 0008)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.cache = AggregateCache(self)
        self.writer = Writer(self, self.cache, now=lambda: self.now(), settings=self)

    @property
    def welfare_months_ahead(self) -> int:
        return int(self.env.get(WELFARE_MONTHS_AHEAD_SETTING) or WELFARE_MONTHS_AHEAD_DEFAULT)

    def now(self) -> datetime:
        """The clock the rules read (a code's expiry, a card's day, the welfare months); tests replace it."""
        return clock.now()

    def close(self) -> None:
        self.writer.close()
        super().close()

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's `save`. What the writer passes, its group's events (it takes the
        snapshots itself, and nothing here listens to `notify`), is recorded without the runtime
        `Protocol` check the library makes of each object it is given: about a twentieth of the
        writer's time in a busy group."""
        if not objs or not all(isinstance(obj, DomainEvent) for obj in objs):
            return super().save(*objs, **kwargs)
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events.extend(objs)
        processing.saved_kwargs.update(kwargs)
        return self._record(processing)

    def execute(self, command: Command, actor: Actor, idempotency_key: str | None = None) -> Outcome:
        """Decide and record `command` for `actor`: exactly once per Idempotency-Key, whose
        earlier outcome is replayed (a different command under the same key is a conflict)."""
        return self.writer.submit(*self._job(command, actor, idempotency_key))

    async def execute_async(
        self, command: Command, actor: Actor, idempotency_key: str | None = None, *, limit: tuple[Limit, str] | None = None,
    ) -> Outcome:
        """`execute` for a request on the event loop, whose actor may come from
        `authenticate_known`: no thread waits for the group, and the writer checks that the
        actor's credential is still live as it decides. `limit`: refused while the client is
        over it (a guessing limit)."""
        return await self.writer.submit_async(*self._job(command, actor, idempotency_key),
                                              admit=_credential_live(actor), limit=limit)

    @staticmethod
    def _job(command: Command, actor: Actor, idempotency_key: str | None) -> tuple[Decide, IdempotencyKey | None]:
        handler = BUS.handler_for(command)
        key = None if idempotency_key is None else IdempotencyKey(actor.principal_id, idempotency_key,
                                                                   command.fingerprint())
        return (lambda uow: handler(command, actor, uow)), key

    def preview(self, command: Command, actor: Actor) -> Result:
        """What `execute` would answer now, recording nothing."""
        handler = BUS.handler_for(command)
        return self.writer.preview(lambda uow: handler(command, actor, uow))

    def reader(self) -> UnitOfWork:
        """Aggregates for a read: current as of the last look at the log (every authenticated
        request looks first), each a private copy."""
        return UnitOfWork(self.cache.get, self.now(), self)

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, token: str) -> Actor | None:
        """Who holds `token`, as of the log's head (another process may have revoked it)."""
        self.cache.sync()
        return self._actor(token, self.cache.get)

    def authenticate_known(self, token: str) -> Actor | None:
        """Who holds `token`, from what this process already knows, without reading anything:
        None unless it knows the credential live. Only for an actor who is about to execute a
        command: the writer checks the credential again as it decides, after its own look at
        the log, so a revocation by another process still refuses the command."""
        return self._actor(token, self.cache.known)

    @staticmethod
    def _actor(token: str, get: Callable[[UUID], Aggregate | None]) -> Actor | None:
        credential = get(Credential.id_for(hash_token(token)))
        if not isinstance(credential, Credential) or credential.revoked:
            return None
        if credential.role in {r.value for r in StaffRole}:
            staff = get(credential.principal_id)
            if not isinstance(staff, Staff):
                return None
            account_id = staff.account_id
        else:
            account_id = credential.principal_id
        return Actor(credential.role, credential.principal_id, credential.community_id, account_id, credential.id)

    def bootstrap_admin(self, token: str) -> None:
        """Make `token` a deployment-wide admin credential (JINDOU_ADMIN_TOKEN); idempotent. A
        bootstrap token once rotated or revoked stays dead: its credential exists, revoked."""
        token_hash = hash_token(token)
        if self.cache.get(Credential.id_for(token_hash)) is not None:
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


def _credential_live(actor: Actor) -> Callable[[UnitOfWork], None]:
    """The writer's check, as it decides, that the actor's credential was not revoked meanwhile
    (by this process's earlier commands or by another process: the writer has just looked at the
    log). Actors without a credential (the console, a sign-in) have nothing to revoke."""

    def admit(uow: UnitOfWork) -> None:
        if actor.credential_id is None:
            return
        credential = uow.look(Credential, actor.credential_id)
        if credential is None or credential.revoked:
            raise Unauthenticated("this token is not valid")

    return admit
