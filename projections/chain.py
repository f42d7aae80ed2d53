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
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.projector import Recorded
from projections.store import Cursor

CANONICAL_VERSION = b"jindou-chain-v1"
GENESIS_HASH = bytes(32)
GENESIS_HEX = GENESIS_HASH.hex()


def _field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def originator_text(originator_id: UUID | str) -> str:
    """One spelling whatever the backend hands back (SQLite and PostgreSQL differ)."""
    if isinstance(originator_id, UUID):
        return str(originator_id)
    try:
        return str(UUID(str(originator_id)))
    except ValueError:
        return str(originator_id)


def canonical_bytes(notification: Notification, originator: str | None = None) -> bytes:
    originator = originator_text(notification.originator_id) if originator is None else originator
    return b"".join(
        (
            _field(CANONICAL_VERSION),
            struct.pack(">q", notification.id),
            _field(originator.encode("utf-8")),
            struct.pack(">q", notification.originator_version),
            _field(notification.topic.encode("utf-8")),
            _field(bytes(notification.state)),
        )
    )


def link(prev_hash: bytes, notification: Notification, originator: str | None = None) -> bytes:
    return hashlib.sha256(prev_hash + canonical_bytes(notification, originator)).digest()


class ChainProjection:
    """Keeps one row per event: what it was (position, aggregate, version, topic) and its hash.

    Registered first, so projections applied after it in the same batch can read the head at
    the event being applied (fund reports carry it)."""

    tables = (
        "CREATE TABLE IF NOT EXISTS audit_chain ("
        " position BIGINT PRIMARY KEY, aggregate_id TEXT NOT NULL, version BIGINT NOT NULL,"
        " topic TEXT NOT NULL, hash TEXT NOT NULL)",
    )

    def __init__(self) -> None:
        # The last link written in the current transaction: a batch is consecutive events, so
        # the next one links to it without a query. A new transaction has a new cursor.
        self._last: tuple[Cursor, int, bytes] | None = None

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        prev_hash = self._prev_hash(cursor, recorded.position)
        notification = recorded.notification
        originator = originator_text(notification.originator_id)
        hash_bytes = link(prev_hash, notification, originator)
        cursor.execute(
            "INSERT INTO audit_chain VALUES (?, ?, ?, ?, ?)",
            (recorded.position, originator, notification.originator_version, notification.topic, hash_bytes.hex()),
        )
        self._last = (cursor, recorded.position, hash_bytes)

    def _prev_hash(self, cursor: Cursor, position: int) -> bytes:
        if self._last is not None and self._last[0] is cursor and self._last[1] < position:
            return self._last[2]
        return bytes.fromhex(chain_head_at(cursor, position - 1))


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
