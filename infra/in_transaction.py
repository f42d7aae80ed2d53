"""Projecting a group in the transaction that records it (decision 0017).

The writer saves a group with `app.save(*events, project_inserted=callback)`; the library hands
the keyword to the recorder's `insert_events`. Our recorders (PostgreSQL and SQLite) then insert
the events and call `callback(cursor, notifications)` before the same transaction commits, so the
events, the read model's rows and its tracking position are durable together: one commit per
group, and a request is answered with its write already readable. The memory backend ignores
the keyword (its read model lives in another database); the writer then catches up after the
commit, as it also does when the callback declines (another process's events wait first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from domain.writer import PROJECT_INSERTED
from projections.chain import LoggedEvent

ProjectInserted = Callable[[Any, Sequence[Notification]], object]


def send_ahead(project: ProjectInserted, cursor: Any) -> None:
    """Whatever the callback asks to send before the events' ids are read (the writer's: the
    read model's lock and position, so on PostgreSQL they share the insert's round trip)."""
    lock_ahead = getattr(project, "lock_ahead", None)
    if lock_ahead is not None:
        lock_ahead(cursor)


def notifications_of(stored_events: Sequence[StoredEvent], ids: Sequence[int]) -> list[Notification]:
    return [
        Notification(id=notification_id, originator_id=stored.originator_id,
                     originator_version=stored.originator_version, topic=stored.topic, state=stored.state)
        for stored, notification_id in zip(stored_events, ids, strict=True)
    ]


class ProjectingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    projects_inserted = True  # calls the writer's callback in the insert's transaction, before it commits

    def logged_events(self, after: int, through: int, limit: int) -> list[LoggedEvent]:
        """The log's events after `after` up to `through`, `limit` at most, as plain tuples. The
        library stores a UUID originator as its 32 hex digits; SQLite spells it back canonically."""
        hex_id = "originator_id"
        canonical = "||'-'||".join(f"substr({hex_id}, {start}, {length})"
                                   for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12)))
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, CASE WHEN length({hex_id}) = 32 THEN {canonical} ELSE {hex_id} END, "  # noqa: S608
                      f"originator_version, topic, state FROM {self.events_table_name} "
                      "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?", (after, through, limit))
            return [LoggedEvent(*row) for row in c.fetchall()]

    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Every stored event of these aggregates, in one statement (the writer's prefetch)."""
        marks = ", ".join("?" for _ in ids)
        found: dict[UUID, list[StoredEvent]] = {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "  # noqa: S608
                      f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version", [i.hex for i in ids])
            for row in c.fetchall():
                originator_id = UUID(row["originator_id"])
                found.setdefault(originator_id, []).append(StoredEvent(
                    originator_id=originator_id, originator_version=row["originator_version"], topic=row["topic"],
                    state=bytes(row["state"]),
                ))
        return found

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        project: ProjectInserted | None = kwargs.get(PROJECT_INSERTED)
        if project is not None and ids:
            send_ahead(project, c)
            project(c, notifications_of(stored_events, ids))
        return ids
