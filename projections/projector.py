"""Catch-up projection runner: works on SQLite, PostgreSQL and memory alike.

The library's `ProjectionRunner` needs recorder subscriptions, which SQLite does not have, so
we pull the notification log ourselves: read a batch after our tracked position, apply every
projection to it and record the new position in the same transaction. A second process that
processed the same batch first makes our tracking insert fail; we roll back and re-read.

`catch_up()` runs after every write and before every read, which gives read-your-writes in one
process and in many.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, OperationalError

from domain.money import Posting, decode_postings
from projections.chain import canonical_bytes, originator_text
from projections.store import READ_MODEL_WRITER_LOCK, BatchCursor, Carried, Cursor, ReadStore

BATCH_SIZE = 500  # events per read-model transaction (measured: batching is 5-10x faster)
TRACKING_NAME = "jindou_read_model"
CATCH_UP_WAIT_S = 2.5  # a reader waits this long for another thread's catch-up, then answers 503


class Recorded:
    """One event as recorded: its position in the log, its stored form and its domain form, and
    what several projections need of it, made once (a plain class: replay makes one per event)."""

    __slots__ = ("canonical", "event", "notification", "occurred_at", "originator", "position", "postings")

    def __init__(self, position: int, notification: Notification, event: Any) -> None:
        self.position = position
        self.notification = notification
        self.event = event
        self.originator: str = originator_text(notification.originator_id)  # one spelling on every backend
        self.canonical: bytes = canonical_bytes(notification, self.originator)  # for the chain and the tree
        self.occurred_at: str = event.timestamp.isoformat()  # as every table spells a moment (UTC isoformat)
        # The money the event moves, decoded once for every projection; empty if none.
        self.postings: list[Posting] = decode_postings(event.postings) if getattr(event, "postings", None) else []


class Projection(Protocol):
    @property
    def tables(self) -> Sequence[str]: ...

    def apply(self, cursor: Cursor, recorded: Recorded) -> None: ...


class Projector:
    def __init__(
        self,
        app: Application[Any],
        store: ReadStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = BATCH_SIZE,
        tracking_name: str = TRACKING_NAME,
    ) -> None:
        self.app = app
        self.store = store
        self.projections = list(projections)
        self.batch_size = batch_size
        self.tracking_name = tracking_name
        self._lock = threading.Lock()
        self._position = 0
        # What committed batches handed on (projections/store.py `Carried`), and what the writer's
        # last in-transaction batch would hand on once its transaction commits (`advance`).
        self._carried = Carried()
        self._carried_lock = threading.Lock()
        self._unconfirmed: tuple[int, Carried, BatchCursor] | None = None
        self._ahead: Callable[[], int] | None = None  # the position `lock_ahead` asked for

    def create_tables(self) -> None:
        self.store.create_tables([t for p in self.projections for t in p.tables])
        self._position = self.store.position(self.tracking_name)

    @property
    def position(self) -> int:
        return self._position

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def catch_up(self, *, until: int | None = None, progress: Callable[[int, int], None] | None = None) -> int:
        """Apply every recorded event not yet projected; return the position reached."""
        target = self.head() if until is None else until
        if target <= self._position:
            return self._position
        if not self._lock.acquire(timeout=CATCH_UP_WAIT_S):
            raise OperationalError("the read model is still catching up; retry shortly")
        try:
            while self._position < target:
                notifications = self.app.recorder.select_notifications(
                    start=self._position, limit=self.batch_size, stop=target, inclusive_of_start=False
                )
                if not notifications:
                    break
                try:
                    self._apply_batch(notifications)
                except IntegrityError:
                    # Another process projected (some of) this batch first: exactly-once holds,
                    # take its position and go on from there.
                    self._position = self.store.position(self.tracking_name)
                    continue
                self._position = notifications[-1].id
                if progress is not None:
                    progress(self._position, target)
        finally:
            self._lock.release()
        return self._position

    def lock_ahead(self, raw: Any) -> None:
        """In the transaction that is inserting the writer's group, before the events' ids are
        read: the read model's writer lock and the position it guards, asked on a cursor of
        their own, so on PostgreSQL they go out with the insert (one round trip for the three).
        `project_inserted` reads the answer."""
        locking = Cursor(raw.connection.cursor() if self.store.postgres else raw, postgres=self.store.postgres)
        if self.store.postgres:
            locking.execute("SELECT pg_advisory_xact_lock(?)", (READ_MODEL_WRITER_LOCK,))
        self._ahead = self.store.ask_position(locking, self.tracking_name)

    def project_inserted(self, raw: Any, notifications: Sequence[Notification], events: Sequence[Any]) -> bool:
        """In the transaction that has just inserted `notifications` (the writer's group), after
        `lock_ahead`: apply them there too, so events, read model and position commit together.
        `events`: the same events in their domain form, as the writer decided them (not decoded
        again: a tenth of the writer's time).
        Only when the read model stands right before them; otherwise (another process's events
        are not projected yet) it returns False and a catch-up after the commit does the work."""
        self._unconfirmed = None  # whatever an earlier transaction projected did not commit
        answer, self._ahead = self._ahead, None
        assert answer is not None, "lock_ahead first, in the same transaction"
        before = answer()
        if before != notifications[0].id - 1:
            return False
        carried = self._take_carried()
        cursor = BatchCursor(raw, postgres=self.store.postgres, carried=carried, before=before)
        self._project(cursor, notifications, events, held=True)
        self._unconfirmed = (notifications[-1].id, carried, cursor)
        return True

    def advance(self, position: int) -> None:
        """The transaction that projected up to `position` committed."""
        self._position = max(self._position, position)
        unconfirmed, self._unconfirmed = self._unconfirmed, None
        if unconfirmed is not None and unconfirmed[0] == position:
            self._hand_on(position, *unconfirmed[1:])

    def _apply_batch(self, notifications: Sequence[Notification]) -> None:
        carried = self._take_carried()
        with self.store.transaction(commit=True) as transaction:
            before = self.store.position_in(transaction, self.tracking_name)
            cursor = BatchCursor(transaction.raw, postgres=transaction.postgres, carried=carried, before=before)
            self._project(cursor, notifications, [self.app.mapper.to_domain_event(n) for n in notifications])
        self._hand_on(notifications[-1].id, carried, cursor)

    def _take_carried(self) -> Carried:
        """The memory for one batch to own; batches running meanwhile find none and read the tables."""
        with self._carried_lock:
            carried, self._carried = self._carried, self._carried.taken()
        return carried

    def _hand_on(self, position: int, carried: Carried, cursor: BatchCursor) -> None:
        """A batch committed: what it learned and handed on is the memory now."""
        with self._carried_lock:
            self._carried = carried.after(position, cursor.learned, cursor.handed)

    def _project(self, cursor: BatchCursor, notifications: Sequence[Notification], events: Sequence[Any], *,
                 held: bool = False) -> None:
        """Projection by projection over the whole batch (a projection may read the tables of
        those registered before it, never after), every write through one BatchCursor. `events`:
        the notifications' domain events, in order. `held`: the transaction holds the writer lock
        and found the read model right before the batch."""
        batch = []
        for notification, event in zip(notifications, events, strict=True):
            if (event.originator_id, event.originator_version) != (notification.originator_id,
                                                                  notification.originator_version):
                raise ValueError(f"event {notification.id} is not the one recorded there")
            batch.append(Recorded(notification.id, notification, event))
        for projection in self.projections:
            apply_batch = getattr(projection, "apply_batch", None)  # a projection that folds a batch at once
            if apply_batch is not None:
                apply_batch(cursor, batch)
            else:
                for recorded in batch:
                    projection.apply(cursor, recorded)
            finish = getattr(projection, "finish_batch", None)  # a projection that writes a batch at once
            if finish is not None:
                finish(cursor)
        with cursor.pipelined():  # the batch's writes and its position: one round trip
            cursor.flush()
            self.store.record_position(cursor, self.tracking_name, notifications[-1].id, held=held)
