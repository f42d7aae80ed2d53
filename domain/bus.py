"""Commands as data, handled on one bus.

A command is a frozen dataclass naming what someone asks for (`Redeem`, `Donate`, …). Its
handler is a plain function `handler(command, actor, uow) -> result`: it reads what it needs
through the unit of work, checks the rules (raising named domain errors before any event
exists), calls the aggregates' public methods (each checks, then records a private `@event`),
hands new aggregates (recorded as they are made) to `uow.add` and returns the result the caller
sees. Handlers never save: the writer (domain/writer.py) saves everything a unit of work touched,
in one transaction.

Each feature module declares its commands and a `HANDLERS` table; `domain/application.py`
joins the tables into the one bus. A new kind of transaction is an event carrying postings, a
command and its handler (one line in the table), its statement type in projections/ledger.py and
one `command_route` line (api/commands.py), with their tests: docs/adding-a-transaction.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import Forbidden, NotFound

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound="Command", contravariant=True)
Result = dict[str, Any]


@dataclasses.dataclass(frozen=True)
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


def check_role(actor: Actor, roles: tuple[str, ...], refusal: str) -> None:
    """Only these roles may do this. A handler checks it itself, with the roles its route admits:
    a route's `roles=` guards only HTTP, and commands reach the bus other ways too (the CLI, the
    demo, the bench, tests). `refusal` says who may ("only staff and admins …")."""
    if actor.role not in roles:
        raise Forbidden(refusal)


def check_scope(actor: Actor, community_id: UUID) -> None:
    """People bound to a community act only in it (a deployment-wide admin acts anywhere)."""
    if actor.community_id is not None and actor.community_id != community_id:
        raise Forbidden("this belongs to another community")


NOT_FINGERPRINTED = {"fingerprint": False}  # a field the server resolved, not one the client sent


@dataclasses.dataclass(frozen=True)
class Command:
    """Base of every command. Its fingerprint is what an Idempotency-Key is bound to: the same
    key sent again with a different command (another kind, or other fields) is a conflict."""

    def fingerprint(self) -> str:
        sent = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("fingerprint", True)}
        canonical = json.dumps(
            {"command": type(self).__name__, "fields": sent},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    if isinstance(value, UUID | datetime):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"a command field cannot hold {type(value).__name__}")


class Settings(Protocol):
    """The deployment settings a rule may read (welfare months ahead, the card secret)."""

    @property
    def welfare_months_ahead(self) -> int: ...

    @property
    def card_secret(self) -> bytes: ...


class UnitOfWork:
    """What a handler sees while it decides: the aggregates it loads (each a private copy, so a
    refused command changes nothing), the clock and the deployment's settings. It remembers
    every aggregate loaded or added, so the writer can save all of them together."""

    def __init__(
        self, load: Callable[[UUID], Aggregate | None], now: datetime, settings: Settings,
        prefetch: Callable[[Sequence[UUID]], None] | None = None,
    ) -> None:
        self._load = load
        self._prefetch = prefetch
        self._now = now
        self.settings = settings
        self._touched: dict[UUID, Aggregate] = {}

    def now(self) -> datetime:
        """The moment of the decision: one clock reading per command."""
        return self._now

    def find(self, cls: type[A], aggregate_id: UUID | None) -> A | None:
        if aggregate_id is None:
            return None
        aggregate = self._touched.get(aggregate_id)
        if aggregate is None:
            aggregate = self._load(aggregate_id)
            if aggregate is None:
                return None
            self._touched[aggregate_id] = aggregate
        return aggregate if isinstance(aggregate, cls) else None

    def look(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """Read an aggregate without it taking part in the command (nothing of it is saved)."""
        aggregate = self._touched.get(aggregate_id) or self._load(aggregate_id)
        return aggregate if isinstance(aggregate, cls) else None

    def prefetch(self, aggregate_ids: Sequence[UUID]) -> None:
        """A hint: these are about to be found, read them together (one query, not one each)."""
        if self._prefetch is not None:
            self._prefetch([i for i in aggregate_ids if i not in self._touched])

    def get(self, cls: type[A], aggregate_id: UUID | None, what: str) -> A:
        aggregate = self.find(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} not found", id=str(aggregate_id) if aggregate_id else None)
        return aggregate

    def add(self, *aggregates: Aggregate) -> None:
        """New aggregates this command created (loaded ones are remembered already)."""
        for aggregate in aggregates:
            self._touched[aggregate.id] = aggregate

    def touched(self) -> Iterator[Aggregate]:
        return iter(self._touched.values())


class Handler(Protocol, Generic[C]):
    def __call__(self, command: C, actor: Actor, uow: UnitOfWork, /) -> Result: ...


Handlers = Mapping[type[Command], Handler[Any]]


class Bus:
    """The one dispatcher: every command type has exactly one handler."""

    def __init__(self, *tables: Handlers) -> None:
        self._handlers: dict[type[Command], Handler[Any]] = {}
        for table in tables:
            for command_type, handler in table.items():
                if command_type in self._handlers:
                    raise ValueError(f"{command_type.__name__} has two handlers")
                self._handlers[command_type] = handler

    def handler_for(self, command: Command) -> Handler[Any]:
        try:
            return self._handlers[type(command)]
        except KeyError:
            raise LookupError(f"no handler for {type(command).__name__}") from None

    def decide(self, command: Command, actor: Actor, uow: UnitOfWork) -> Result:
        return self.handler_for(command)(command, actor, uow)

