"""The Jindou application: persistence configured by the eventsourcing library, one bus of
commands (each feature module's `HANDLERS`), and the writer that decides and records them."""

from __future__ import annotations

from domain import card_sheets, credentialing, donating, earning, month, paying, people, wishing
from domain.base import JindouBase
from domain.bus import Actor, Bus, Command, Result, UnitOfWork
from domain.writer import IdempotencyKey, Outcome

BUS = Bus(paying.HANDLERS, people.HANDLERS, credentialing.HANDLERS, card_sheets.HANDLERS, earning.HANDLERS,
          donating.HANDLERS, wishing.HANDLERS, month.HANDLERS)


class Jindou(JindouBase):
    """The whole application; each feature's commands live in their own module."""

    def execute(self, command: Command, actor: Actor, idempotency_key: str | None = None) -> Outcome:
        """Decide and record `command` for `actor`: exactly once per Idempotency-Key, whose
        earlier outcome is replayed (a different command under the same key is a conflict)."""
        handler = BUS.handler_for(command)
        key = None if idempotency_key is None else IdempotencyKey(actor.principal_id, idempotency_key,
                                                                   command.fingerprint())
        return self.writer.submit(lambda uow: handler(command, actor, uow), key)

    def preview(self, command: Command, actor: Actor) -> Result:
        """What `execute` would answer now, recording nothing."""
        handler = BUS.handler_for(command)
        return self.writer.preview(lambda uow: handler(command, actor, uow))

    def reader(self) -> UnitOfWork:
        """Aggregates for a read: current as of the last look at the log (every authenticated
        request looks first), each a private copy."""
        return UnitOfWork(self.cache.get, self.now(), self)
