"""The audit hash chain: every recorded event, in log order, linked by SHA-256.

    hash(n) = sha256(hash(n-1) || canonical_bytes(event n)),  hash(0) = 32 zero bytes

Canonical bytes (version 1) are length-prefixed, so no two different events encode alike:
the version tag, then position, originator id, originator version, topic and the state bytes
exactly as the event store holds them (the library's JSON). See
docs/decisions/0005-hash-chain-and-audit.md.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.store import Cursor

if TYPE_CHECKING:  # the projector imports this module: canonical bytes are made once per event there
    from projections.projector import Recorded

CANONICAL_VERSION = b"jindou-chain-v1"
GENESIS_HASH = bytes(32)
GENESIS_HEX = GENESIS_HASH.hex()


def _field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


VERSION_FIELD = _field(CANONICAL_VERSION)
_NUMBER_THEN_LENGTH = struct.Struct(">qI")  # a position or version, then the next field's length
_LENGTH = struct.Struct(">I")


def originator_text(originator_id: UUID | str) -> str:
    """One spelling whatever the backend hands back (SQLite and PostgreSQL differ)."""
    if isinstance(originator_id, UUID):
        return str(originator_id)
    try:
        return str(UUID(str(originator_id)))
    except ValueError:
        return str(originator_id)


class LoggedEvent(NamedTuple):
    """A stored event as the chain reads it in bulk (`logged_events` of our recorders): its
    originator already in canonical text, so a walk of the log makes no UUID per event. Has a
    `Notification`'s fields, so `canonical_bytes(event, event.originator_id)` takes it as is."""

    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


def canonical_bytes(notification: Notification, originator: str | None = None) -> bytes:
    """version field, position, originator field, originator version, topic field, state field
    (a field is its length then its bytes); packed a number and the next length at once."""
    originator = originator_text(notification.originator_id) if originator is None else originator
    aggregate, topic, state = originator.encode("utf-8"), notification.topic.encode("utf-8"), bytes(notification.state)
    return b"".join(
        (
            VERSION_FIELD,
            _NUMBER_THEN_LENGTH.pack(notification.id, len(aggregate)), aggregate,
            _NUMBER_THEN_LENGTH.pack(notification.originator_version, len(topic)), topic,
            _LENGTH.pack(len(state)), state,
        )
    )


def link(prev_hash: bytes, notification: Notification, originator: str | None = None) -> bytes:
    return hashlib.sha256(prev_hash + canonical_bytes(notification, originator)).digest()


CHAIN_HEAD = "chain_head"  # what a batch hands on to the next (projections/store.py `Carried`)


class ChainProjection:
    """Keeps one row per event: what it was (position, aggregate, version, topic) and its hash.

    Registered first, so projections applied after it in the same batch can read the head at
    the event being applied (fund reports carry it)."""

    tables = (
        "CREATE TABLE IF NOT EXISTS audit_chain ("
        " position BIGINT PRIMARY KEY, aggregate_id TEXT NOT NULL, version BIGINT NOT NULL,"
        " topic TEXT NOT NULL, hash TEXT NOT NULL)",
    )

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        self.apply_batch(cursor, [recorded])

    def apply_batch(self, cursor: Cursor, batch: Sequence[Recorded]) -> None:
        """Links the batch's events in one loop and writes their rows in one statement."""
        prev_hash = self._prev_hash(cursor, batch[0].position)
        rows = []
        for recorded in batch:
            prev_hash = hashlib.sha256(prev_hash + recorded.canonical).digest()  # link(prev_hash, its notification)
            notification = recorded.notification
            rows.append((recorded.position, recorded.originator, notification.originator_version, notification.topic,
                         prev_hash.hex()))
        cursor.executemany("INSERT INTO audit_chain VALUES (?, ?, ?, ?, ?)", rows)
        cursor.hand_on(CHAIN_HEAD, prev_hash)

    @staticmethod
    def _prev_hash(cursor: Cursor, position: int) -> bytes:
        head: bytes | None = cursor.handed_on(CHAIN_HEAD)  # the last link, this transaction's or the last batch's
        return head if head is not None else bytes.fromhex(chain_head_at(cursor, position - 1))


def chain_head_at(cursor: Cursor, position: int) -> str:
    """Hex hash of the chain at the last event at or before `position` (genesis when none)."""
    row = cursor.one("SELECT hash FROM audit_chain WHERE position <= ? ORDER BY position DESC LIMIT 1", (position,))
    return GENESIS_HEX if row is None else str(row["hash"])


def chain_summary(cursor: Cursor) -> tuple[int, str]:
    """(events chained, head hash hex)."""
    row = cursor.one("SELECT CAST(COUNT(*) AS BIGINT) AS events_count, MAX(position) AS last FROM audit_chain")
    assert row is not None
    if not row["events_count"]:
        return 0, GENESIS_HEX
    return int(row["events_count"]), chain_head_at(cursor, int(row["last"]))
