"""Idempotency records: the outcome of a command, keyed by (principal, Idempotency-Key).

The record is saved in the same transaction as the command's events, so either both exist or
neither does. A concurrent duplicate collides on the record's id and replays the stored outcome.
A declined command (a 409 such as insufficient_funds) records only this, with the refusal as
`declined`: a retry after a top-up replays the refusal instead of moving money.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IdempotencyConflict, ReplayedDecline
from domain.ids import derived_id

KEY_LENGTH_MAX = 200


class IdempotencyRecord(Aggregate):
    @staticmethod
    def id_for(principal_id: UUID | str, key: str) -> UUID:
        return derived_id("idempotency", principal_id, key)

    @event("Recorded")
    def __init__(
        self, id: UUID, request_hash: str, outcome: dict[str, Any],  # noqa: A002
        declined: dict[str, Any] | None = None,  # {"code", "message", "details"}; absent in older records
    ) -> None:
        self.request_hash = request_hash
        self.outcome = outcome
        self.declined = declined

    def replay(self, request_hash: str) -> dict[str, Any]:
        if request_hash != self.request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request",
            )
        if self.declined is not None:
            raise ReplayedDecline(self.declined["code"], self.declined["message"], self.declined["details"])
        return self.outcome
