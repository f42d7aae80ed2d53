"""The writer: commands decided one after another, committed in groups.

Request threads hand their command to `Writer.submit` and wait. One writer thread takes
whatever is queued (up to `GROUP_MAX` commands), decides each in turn against the group's
in-memory state (each command works on private copies, so a refused command changes nothing
and refuses only itself) and records every event of the group, with the idempotency records,
in one transaction. A busy server therefore pays one commit, and one read-model catch-up, per
group rather than per command; an idle one answers a lone command at once (nothing waits for
company).

Aggregates come from an `AggregateCache` kept coherent with the notification log: before each
group the writer asks for the log's head (one cheap query) and evicts whatever another process
changed since, so a decision never reads a stale aggregate, and a busy aggregate is not read
from the database again and again.

While nobody else writes (the last look at the head found only this writer's events, and its
last group's ids directly followed them), the writer skips that look (decision 0030). It decides
on the cache as it stands, takes an Idempotency-Key the cache has never seen as unused, and
answers nobody yet. The check comes later, in the group's own transaction, under the log's lock:
its first event must take the id right after the cache's position. If it does not, someone else
wrote in between. The transaction then rolls back (`LogMoved`), and the group is decided again
after a look at the head, as above. A group that records nothing asks for the head before it
answers. A key that was used after all collides, and the group is decided again the same way.

When the group's transaction collides (another process wrote one of its aggregates, or recorded
the same Idempotency-Key first) nothing of it was recorded: the writer then runs each command of
the group alone, with the bounded retries below, exactly as a lone command runs.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from copy import copy, deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cached_property, partial
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    project_aggregate,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    Recording,
    StoredEvent,
)

from domain.bus import Result, Settings, UnitOfWork
from domain.errors import (
    ConcurrencyConflict,
    Declined,
    DomainError,
    OutcomeUnknown,
    Unavailable,
)
from domain.idempotency import IdempotencyRecord

log = logging.getLogger("jindou.writer")

GROUP_MAX = 64  # commands decided and committed together, at most
WRITE_QUEUE_WAIT_S = 2.5  # with the 1 s pool wait, a write the database cannot take is answered within 5 s
SAVE_ATTEMPTS_MAX = 10  # optimistic-concurrency retries of a lone command before answering 409
RETRY_BACKOFF_BASE_S = 0.002
RETRY_BACKOFF_MAX_S = 0.2  # attempts spread over about a second before we give up
SECRET_RESULT_FIELDS = ("token", "card_code", "code")  # never stored in an idempotency record
CACHE_SIZE = 20_000  # aggregates kept in memory (a community's accounts, codes and cards)
SHORT_HISTORY = 100  # events read in one go; a longer history loads from its snapshot
SYNC_GAP_MAX = 2_000  # further behind than this, the cache is dropped rather than read through


_PLAIN = frozenset({str, int, float, bool, bytes, type(None), UUID, datetime, date, Decimal})  # never changed in place


def private_copy(aggregate: Aggregate) -> Aggregate:
    """A copy sharing nothing changeable with `aggregate`: what `deepcopy` gives, for what our
    aggregates hold (plain values, lists, dicts and sets of them), without its generic
    machinery, which was a sixth of the writer's time. Anything else is deep-copied."""
    copied: Aggregate = object.__new__(type(aggregate))
    copied.__dict__.update({name: _copied(value) for name, value in aggregate.__dict__.items()})
    return copied


def _copied(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN or isinstance(value, Enum):
        return value
    if kind is dict:  # keys are hashable, hence plain
        if all(map(_PLAIN.__contains__, map(type, value.values()))):  # e.g. a card's sales of the day
            return dict(value)
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if kind is set or kind is frozenset:
        return kind(value)  # members are hashable, hence plain
    if kind is tuple and all(type(item) in _PLAIN for item in value):
        return value
    return deepcopy(value)


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's Idempotency-Key, bound to the principal who sent it and to the request's
    fingerprint (the command's, see `Command.fingerprint`)."""

    principal_id: UUID
    key: str
    request_hash: str

    @cached_property
    def record_id(self) -> UUID:  # a uuid5: asked for several times per command, made once
        return IdempotencyRecord.id_for(self.principal_id, self.key)


@dataclass(frozen=True)
class Outcome:
    result: Result
    replayed: bool = False
    position: int | None = None  # the last notification this command recorded (None: it recorded nothing)


Decide = Callable[[UnitOfWork], Result]
Admit = Callable[[UnitOfWork], None]  # refuses (raises a DomainError) who may no longer submit


class Limit(Protocol):
    """A limit on how often a client may try something (infra/ratelimit.py): asked once per group
    for every client of the group it limits."""

    def refusals(self, clients: Collection[str]) -> Mapping[str, DomainError]: ...
PROJECT_INSERTED = "project_inserted"  # the save keyword our recorders pass on (infra/in_transaction.py)


class LogMoved(Exception):
    """Raised in a group's transaction, which then rolls back: another writer recorded events
    after the position the group was decided at, so it is decided again (module docstring)."""


class ReadModel(Protocol):
    """What the writer needs of the projector."""

    def lock_ahead(self, cursor: Any) -> None: ...

    def project_inserted(self, cursor: Any, notifications: Sequence[Notification], events: Sequence[Any]) -> bool: ...

    def advance(self, position: int) -> None: ...

    def catch_up(self, *, until: int | None = None) -> int: ...


class AggregateCache:
    """Aggregates as last recorded, kept coherent with the notification log.

    `sync()` reads the log's head; whatever was recorded since the last sync by anyone else
    evicts the aggregates it changed. A load that raced with a sync is not kept (it may predate
    a change the sync has already passed), so an entry is never older than what `sync` has seen.
    Absence is kept too (an Idempotency-Key's record, a code nobody issued) and evicted the same
    way when the aggregate appears. Everything handed out is a private copy.
    """

    def __init__(self, app: Application[UUID], maxsize: int = CACHE_SIZE) -> None:
        self._app = app
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._entries: OrderedDict[UUID, Aggregate | None] = OrderedDict()  # None: known not to exist
        self._position: int | None = None  # the log position the entries are coherent with

    def sync(self, prefetch: Sequence[UUID] = ()) -> int:
        """Evict what was recorded since the last sync; return the log's head. `prefetch`: read
        these aggregates as `prefetch` does, in the same round trip where the recorder can
        (PostgreSQL: the head, then their events, in one pipeline)."""
        head_and_events_of = getattr(self._app.recorder, "head_and_events_of", None)
        with self._lock:
            start = self._position
            unknown = [aggregate_id for aggregate_id in prefetch if aggregate_id not in self._entries]
        stored: dict[UUID, list[StoredEvent]] | None = None
        head: int
        if unknown and head_and_events_of is not None:
            read: tuple[int, dict[UUID, list[StoredEvent]]] = head_and_events_of(unknown)
            head, stored = read
        else:
            head = self._app.recorder.max_notification_id() or 0
        if start is not None and head > start:
            stale = self._changed_between(start, head)
        with self._lock:
            if start is None or head - (start or 0) > SYNC_GAP_MAX:
                self._entries.clear()
            elif head > start:
                for aggregate_id, version in stale:
                    if aggregate_id in self._entries:
                        cached = self._entries[aggregate_id]
                        if cached is None or cached.version < version:
                            del self._entries[aggregate_id]
            self._position = max(head, self._position or 0)
        if stored is not None:
            self._keep_loaded(unknown, stored, epoch=head)  # read after the head: at least as new
        elif unknown:
            self.prefetch(unknown)
        return head

    def _changed_between(self, start: int, head: int) -> list[tuple[UUID, int]]:
        if head - start > SYNC_GAP_MAX:
            return []
        notifications = self._app.recorder.select_notifications(
            start=start, stop=head, limit=head - start, inclusive_of_start=False
        )
        return [(UUID(str(n.originator_id)), n.originator_version) for n in notifications]

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            epoch = self._position
            if aggregate_id in self._entries:
                self._entries.move_to_end(aggregate_id)
                hit = self._entries[aggregate_id]
                return None if hit is None else private_copy(hit)
        aggregate = self._load(aggregate_id)
        with self._lock:
            if epoch is not None and self._position == epoch:
                self._keep(aggregate_id, None if aggregate is None else private_copy(aggregate))
        return aggregate

    @property
    def position(self) -> int | None:
        """The log position the cache is coherent with (None before the first sync); never goes back."""
        return self._position

    def holds(self, aggregate_id: UUID) -> bool:
        """Whether this process holds the aggregate, or knows that it does not exist."""
        with self._lock:
            return aggregate_id in self._entries

    def known(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate if this process holds it, reading nothing (None: not held, or absent)."""
        with self._lock:
            hit = self._entries.get(aggregate_id)
            return None if hit is None else private_copy(hit)

    def prefetch(self, aggregate_ids: Sequence[UUID]) -> None:
        """Read these aggregates' events in one statement (our recorders can) and keep those with a
        short history, so the loads that follow are answered from memory."""
        events_of = getattr(self._app.recorder, "events_of", None)
        with self._lock:
            epoch = self._position
            unknown = [aggregate_id for aggregate_id in aggregate_ids if aggregate_id not in self._entries]
        if events_of is None or epoch is None or not unknown:
            return
        self._keep_loaded(unknown, events_of(unknown), epoch)

    def _keep_loaded(self, unknown: list[UUID], stored: dict[UUID, list[StoredEvent]], epoch: int) -> None:
        """Keep what was read (absent ones as absent), unless a sync has moved past `epoch`
        meanwhile: then it may predate a change that sync already evicted."""
        loaded = {
            aggregate_id: project_aggregate(None, map(self._app.mapper.to_domain_event, stored[aggregate_id]))
            for aggregate_id in unknown if 0 < len(stored.get(aggregate_id, ())) < SHORT_HISTORY
        }
        with self._lock:
            if self._position == epoch:
                for aggregate_id in unknown:
                    if aggregate_id in loaded:
                        self._keep(aggregate_id, loaded[aggregate_id])
                    elif aggregate_id not in stored:
                        self._keep(aggregate_id, None)

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        """From the database: one statement for an aggregate with a short history, or for one that
        does not exist (an Idempotency-Key's first use); the library's snapshot path otherwise."""
        stored = self._app.recorder.select_events(aggregate_id, limit=SHORT_HISTORY)
        if not stored:
            return None
        if len(stored) == SHORT_HISTORY:
            try:
                long_lived: Aggregate = self._app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
            return long_lived
        aggregate: Aggregate | None = project_aggregate(None, map(self._app.mapper.to_domain_event, stored))
        return aggregate

    def remember(self, aggregates: Iterable[Aggregate], recordings: list[Recording[UUID]]) -> None:
        """What this process just recorded: current by construction. When its notifications
        directly follow the synced position, the cache is coherent up to the last of them."""
        ids = sorted(r.notification.id for r in recordings if r.notification.id is not None)
        with self._lock:
            for aggregate in aggregates:
                self._keep(aggregate.id, aggregate)
            if ids and self._position is not None and ids[0] == self._position + 1 and ids[-1] - ids[0] + 1 == len(ids):
                self._position = ids[-1]

    def evict(self, aggregate_ids: Iterable[UUID]) -> None:
        with self._lock:
            for aggregate_id in aggregate_ids:
                self._entries.pop(aggregate_id, None)

    def _keep(self, aggregate_id: UUID, aggregate: Aggregate | None) -> None:
        self._entries[aggregate_id] = aggregate
        self._entries.move_to_end(aggregate_id)
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)


class _Projecting:
    """The save's `project_inserted` callback (infra/in_transaction.py): the read model's lock and
    position asked while the group's events are being inserted, then the group projected in
    their transaction. `projected`: whether it was (the read model stood right before them).
    The projections are given the group's events as decided, in the order saved: decoding them
    back from their stored form would make the same objects again (tests/conftest.py checks)."""

    def __init__(self, read_model: ReadModel, events: Sequence[Any], after: int | None) -> None:
        self.read_model = read_model
        self.events = events
        self.after = after  # the log position the group was decided at, unseen by a look at the head
        self.projected = False

    def lock_ahead(self, cursor: Any) -> None:
        self.read_model.lock_ahead(cursor)

    def __call__(self, cursor: Any, notifications: Sequence[Notification]) -> None:
        # Under the log's lock ids are issued and committed in one order (decision 0016): the
        # group's first id follows `after` only if nobody recorded anything since.
        if self.after is not None and notifications[0].id != self.after + 1:
            raise LogMoved(f"the log moved past {self.after} before event {notifications[0].id}")
        self.projected = self.read_model.project_inserted(cursor, notifications, self.events)


@dataclass(eq=False)
class _Job:
    decide: Decide
    key: IdempotencyKey | None
    admit: Admit | None = None
    limit: tuple[Limit, str] | None = None  # the limit this command counts against, and its client
    on_done: Callable[[], None] | None = None  # an awaiting request's wake-up (`submit_async`)
    done: threading.Event = field(default_factory=threading.Event)
    taken: bool = False
    cancelled: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None

    def finish(self, outcome: Outcome | None = None, error: BaseException | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.done.set()
        if self.on_done is not None:
            self.on_done()

    def answer(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


@dataclass
class _Decided:
    """One command's decision within a group: its result or refusal, and what it changed
    (nothing when it was refused outright or replayed from an earlier recording)."""

    job: _Job
    result: Result | None = None
    refusal: DomainError | None = None
    replayed: bool = False
    changed: list[Aggregate] = field(default_factory=list)


class Writer:
    def __init__(
        self, app: Application[UUID], cache: AggregateCache, now: Callable[[], datetime], settings: Settings,
        *, group_max: int = GROUP_MAX,
    ) -> None:
        self._app = app
        self.cache = cache
        self._now = now
        self._settings = settings
        self._group_max = group_max
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards each job's taken/cancelled
        self._thread: threading.Thread | None = None
        self.read_model: ReadModel | None = None  # the projector (infra/wiring.py)
        self.groups = self.commands = self.collisions = 0  # since start (GET /metrics)
        self.moved = 0  # since start: groups decided again because another writer had recorded meanwhile
        # The last id this writer recorded, while its events directly followed the cache's
        # position; and whether the cache's last look at the head found nothing of anyone else's.
        # Both: the cache is current as long as nobody else writes (module docstring).
        self._recorded_through: int | None = None
        self._quiet = False
        # Since start: the writer's time on groups, and its thread's CPU in that time; the rest
        # was waiting, for the database or for the interpreter (decision 0026).
        self.seconds = self.cpu_seconds = 0.0

    # --- what request threads call ------------------------------------------------------------

    def submit(self, decide: Decide, key: IdempotencyKey | None = None) -> Outcome:
        """Decide and record `decide` in the writer's next group; its own outcome or refusal."""
        job = _Job(decide, key)
        self._enqueue(job)
        if not job.done.wait(WRITE_QUEUE_WAIT_S):
            self._give_up_unless_taken(job)
            job.done.wait()  # it is being recorded: its outcome comes within the database's own timeouts
        return job.answer()

    async def submit_async(
        self, decide: Decide, key: IdempotencyKey | None = None, *, admit: Admit | None = None,
        limit: tuple[Limit, str] | None = None,
    ) -> Outcome:
        """`submit` for a coroutine: the event loop waits for the group, no thread is held.
        `admit` runs first in the decision, on the group's state (e.g. the credential is still
        live); `limit`: refused without a decision while its client is over it."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        def wake_from_writer() -> None:
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:  # the loop has closed (shutdown): nobody is waiting any more
                pass

        job = _Job(decide, key, admit, limit, on_done=wake_from_writer)
        self._enqueue(job)
        timer = loop.call_later(WRITE_QUEUE_WAIT_S, wake)
        try:
            await woken
        finally:
            timer.cancel()
        if not job.done.is_set():
            self._give_up_unless_taken(job)
            await loop.run_in_executor(None, job.done.wait)  # being recorded: see `submit`
        return job.answer()

    def _enqueue(self, job: _Job) -> None:
        self._start()
        self._queue.put(job)

    def _give_up_unless_taken(self, job: _Job) -> None:
        with self._lock:
            if not job.taken:
                job.cancelled = True
        if job.cancelled:
            raise Unavailable("too many changes are waiting for the database; retry shortly")

    def preview(self, decide: Decide) -> Result:
        """What `decide` would answer now, recording nothing."""
        self.cache.sync()
        return decide(self._unit_of_work(self.cache.get))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    # --- the writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="jindou-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self._group_max:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # close after this group
                    break
                group.append(job)
            group = self._take(group)
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                self._record_group(group)
            except BaseException as failure:  # noqa: BLE001 - every waiting request gets an answer
                for job in group:
                    if not job.done.is_set():
                        job.finish(error=failure)
            finally:
                self.cpu_seconds += time.thread_time() - cpu
                self.seconds += time.perf_counter() - started

    def _take(self, group: list[_Job]) -> list[_Job]:
        with self._lock:
            taken = [job for job in group if not job.cancelled]
            for job in taken:
                job.taken = True
        return taken

    def _unit_of_work(self, load: Callable[[UUID], Aggregate | None]) -> UnitOfWork:
        return UnitOfWork(load, self._now(), self._settings, prefetch=self.cache.prefetch)

    def _record_group(self, group: list[_Job]) -> None:
        if not group:
            return
        current = self._current()
        if not current:
            self._sync(group)
        group = self._within_limits(group)
        if not group:
            return
        if len(group) == 1:
            self._record_alone(group[0], current)
            return
        self._decide_and_save(group, current)

    def _current(self) -> bool:
        """Whether the cache can be taken as current without a look at the head: nobody else
        wrote at the last look, this writer's last group followed it, and the recorder checks
        in the group's transaction that nobody has since (`_Projecting`)."""
        return (self._quiet and self._recorded_through is not None and self.cache.position == self._recorded_through
                and self.read_model is not None and getattr(self._app.recorder, "projects_inserted", False))

    def _sync(self, group: Sequence[_Job]) -> None:
        """The log's head, and the group's Idempotency-Keys (mostly absent), in one round trip."""
        before = self.cache.position
        head = self.cache.sync(prefetch=[job.key.record_id for job in group if job.key is not None])
        self._quiet = before is None or head == before

    def _unseen_keys(self, group: Sequence[_Job]) -> set[UUID]:
        """The group's Idempotency-Keys the cache has never seen: taken as unused. A used one
        collides with its record when the group is saved, and the group is decided again."""
        return {job.key.record_id for job in group if job.key is not None and not self.cache.holds(job.key.record_id)}

    def _cached_unless_unseen(self, unseen: set[UUID], aggregate_id: UUID) -> Aggregate | None:
        return None if aggregate_id in unseen else self.cache.get(aggregate_id)

    def _head_unmoved(self, decided_at: int | None) -> bool:
        """For a group that records nothing, decided without a look at the head at `decided_at`:
        whether nobody has recorded anything since (else it is decided again on what they recorded)."""
        return (self._app.recorder.max_notification_id() or 0) == decided_at

    def _moved(self, group: Sequence[_Job]) -> None:
        """Another writer recorded while the group was decided without a look at the head: look."""
        self.moved += 1
        self._sync(group)

    def _decide_again(self, group: list[_Job]) -> None:
        """A group decided on the cache alone turned out not current: look, then decide it again."""
        self._moved(group)
        self._decide_and_save(group, current=False)

    def _decide_and_save(self, group: list[_Job], current: bool) -> None:
        """Decide the group in order on one state and save it in one transaction. `current`: it
        is decided on the cache without a look at the head, and answered only once nobody else
        turns out to have recorded meanwhile; otherwise it is decided again after a look."""
        state: dict[UUID, Aggregate] = {}  # the group's aggregates as its earlier commands left them
        # Taken before deciding: a read's look at the head may move the cache on meanwhile.
        decided_at = self.cache.position if current else None
        unseen = self._unseen_keys(group) if current else set()

        def load(aggregate_id: UUID) -> Aggregate | None:
            if aggregate_id in state:
                return private_copy(state[aggregate_id])
            return self._cached_unless_unseen(unseen, aggregate_id)

        decided: list[_Decided] = []
        unchanged: list[_Decided] = []  # answered at once, or with the group when it was `current`
        events: list[Any] = []
        for job in group:
            decision = self._decide(job, self._unit_of_work(load))
            if not decision.changed:
                if current:
                    unchanged.append(decision)
                else:
                    self._answer(decision, None)  # records nothing: no need to wait for the others
                continue
            for aggregate in decision.changed:
                events.extend(aggregate.collect_events())
                state[aggregate.id] = aggregate
            decided.append(decision)
        if not events:
            if current and not self._head_unmoved(decided_at):
                self._decide_again(group)
                return
            for decision in unchanged + decided:
                self._answer(decision, None)
            return
        try:
            saved = self._save(events, state.values(), after=decided_at)
        except LogMoved:
            self._decide_again(group)
            return
        except IntegrityError:
            # Someone else wrote one of these aggregates or keys first; nothing of ours was
            # recorded. Decided on the cache alone, the group is decided again after a look at
            # the head; otherwise each command runs again alone, on fresh state.
            self.cache.evict(state)
            if current:
                self._decide_again(group)
                return
            self.collisions += 1
            for decision in decided:
                self._record_alone(decision.job)
            return
        except DomainError as failure:  # the database failed: nothing of the group is confirmed
            for decision in unchanged + decided:
                decision.job.finish(error=failure)
            return
        self.groups, self.commands = self.groups + 1, self.commands + len(decided)
        position = self._recorded(*saved)
        for decision in unchanged:
            self._answer(decision, None)
        for decision in decided:
            self._answer(decision, position)

    @staticmethod
    def _within_limits(group: list[_Job]) -> list[_Job]:
        """Answer the commands whose client is over its limit (one question per limit for the
        whole group); the others go on to be decided."""
        clients: dict[Limit, set[str]] = {}
        for job in group:
            if job.limit is not None:
                clients.setdefault(job.limit[0], set()).add(job.limit[1])
        if not clients:
            return group
        refusals = {limit: limit.refusals(limited) for limit, limited in clients.items()}
        admitted = []
        for job in group:
            refusal = None if job.limit is None else refusals[job.limit[0]].get(job.limit[1])
            if refusal is None:
                admitted.append(job)
            else:
                job.finish(error=copy(refusal))  # each request raises its own
        return admitted

    def _record_alone(self, job: _Job, current: bool = False) -> None:
        """One command, retried on optimistic-concurrency collisions with other processes.
        `current`: decided first without a look at the head, as `_decide_and_save` explains."""
        for attempt in range(SAVE_ATTEMPTS_MAX):
            decided_at = self.cache.position if current else None  # as in `_decide_and_save`
            unseen = self._unseen_keys([job]) if current else set()
            decision = self._decide(job, self._unit_of_work(partial(self._cached_unless_unseen, unseen)))
            events = [event for aggregate in decision.changed for event in aggregate.collect_events()]
            if not events:
                if current and not self._head_unmoved(decided_at):
                    self._moved([job])
                    current = False
                    continue
                self._answer(decision, None)
                return
            try:
                saved = self._save(events, decision.changed, after=decided_at)
            except LogMoved:
                self._moved([job])
                current = False
                continue
            except IntegrityError:
                self.cache.evict(aggregate.id for aggregate in decision.changed)
                if current:  # an unused-looking key that was used, or a change the cache had not seen
                    self._moved([job])
                    current = False
                    continue
                # Another process wrote first: back off exponentially, with jitter to de-synchronise the racers.
                time.sleep(random.uniform(0, min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_BASE_S * 2**attempt)))
                self.cache.sync()
                continue
            except DomainError as failure:
                job.finish(error=failure)
                return
            self.groups, self.commands = self.groups + 1, self.commands + 1
            self._answer(decision, self._recorded(*saved))
            return
        job.finish(error=ConcurrencyConflict("too many concurrent changes to the same accounts; please retry"))

    def _decide(self, job: _Job, uow: UnitOfWork) -> _Decided:
        key = job.key
        if job.admit is not None:
            try:
                job.admit(uow)
            except DomainError as refusal:
                return _Decided(job, refusal=refusal)
        try:
            if key is not None:
                record = uow.find(IdempotencyRecord, key.record_id)
                if record is not None:
                    return self._replay(job, record, key)
            result = job.decide(uow)
        except DomainError as refusal:
            if key is not None:
                # Another process may have recorded this very request meanwhile (a used code, an
                # already reversed sale): then its outcome is the answer.
                earlier = self.cache.get(key.record_id)
                if isinstance(earlier, IdempotencyRecord):
                    return self._replay(job, earlier, key)
            if key is None or not isinstance(refusal, Declined):
                return _Decided(job, refusal=refusal)
            declined = IdempotencyRecord(  # a declined request keeps its refusal, and only that
                id=key.record_id, request_hash=key.request_hash, outcome={},
                declined={"code": refusal.code, "message": refusal.message, "details": refusal.details},
            )
            return _Decided(job, refusal=refusal, changed=[declined])
        changed = list(uow.touched())
        if key is not None:
            stored = {k: (None if k in SECRET_RESULT_FIELDS else v) for k, v in result.items()}
            changed.append(IdempotencyRecord(id=key.record_id, request_hash=key.request_hash, outcome=stored))
        return _Decided(job, result=result, changed=changed)

    @staticmethod
    def _replay(job: _Job, record: IdempotencyRecord, key: IdempotencyKey) -> _Decided:
        try:
            return _Decided(job, result=record.replay(key.request_hash), replayed=True)
        except DomainError as refusal:  # a different request under this key, or a recorded refusal
            return _Decided(job, refusal=refusal, replayed=True)

    def _save(self, events: list[Any], aggregates: Iterable[Aggregate], after: int | None = None,
              ) -> tuple[list[Recording[UUID]], bool]:
        """Record the events in one transaction, in the order they were decided, and project them
        in it when the recorder can (the second value says whether it did). `after`: raise
        `LogMoved`, recording nothing, unless the first event takes the id right after it. A
        database that fails during the save may have committed it or not: say exactly that."""
        projecting = None if self.read_model is None else _Projecting(self.read_model, events, after)
        options = {} if projecting is None else {PROJECT_INSERTED: projecting}
        try:
            recordings = self._app.save(*events, **options)
        except (OperationalError, InterfaceError) as failure:
            raise OutcomeUnknown(
                "the database failed while this was being recorded; it may or may not have been recorded: "
                "retry with the same Idempotency-Key to find out"
            ) from failure
        recorded = {event.originator_id for event in events}
        saved = [aggregate for aggregate in aggregates if aggregate.id in recorded]
        self.cache.remember(saved, recordings)
        last = max((r.notification.id for r in recordings if r.notification.id is not None), default=None)
        self._recorded_through = last if last is not None and self.cache.position == last else None
        self._take_snapshots(saved, events)
        return recordings, projecting is not None and projecting.projected

    def _take_snapshots(self, aggregates: list[Aggregate], events: list[Any]) -> None:
        """As the library's own save would: every `snapshotting_intervals` events of a kind. An
        aggregate the group left at that very version is snapshotted from memory; the library's
        `take_snapshot` would first read and replay its events since the last snapshot (up to an
        interval's worth: a busy merchant's every 500th sale stalled its group for them)."""
        intervals = self._app.snapshotting_intervals or {}
        if not self._app.snapshots or not intervals:
            return
        saved = {aggregate.id: aggregate for aggregate in aggregates}
        for event in events:
            aggregate = saved[event.originator_id]
            interval = intervals.get(type(aggregate))
            if not interval or event.originator_version % interval:
                continue
            snapshot_class = getattr(type(aggregate), "Snapshot", self._app.snapshot_class)
            if aggregate.version == event.originator_version and snapshot_class is not None:
                self._app.snapshots.put([snapshot_class.take(aggregate)])
            else:
                self._app.take_snapshot(event.originator_id, version=event.originator_version)

    def _recorded(self, recordings: list[Recording[UUID]], projected: bool) -> int | None:
        """The group is durable. Unless its own transaction projected it, bring the read model up
        to it here, once per group, before anyone is answered: read-your-writes needs no
        catch-up per request. A read model that cannot follow now catches up on the next read."""
        position = max((r.notification.id for r in recordings if r.notification.id is not None), default=None)
        if position is None or self.read_model is None:
            return position
        if projected:
            self.read_model.advance(position)
            return position
        try:
            self.read_model.catch_up(until=position)
        except Exception as failure:  # noqa: BLE001 - the events are recorded whatever the read model does
            log.warning("recorded, but the read model could not catch up yet: %s", failure)
        return position

    @staticmethod
    def _answer(decision: _Decided, position: int | None) -> None:
        if decision.refusal is not None:
            decision.job.finish(error=decision.refusal)
        else:
            assert decision.result is not None
            decision.job.finish(Outcome(decision.result, replayed=decision.replayed, position=position))
