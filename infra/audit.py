"""What `jindou audit verify` and `jindou audit replay` do: read-only checks of a live store.

verify: walks the event store and the recorded chain side by side in log order, recomputing
every hash from the stored bytes; the first position where they disagree is named.
replay: rebuilds every projection from event 1 in a scratch store, up to the position the live
read model has reached, and compares the two table by table.

Neither writes: both open the store with `build_services(..., catch_up=False)` so tampered
events are never projected before they are checked. See docs/decisions/0005.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import multiprocessing
import queue
import re
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import itemgetter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from uuid import UUID

from eventsourcing.application import Application, project_aggregate
from eventsourcing.persistence import InterfaceError, InternalError, Notification, OperationalError
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore, SQLiteTrackingRecorder
import psycopg
from psycopg.rows import dict_row, tuple_row
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress as LiveProgress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from domain.accounts import Account
from domain.community import Community
from infra.settings import POSTGRES_PERSISTENCE, Settings, SettingsError, persistence_env
from infra.transparency import SigningKeyError, known_public_keys
from infra.verify_in_database import Vouched, published_heads_hold, snapshot_positions, table_of, vouched_for
from infra.wiring import Services, build_services, read_store_for
from projections import fund, ledger, transparency
from projections.chain import GENESIS_HASH, ChainProjection, LoggedEvent, canonical_bytes, originator_text
from projections.projector import TRACKING_NAME, Projection, Projector
from projections.registry import all_projections
from projections.store import Cursor, ReadStore
from projections.transparency import Frontier, TransparencyProjection
from tools.verify_jindou import head_problem, kept_head, leaf_hash, verify_consistency

SCRATCH_CACHE_KIB = 32 * 1024  # SQLite page cache of each connection to the replay's scratch database
SNAPSHOTS_APART_FROM = 10_000  # events in the log from which verify rebuilds snapshotted aggregates in another process
VERIFY_BATCH_SIZE = 5_000  # events read per query: the chain rows and tree rows of their positions take one more each
DIFFERENCES_SHOWN_PER_TABLE = 10
PROGRESS_LINE_STEP_PERCENT = 10  # without a terminal, one line per this much progress

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------
# Progress on stderr.


class ProgressBar:
    """Rich's live bar on a terminal; a plain line every 10 % when stderr is a file or a pipe
    (logs and CI keep a readable record instead of redraw codes)."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.next_line_percent = 0
        self.live: LiveProgress | None = None
        self.task: TaskID | None = None
        if stream.isatty():
            self.live = LiveProgress(
                TextColumn(label), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(file=stream), transient=False,
            )

    def __call__(self, done: int, total: int) -> None:
        if self.live is not None:
            if self.task is None:
                self.live.start()
                self.task = self.live.add_task(self.label, total=total)
            self.live.update(self.task, completed=done, total=total)
            return
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if percent >= self.next_line_percent:
            self.stream.write(f"{self.label}: {percent}% ({done}/{total})\n")
            self.next_line_percent = (percent // PROGRESS_LINE_STEP_PERCENT + 1) * PROGRESS_LINE_STEP_PERCENT
            self.stream.flush()

    def finish(self) -> None:
        if self.live is not None and self.task is not None:
            self.live.stop()


# ---------------------------------------------------------------------------------------------
# verify


@dataclass(frozen=True)
class Finding:
    position: int
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    events_checked: int
    head: str  # hex head recomputed from the store
    chained_through: int  # last position the chain covers
    store_head: int  # last position in the event store
    finding: Finding | None
    notes: tuple[str, ...] = ()  # worth a look, but not evidence of tampering

    @property
    def ok(self) -> bool:
        return self.finding is None


def _event_windows(app: Application[Any], through: int) -> Iterator[tuple[int, int, list[LoggedEvent]]]:
    """The store's events up to `through`, VERIFY_BATCH_SIZE a query: (after, up to, events) per window."""
    logged_events = getattr(app.recorder, "logged_events", None)
    start = 0
    while start < through:
        if logged_events is not None:
            events: list[LoggedEvent] = logged_events(start, through, VERIFY_BATCH_SIZE)
        else:  # the in-memory recorder
            events = [LoggedEvent(n.id, originator_text(n.originator_id), n.originator_version, n.topic, n.state)
                      for n in app.recorder.select_notifications(start=start, limit=VERIFY_BATCH_SIZE, stop=through,
                                                                 inclusive_of_start=False)]
        end = events[-1].id if len(events) == VERIFY_BATCH_SIZE else through
        yield start, end, events
        start = end


def _plain_rows(cursor: Cursor, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows as tuples: a window holds thousands, and a dict per row would cost more than the query."""
    if cursor.postgres:
        cursor.raw.row_factory = tuple_row  # this read-only cursor only, for this statement
        try:
            cursor.execute(statement, params)
            return list(cursor.raw.fetchall())
        finally:
            cursor.raw.row_factory = dict_row
    cursor.execute(statement, params)
    return [tuple(row) for row in cursor.raw.fetchall()]


class _ChainRow(NamedTuple):
    position: int
    aggregate_id: str
    version: int
    topic: str
    hash: str


def _chain_rows(cursor: Cursor, start: int, end: int) -> list[_ChainRow]:
    rows = _plain_rows(cursor, "SELECT position, aggregate_id, version, topic, hash FROM audit_chain"
                               " WHERE position > ? AND position <= ? ORDER BY position", (start, end))
    return list(map(_ChainRow._make, rows))


def _paired(
    events: Sequence[LoggedEvent], rows: Sequence[_ChainRow]
) -> list[tuple[LoggedEvent | None, _ChainRow | None]]:
    """Pairs store events and chain rows by position; a lone one has None beside it."""
    if [event.id for event in events] == [row.position for row in rows]:
        return list(zip(events, rows, strict=True))
    pairs: list[tuple[LoggedEvent | None, _ChainRow | None]] = []
    at_event, at_row = 0, 0
    while at_event < len(events) or at_row < len(rows):
        event = events[at_event] if at_event < len(events) else None
        row = rows[at_row] if at_row < len(rows) else None
        if row is None or (event is not None and event.id < row.position):
            pairs.append((event, None))
            at_event += 1
        elif event is None or event.id > row.position:
            pairs.append((None, row))
            at_row += 1
        else:
            pairs.append((event, row))
            at_event, at_row = at_event + 1, at_row + 1
    return pairs


def _mismatch(event: LoggedEvent, row: _ChainRow) -> str:
    recorded = (str(row.aggregate_id), int(row.version), str(row.topic))
    found = (event.originator_id, event.originator_version, event.topic)
    if recorded != found:
        return (
            f"the chain recorded {recorded[2]} v{recorded[1]} of {recorded[0]} here, "
            f"but the store now has {found[2]} v{found[1]} of {found[0]}: event replaced or moved"
        )
    return "hash mismatch: the stored event (its state) or its chain record was altered"


@dataclass(frozen=True)
class PublishedHead:
    """A head someone kept outside the database: a fund report, GET /v1/audit/chain or a signed tree
    head saved earlier. A fund report carries both the chain's head and the signed tree head."""

    source: str
    events_count: int | None
    head: str | None  # the chain's head after events_count events
    tree_head: dict[str, Any] | None = None  # a signed tree head (GET /v1/public/transparency/tree-head)


def _lone_finding(event: LoggedEvent | None, chain_row: _ChainRow | None) -> Finding:
    """An event the chain never recorded, or a chain row whose event is gone."""
    if chain_row is None:
        assert event is not None
        return Finding(event.id, "the store has an event here that the chain never recorded: "
                                 "inserted out of order, or its chain record was deleted")
    return Finding(chain_row.position, f"the chain recorded {chain_row.topic} v{chain_row.version} "
                   f"of {chain_row.aggregate_id} here, but the store no longer has it: event removed")


def _published_finding(published: Sequence[PublishedHead], position: int, count: int, head: str) -> Finding | None:
    for kept in published:
        if kept.events_count == count and kept.head is not None and kept.head != head:
            return Finding(position, f"{kept.source} published head {kept.head} after {count} events, but the stored "
                                     f"events hash to {head} there: history up to here was rewritten")
    return None


def _published_tree_finding(published: Sequence[PublishedHead], position: int, frontier: Frontier) -> Finding | None:
    root = frontier.root_hex()
    for kept in published:
        if kept.tree_head is not None and kept.tree_head["tree_size"] == frontier.size and kept.tree_head["root_hash"] != root:
            return Finding(position, f"{kept.source} published a signed tree head of {frontier.size} events with root "
                                     f"{kept.tree_head['root_hash']}, but the stored events make root {root}: history up "
                                     "to here was rewritten")
    return None


_CHAIN_WHERE = "audit_chain WHERE position > ? AND position <= ?"
_LEAVES_WHERE = "transparency_leaves WHERE leaf_index >= ? AND leaf_index <= ?"


def _nodes_where(first_leaf: int, last_leaf: int) -> tuple[str, list[int]]:
    """The tree's nodes completed by appending leaves first_leaf..last_leaf: at level l, node i is
    completed by leaf (i + 1)·2^l − 1."""
    ranges = []
    level, low, high = 0, first_leaf, last_leaf
    while low <= high:
        ranges.append((level, low, high))
        level += 1
        low, high = ((first_leaf + (1 << level)) >> level) - 1, ((last_leaf + 1) >> level) - 1
    ranged = " OR ".join(["(level = ? AND node_index >= ? AND node_index <= ?)"] * len(ranges)) or "1 = 0"
    return f"transparency_nodes WHERE {ranged}", [bound for kept in ranges for bound in kept]


class _StoredRows(NamedTuple):
    """One window's rows of the read model that verify compares, as plain tuples: the chain's
    (position, link hex), the tree's (leaf index, position) and (level, node index, hash hex)."""

    chain: list[tuple[int, str]]
    leaves: list[tuple[int, int]]
    nodes: list[tuple[int, int, str]]


def _stored_rows(store: ReadStore, start: int, end: int, first_leaf: int, last_leaf: int) -> _StoredRows:
    nodes_where, nodes_params = _nodes_where(first_leaf, last_leaf)
    with store.read() as cursor:
        return _StoredRows(
            _plain_rows(cursor, f"SELECT position, hash FROM {_CHAIN_WHERE} ORDER BY position", (start, end)),
            _plain_rows(cursor, f"SELECT leaf_index, position FROM {_LEAVES_WHERE} ORDER BY leaf_index",
                        (first_leaf, last_leaf)),
            _plain_rows(cursor, f"SELECT level, node_index, hash FROM {nodes_where} ORDER BY level, node_index",
                        nodes_params))


class _Window(NamedTuple):
    """A window of the log as stored: its events after `start` up to `end`, and the read model's
    rows for them."""

    start: int
    end: int
    events: list[LoggedEvent]
    stored: _StoredRows


def _windows(app: Application[Any], store: ReadStore, through: int) -> Iterator[_Window]:
    leaf = 0
    for start, end, events in _event_windows(app, through):
        yield _Window(start, end, events, _stored_rows(store, start, end, leaf, leaf + len(events) - 1))
        leaf += len(events)


def _read_ahead(windows: Iterator[_Window]) -> Iterator[_Window]:
    """The next window is read in a thread while this one is walked: the reads are waits on the
    database (the interpreter's lock let go), the walk is hashing."""
    with ThreadPoolExecutor(1, thread_name_prefix="verify-read") as reader:
        ahead = reader.submit(next, windows, None)
        while (window := ahead.result()) is not None:
            ahead = reader.submit(next, windows, None)
            yield window


def _tree_finding(first_leaf: int, positions: Sequence[int], made: Sequence[tuple[int, list[bytes]]],
                  stored: _StoredRows) -> Finding | None:
    """The Merkle tree the service serves proofs from must be the tree of the stored events, node
    for node and leaf for leaf: a window's leaves (from `first_leaf`, the events at `positions`)
    and the nodes they completed (`made`, from `Frontier.extend`) against the rows as read, in the
    same order; where they differ, the first event whose leaf or node is wrong."""
    leaves = list(zip(range(first_leaf, first_leaf + len(positions)), positions))
    # The nodes compared as two columns, each made and read without a Python step per node.
    if (stored.leaves == leaves
            and list(map(itemgetter(0, 1), stored.nodes)) == list(itertools.chain.from_iterable(
                zip(itertools.repeat(level), range(first, first + len(hashes))) for level, (first, hashes) in enumerate(made)))
            and list(map(itemgetter(2), stored.nodes)) == list(itertools.chain.from_iterable(
                map(bytes.hex, hashes) for _, hashes in made))):
        return None
    nodes = [(level, first + offset, hashed.hex()) for level, (first, hashes) in enumerate(made)
             for offset, hashed in enumerate(hashes)]
    stored_positions, stored_hashes = dict(stored.leaves), {(level, index): hashed for level, index, hashed in stored.nodes}
    wrong = [position for index, position in leaves if stored_positions.get(index) != position]
    # node i of level l was completed by leaf (i + 1)·2^l − 1
    wrong += [positions[((index + 1) << level) - 1 - first_leaf] for level, index, hashed in nodes
              if stored_hashes.get((level, index)) != hashed]
    if wrong:
        return Finding(min(wrong), "the stored transparency tree is not the tree of the stored events here (a "
                                   "leaf or node differs or is missing): its tables were altered")
    return None


def _tree_size_finding(store: ReadStore, size: int, last_position: int) -> Finding | None:
    with store.read() as cursor:
        stored = transparency.tree_size(cursor)
    if stored != size:
        return Finding(last_position, f"the stored transparency tree has {stored} leaves but {size} events are "
                                      "chained: its tables were altered")
    return None


def published_tree_findings(store: ReadStore, published: Sequence[PublishedHead]) -> list[str]:
    """Each consecutive pair of published tree heads, by size, must be consistent (RFC 9162 §2.1.4)."""
    heads = sorted((kept for kept in published if kept.tree_head is not None), key=lambda k: k.tree_head["tree_size"])  # type: ignore[index]
    problems = []
    with store.read() as cursor:
        for older, newer in zip(heads, heads[1:], strict=False):
            first, second = older.tree_head["tree_size"], newer.tree_head["tree_size"]  # type: ignore[index]
            if first == 0:
                continue
            proof = [bytes.fromhex(h) for h in transparency.consistency_proof(cursor, first, second)]
            if not verify_consistency(first, second, bytes.fromhex(older.tree_head["root_hash"]),  # type: ignore[index]
                                      bytes.fromhex(newer.tree_head["root_hash"]), proof):  # type: ignore[index]
                problems.append(f"{newer.source} (tree of {second} events) is not an extension of {older.source} "
                                f"(tree of {first} events): history between them was rewritten")
    return problems


@dataclass
class _Walked:
    """What the walk made of one window of events, kept for the comparison with the stored rows:
    each event's position and link (hex), and each published head's finding with the index of the
    event it came at."""

    checked_before: int
    head_before: bytes
    positions: list[int] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    published: list[tuple[int, Finding]] = field(default_factory=list)

    def at(self, index: int) -> tuple[int, str]:
        """(events checked, head hex) after `index` events of this window."""
        return self.checked_before + index, (self.links[index - 1] if index else self.head_before.hex())

    def chain_matches(self, stored: _StoredRows) -> bool:
        return stored.chain == list(zip(self.positions, self.links, strict=True))

    def chain_finding(self, cursor: Cursor, events: Sequence[LoggedEvent], start: int, end: int) -> tuple[int, Finding] | None:
        """Once the chain's rows differ: the first event whose chain row is missing, lone or holds
        another link, with the index it came at (the rows read again, whole, to say what they hold)."""
        for index, (event, chain_row) in enumerate(_paired(events, _chain_rows(cursor, start, end))):
            if event is None or chain_row is None:
                return index, _lone_finding(event, chain_row)
            if self.links[index] != chain_row.hash:
                return index, Finding(event.id, _mismatch(event, chain_row))
        return None


def verify_chain(
    app: Application[Any], store: ReadStore, progress: Progress | None = None, published: Sequence[PublishedHead] = (),
    *, walk: bool = False,
) -> VerifyReport:
    """The stored events against the chain, the transparency tree, the published heads and the
    snapshots. On PostgreSQL the database checks the chain and the tree itself unless `walk`; the
    walk recomputes every hash here (and names whatever the database's check found amiss)."""
    snapshotted = _Snapshotted(app)
    try:
        return _verify_chain(app, store, snapshotted, progress, published, walk)
    finally:
        snapshotted.close()


def _vouched_by_database(
    app: Application[Any], store: ReadStore, snapshotted: _Snapshotted, through: int, progress: Progress | None,
    published: Sequence[PublishedHead],
) -> Vouched | None:
    """On PostgreSQL, the database checks the chain and the tree itself (infra/verify_in_database.py)
    and the walk is needed only if it finds anything amiss, to say what and where. The snapshotted
    aggregates are noted first, so their rebuilding (in another process) goes on meanwhile."""
    recorder, snapshots = app.recorder, getattr(app.snapshots, "recorder", None)
    if not (store.postgres and isinstance(recorder, PostgresApplicationRecorder)
            and isinstance(snapshots, PostgresAggregateRecorder)):
        return None
    events_table, snapshots_table = table_of(recorder), table_of(snapshots)
    snapshotted.start_beside()
    with store.read() as cursor:
        for aggregate_id, last_position, positions in snapshot_positions(cursor, events_table, snapshots_table, through):
            snapshotted.noted(aggregate_id, last_position, positions)
    vouched = vouched_for(store, events_table, through, progress)
    if vouched is None:
        return None
    with store.read() as cursor:
        chain_heads = [(kept.events_count, kept.head) for kept in published
                       if kept.events_count and kept.head is not None and kept.events_count <= vouched.events]
        tree_heads = [(kept.tree_head["tree_size"], kept.tree_head["root_hash"]) for kept in published
                      if kept.tree_head is not None and 0 < kept.tree_head["tree_size"] <= vouched.events]
        if not published_heads_hold(cursor, chain_heads, tree_heads):
            return None
    return vouched


def _verify_chain(
    app: Application[Any], store: ReadStore, snapshotted: _Snapshotted, progress: Progress | None,
    published: Sequence[PublishedHead], walk: bool,
) -> VerifyReport:
    # The tracked position first: it only grows, so the chain read after it reaches at least
    # as far unless chain rows were removed from the end.
    tracked = store.position(TRACKING_NAME)
    with store.read() as cursor:
        row = cursor.one("SELECT MAX(position) AS last FROM audit_chain")
    chained_last = int(row["last"]) if row and row["last"] is not None else 0
    through = max(tracked, chained_last)
    store_head = app.recorder.max_notification_id() or 0
    snapshotted.start_apart(through)
    prev_hash, checked, frontier = GENESIS_HASH, 0, Frontier()

    def report(finding: Finding | None, at: tuple[int, str] | None = None) -> VerifyReport:
        events_checked, head = at if at is not None else (checked, prev_hash.hex())
        return VerifyReport(events_checked, head, chained_last, store_head, finding, tuple(snapshotted.notes))

    # Heads were published after these numbers of events: only there is a root worth computing.
    published_sizes = sorted({kept.events_count for kept in published if kept.events_count} | {
        kept.tree_head["tree_size"] for kept in published if kept.tree_head is not None})
    if progress is not None:
        progress(0, through)
    vouched = None if walk else _vouched_by_database(app, store, snapshotted, through, progress, published)
    if vouched is not None:
        checked, prev_hash = vouched.events, bytes.fromhex(vouched.head)
    windows = _windows(app, store, through if vouched is None else 0)
    for start, end, events, stored in _read_ahead(windows) if store.postgres else windows:
        # The walk: each event's link and tree leaf, made from its bytes once; then the tree's
        # nodes, a level at a time.
        walked, tree_before, leaves = _Walked(checked, prev_hash), Frontier(frontier.size, list(frontier.nodes)), []
        for event in events:
            canonical = canonical_bytes(event, event.originator_id)
            prev_hash = hashlib.sha256(prev_hash + canonical).digest()  # link(prev_hash, event)
            walked.links.append(prev_hash.hex())
            leaves.append(leaf_hash(canonical))
            snapshotted.saw(event)
        walked.positions = [event.id for event in events]
        made = frontier.extend(leaves)
        checked += len(events)
        at, done = tree_before, 0  # the tree grown leaf by leaf up to each published size in this window
        for size in (size for size in published_sizes if walked.checked_before < size <= checked):
            index = size - walked.checked_before
            for leaf in leaves[done:index]:
                at.append(leaf)
            done, position = index, walked.positions[index - 1]
            if finding := (_published_finding(published, position, size, walked.links[index - 1])
                           or _published_tree_finding(published, position, at)):
                walked.published.append((index, finding))  # the first only: it ends verify
                break
        # The stored rows against the walk. Findings come in log order: a chain row's before a
        # published head's at a later event, the tree's last.
        chain = None
        if not walked.chain_matches(stored):
            with store.read() as cursor:
                chain = walked.chain_finding(cursor, events, start, end)
        first_published = walked.published[0] if walked.published else None
        if chain is not None and (first_published is None or chain[0] < first_published[0]):
            return report(chain[1], walked.at(chain[0]))
        if first_published is not None:
            return report(first_published[1], walked.at(first_published[0]))
        if tree := _tree_finding(walked.checked_before, walked.positions, made, stored):
            return report(tree)
        if progress is not None:
            progress(end, through)
    if progress is not None:
        progress(through, through)
    if tracked > chained_last:
        return report(Finding(tracked, f"the read model projected events up to position {tracked} but the "
                                       f"chain ends at {chained_last}: chained events were removed from the end"))
    for kept in published:
        published_count = kept.events_count if kept.tree_head is None else kept.tree_head["tree_size"]
        if published_count is not None and published_count > checked:
            return report(Finding(chained_last, f"{kept.source} published a chain of {published_count} events, but "
                                                f"the store holds only {checked}: events were removed"))
    if finding := _tree_size_finding(store, checked, chained_last):
        return report(finding)
    return report(snapshotted.finding())


class _Compared(NamedTuple):
    """A snapshot against the aggregate rebuilt from its events: the attributes whose values differ,
    those today's code has that the snapshot lacks, and those the snapshot has that today's code lacks."""

    altered: list[str]
    lacks: list[str]
    has: list[str]


@dataclass
class _SnapshottedAggregate:
    """One aggregate's snapshots, as listed by the snapshot store, and the log positions of the
    events at their versions as the walk passed them."""

    snapshots: list[Any]  # as the snapshot store lists them
    versions_listed: list[int] = field(default_factory=list)  # their versions, in the same order
    unreadable: str | None = None  # why its snapshots cannot be read, if so
    positions: dict[int, int] = field(default_factory=dict)  # snapshot version → log position of that event
    last_position: int = 0
    compared: dict[int, _Compared] | None = None  # snapshot index → how it compared, once checked

    def __post_init__(self) -> None:
        self.listed = set(self.versions_listed)


def _comparable(app: Application[Any], state: dict[str, Any]) -> Any:
    """Through the library's own JSON, so a tuple and the list it is stored as compare equal."""
    return json.loads(app.mapper.transcoder.encode(state))


def _compare(app: Application[Any], snapshot: Any, rebuilt: Any) -> _Compared:
    expected, stored = _comparable(app, type(snapshot).take(rebuilt).state), _comparable(app, snapshot.state)
    altered = sorted(name for name in expected.keys() & stored.keys() if expected[name] != stored[name])
    return _Compared(altered, sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys()))


def _compared_snapshots(
    app: Application[Any], aggregate_id: str, snapshots: list[Any] | None = None
) -> tuple[list[int], dict[int, _Compared]] | None:
    """(versions, snapshot index → how it compared): every snapshot of the aggregate (read here
    unless given) against the aggregate rebuilt from its events, in one pass up to the last
    snapshot's version, each event decoded once. None if anything is unexpected (events out of
    order, one that no longer decodes): `_Snapshotted._check` meets the problem the long way."""
    try:
        if snapshots is None:
            snapshots = list(app.snapshots.get(UUID(aggregate_id)))  # type: ignore[union-attr]
        listed_at: dict[int, list[int]] = {}
        for index, snapshot in enumerate(snapshots):
            listed_at.setdefault(snapshot.originator_version, []).append(index)
        rebuilt, compared = None, {}
        for event in app.events.get(UUID(aggregate_id), lte=max(listed_at, default=0)):
            if rebuilt is not None and event.originator_version != rebuilt.version + 1:
                return None
            rebuilt = event.mutate(rebuilt)
            for index in listed_at.get(event.originator_version, ()):
                compared[index] = _compare(app, snapshots[index], rebuilt)
        return [snapshot.originator_version for snapshot in snapshots], compared
    except Exception:  # noqa: BLE001 — `_check` rebuilds it the long way and meets the problem there
        return None


def _compare_each(app: Application[Any], ids: Any, results: Any) -> None:
    """`_compared_snapshots` for each aggregate id sent, until None; then None."""
    try:
        while (aggregate_id := ids.get()) is not None:
            results.put((aggregate_id, _compared_snapshots(app, aggregate_id)))
    finally:
        results.put(None)


def _check_snapshots_apart(app_class: type[Application[Any]], env: dict[str, str], ids: Any, results: Any) -> None:
    """`_compare_each` in a process of its own, with its own connections."""
    app = app_class(env=env)
    try:
        _compare_each(app, ids, results)
    finally:
        app.close()


def _apart_possible(app: Application[Any]) -> bool:
    """Another process sees the same history: a PostgreSQL database or an SQLite file (not a
    database in this process's memory), and this system can fork."""
    env = app.env
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    if env.get("PERSISTENCE_MODULE") == POSTGRES_PERSISTENCE:
        return True
    name = env.get("SQLITE_DBNAME", "")
    return env.get("PERSISTENCE_MODULE", "").endswith("sqlite") and bool(name) and ":memory:" not in name \
        and "mode=memory" not in name


class _Snapshotted:
    """Snapshots are not in the log, so the chain does not cover them; a snapshot edited to give
    an account beans it never earned would still be believed. Each must equal the aggregate
    rebuilt from the (verified) events it summarises.

    Rebuilding is a third of verify's work (each event of a snapshotted aggregate decoded and
    applied), so where another process can read the same database it is done there, beside the
    walk: the walk sends each snapshotted aggregate as it first meets it, and notes the log
    positions of the events at the snapshots' versions."""

    def __init__(self, app: Application[Any]) -> None:
        self.app = app
        self.topic_prefixes = tuple(f"{cls.__module__}:{cls.__qualname__}." for cls in app.snapshotting_intervals)
        self.aggregates: dict[str, _SnapshottedAggregate] = {}  # aggregate id → its snapshots, in first-seen order
        self.notes: list[str] = []
        self.apart: Any = None

    def start_apart(self, events: int) -> None:
        """Rebuild in another process if the log is long enough to repay starting one (a fork, an
        application and its connections: tens of milliseconds) and one can read the database."""
        if events >= SNAPSHOTS_APART_FROM and self.app.snapshots is not None and _apart_possible(self.app):
            context = multiprocessing.get_context("fork")
            self.ids, self.results = context.SimpleQueue(), context.Queue()
            self.apart = context.Process(target=_check_snapshots_apart, name="verify-snapshots", daemon=True,
                                         args=(type(self.app), dict(self.app.env), self.ids, self.results))
            self.apart.start()

    def start_beside(self) -> None:
        """Rebuild in a thread of this process while the database checks the log (its threads
        only wait on it), unless another process does already."""
        if self.apart is None and self.app.snapshots is not None:
            self.ids, self.results = queue.Queue(), queue.Queue()
            self.apart = threading.Thread(target=_compare_each, name="verify-snapshots", daemon=True,
                                          args=(self.app, self.ids, self.results))
            self.apart.start()

    def close(self) -> None:
        """Stops the other process (or thread, after its aggregate) if verify ended before asking
        for its comparisons."""
        if self.apart is not None and self.apart.is_alive():
            if isinstance(self.apart, threading.Thread):
                self.ids.put(None)
            else:
                self.apart.terminate()
        if self.apart is not None:
            self.apart.join()

    def noted(self, aggregate_id: str, last_position: int, positions: dict[int, int]) -> None:
        """What the walk would note of this aggregate passing its events, from the database."""
        aggregate = self._aggregate(aggregate_id)
        aggregate.last_position = last_position
        aggregate.positions = {version: position for version, position in positions.items() if version in aggregate.listed}

    def saw(self, event: LoggedEvent) -> None:
        if self.app.snapshots is None or not event.topic.startswith(self.topic_prefixes):
            return
        aggregate = self._aggregate(event.originator_id)
        aggregate.last_position = event.id
        if event.originator_version in aggregate.listed:
            aggregate.positions[event.originator_version] = event.id

    def _aggregate(self, aggregate_id: str) -> _SnapshottedAggregate:
        """The aggregate's snapshots, read when first met (and sent to the other process then)."""
        aggregate = self.aggregates.get(aggregate_id)
        if aggregate is None:
            aggregate = self.aggregates[aggregate_id] = self._read(aggregate_id)
            if self.apart is not None and aggregate.versions_listed:
                self.ids.put(aggregate_id)
        return aggregate

    def _read(self, aggregate_id: str) -> _SnapshottedAggregate:
        try:
            snapshots = list(self.app.snapshots.get(UUID(aggregate_id)))  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 — a snapshot altered past decoding is the finding
            return _SnapshottedAggregate([], unreadable=repr(exc))
        return _SnapshottedAggregate(snapshots, [snapshot.originator_version for snapshot in snapshots])

    def _collect(self) -> None:
        """Each aggregate's comparisons: from the other process (all it sent before it stopped),
        else made here."""
        if self.apart is not None:
            self.ids.put(None)
            while self.apart.is_alive() or not self.results.empty():
                try:
                    sent = self.results.get(timeout=1)
                except queue.Empty:
                    continue
                if sent is None:
                    break
                aggregate_id, checked = sent
                aggregate = self.aggregates[aggregate_id]
                if checked is not None and checked[0] == aggregate.versions_listed:
                    aggregate.compared = checked[1]
            self.apart.join()
        for aggregate_id, aggregate in self.aggregates.items():
            if aggregate.compared is None and aggregate.versions_listed:
                checked = _compared_snapshots(self.app, aggregate_id, aggregate.snapshots)
                aggregate.compared = {} if checked is None else checked[1]

    def finding(self) -> Finding | None:
        self._collect()
        for aggregate_id, aggregate in self.aggregates.items():
            if aggregate.unreadable is not None:
                return Finding(aggregate.last_position, f"a snapshot of {aggregate_id} cannot be read "
                                                        f"({aggregate.unreadable})")
            for index in range(len(aggregate.versions_listed)):
                if finding := self._check(aggregate_id, aggregate, index):
                    return finding
        return None

    def _check(self, aggregate_id: str, aggregate: _SnapshottedAggregate, index: int) -> Finding | None:
        version = aggregate.versions_listed[index]
        position = aggregate.positions.get(version)
        if position is None:
            return Finding(aggregate.last_position, f"a snapshot of {aggregate_id} at version {version} has no such "
                                                    "event behind it")
        compared = (aggregate.compared or {}).get(index)
        if compared is None:
            events = self.app.events.get(UUID(aggregate_id), lte=version)
            compared = _compare(self.app, aggregate.snapshots[index], project_aggregate(None, events))
        if compared.altered:
            return Finding(position, f"the snapshot of {aggregate_id} at version {version} differs from its events "
                                     f"in {', '.join(compared.altered)}: snapshot altered")
        if compared.lacks or compared.has:
            # Code that gained or lost an attribute since the snapshot was taken, not an edit of a
            # value: the aggregate class needs a class_version and an upcast for its snapshots.
            self.notes.append(f"the snapshot of {aggregate_id} at version {version} lacks "
                              f"{compared.lacks} and has {compared.has} "
                              "compared with today's code: a class change without a snapshot upcast?")
        return None


# ---------------------------------------------------------------------------------------------
# The event listing behind GET /v1/audit/events


EVENT_FIELDS_SHOWN_APART = ("originator_id", "originator_version", "timestamp")


def _event_item(app: Application[Any], notification: Notification, hash_hex: str | None) -> dict[str, Any]:
    """One chained event: decoded for reading, and the stored bytes so anyone can rehash it."""
    item: dict[str, Any] = {
        "position": notification.id, "type": notification.topic.rpartition(":")[2],
        "aggregate_id": originator_text(notification.originator_id), "version": notification.originator_version,
        "occurred_at": None, "data": None, "hash": hash_hex,
        "topic": notification.topic, "state_base64": base64.b64encode(bytes(notification.state)).decode(),
    }
    try:
        event = app.mapper.to_domain_event(notification)
    except Exception:  # noqa: BLE001 — an event altered past decoding must still be listed for the auditor
        return item
    item["occurred_at"] = event.timestamp.isoformat()
    item["data"] = {k: v for k, v in vars(event).items() if k not in EVENT_FIELDS_SHOWN_APART}
    return item


def chained_events(app: Application[Any], store: ReadStore, *, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` chained events after a position, and the cursor to the next page (None at the end)."""
    with store.read() as cursor:
        hashes = {
            int(row["position"]): str(row["hash"])
            for row in cursor.all(
                "SELECT position, hash FROM audit_chain WHERE position > ? ORDER BY position LIMIT ?", (after, limit + 1)
            )
        }
    if not hashes:
        return [], None
    notifications = app.recorder.select_notifications(
        start=after, limit=limit, stop=max(hashes), inclusive_of_start=False
    )
    items = [_event_item(app, n, hashes.get(n.id)) for n in notifications]  # None: never chained
    more = len(hashes) > limit
    return items, (items[-1]["position"] if more and items else None)


SCOPED_BATCH_SIZE = 500
SCOPED_SCAN_MAX = 5_000  # events examined per page for a community-bound reader; the cursor goes on from there


def community_events(
    app: Application[Any], store: ReadStore, community_id: UUID, *, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Chained events of one community only, for its own auditors and admins (contract v1.1,
    Scope): other communities' events and deployment-level ones (idempotency records, the
    deployment's own staff) are left out. A page may hold fewer than `limit` items and still
    have a cursor: at most SCOPED_SCAN_MAX events are examined per page."""
    found: list[dict[str, Any]] = []
    position, scanned = after, 0
    owners: dict[str, UUID | None] = {}
    while scanned < SCOPED_SCAN_MAX:
        batch, next_position = chained_events(app, store, after=position, limit=SCOPED_BATCH_SIZE)
        for index, item in enumerate(batch):
            position, scanned = item["position"], scanned + 1
            if _community_of(app, item, owners) == community_id:
                found.append(item)
                if len(found) == limit:
                    more = next_position is not None or index < len(batch) - 1
                    return found, position if more else None
        if next_position is None:
            return found, None
    return found, position


def _community_of(app: Application[Any], item: dict[str, Any], owners: dict[str, UUID | None]) -> UUID | None:
    """The community an event belongs to: named in the event, or the one its aggregate (or the
    account that aggregate serves) belongs to; None for deployment-level and undecodable events."""
    data = item["data"] or {}
    if "community_id" in data:
        return data["community_id"] if isinstance(data["community_id"], UUID) else None
    aggregate_id = str(item["aggregate_id"])
    if aggregate_id not in owners:
        owners[aggregate_id] = _aggregate_community(app, aggregate_id)
    return owners[aggregate_id]


def _aggregate_community(app: Application[Any], aggregate_id: str) -> UUID | None:
    try:
        aggregate = app.repository.get(UUID(aggregate_id))
    except Exception:  # noqa: BLE001 — an aggregate that no longer loads belongs to no one we can name
        return None
    if isinstance(aggregate, Community):
        return aggregate.id
    community_id = getattr(aggregate, "community_id", None)
    if community_id is None and isinstance(getattr(aggregate, "account_id", None), UUID):
        return _aggregate_community(app, str(aggregate.account_id))
    return community_id if isinstance(community_id, UUID) else None


# ---------------------------------------------------------------------------------------------
# replay


@dataclass(frozen=True)
class TableSpec:
    name: str
    key_columns: tuple[str, ...]
    text_keys: frozenset[str] = frozenset()  # the key columns that hold text

    def ordered_select(self, postgres: bool) -> str:
        """Every row in key order, the same order on both backends: text by its bytes (SQLite's
        own order; PostgreSQL's by the "C" collation, not the database's language rules), as
        Python orders the keys it merges."""
        collate = ' COLLATE "C"' if postgres else ""
        order = ", ".join(f"{column}{collate if column in self.text_keys else ''}" for column in self.key_columns)
        return f"SELECT * FROM {self.name} ORDER BY {order}"  # noqa: S608 (our own table and column names)

    @cached_property
    def key_of(self) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """A row's key, always a tuple (so the differences name keys alike)."""
        values = itemgetter(*self.key_columns)
        return values if len(self.key_columns) > 1 else lambda row: (values(row),)


@dataclass
class TableDifferences:
    table: str
    count: int = 0
    shown: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.shown) < DIFFERENCES_SHOWN_PER_TABLE:
            self.shown.append(text)


@dataclass(frozen=True)
class ReplayReport:
    position: int  # replayed through this position, the live read model's
    events_replayed: int
    tables: list[TableDifferences]

    @property
    def ok(self) -> bool:
        return all(t.count == 0 for t in self.tables)


CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*)\)\s*$", re.I | re.S)
TABLE_PRIMARY_KEY = re.compile(r"^\s*PRIMARY\s+KEY\s*\(([^)]*)\)", re.I)
COLUMN_PRIMARY_KEY = re.compile(r"^\s*(\w+)\s.*\bPRIMARY\s+KEY\b", re.I | re.S)
TEXT_COLUMN = re.compile(r"^\s*(\w+)\s+TEXT\b", re.I)


def _top_level_parts(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:index])
            start = index + 1
    return [*parts, body[start:]]


def _key_columns(body: str) -> tuple[str, ...]:
    parts = _top_level_parts(body)
    for part in parts:
        if match := TABLE_PRIMARY_KEY.match(part):
            return tuple(column.strip() for column in match[1].split(","))
    for part in parts:
        if match := COLUMN_PRIMARY_KEY.match(part):
            return (match[1],)
    return ()


def table_specs(projections: Sequence[Projection]) -> list[TableSpec]:
    """Every table the projections create (their CREATE TABLE statements say which). Each needs a
    primary key: replay compares the two sides row by row in key order."""
    specs = []
    for projection in projections:
        for statement in projection.tables:
            if match := CREATE_TABLE.match(statement):
                keys = _key_columns(match[2])
                if not keys:
                    raise ValueError(f"table {match[1]} has no primary key: replay cannot pair its rows")
                texts = {m[1] for part in _top_level_parts(match[2]) if (m := TEXT_COLUMN.match(part))}
                specs.append(TableSpec(match[1], keys, frozenset(texts & set(keys))))
    return specs


def _normal(value: Any) -> Any:
    """One spelling per value across SQLite and PostgreSQL."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def _normal_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _normal(v) for k, v in row.items()}


def _ordered_rows(cursor: Cursor, spec: TableSpec) -> Iterator[dict[str, Any]]:
    """A table's rows in key order, a fetch at a time: never the whole table in memory."""
    return cursor.stream(spec.ordered_select(cursor.postgres))


def compare_table(spec: TableSpec, live: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]]) -> TableDifferences:
    """Two lists of a table's rows, in any order."""
    return compare_ordered(spec, sorted(live, key=spec.key_of), sorted(replayed, key=spec.key_of))


def compare_ordered(spec: TableSpec, live: Iterable[dict[str, Any]], replayed: Iterable[dict[str, Any]]) -> TableDifferences:
    """Two streams of a table's rows, each in key order, walked side by side (a merge join). Rows
    equal as read are equal; others are compared again in one spelling per value (`_normal`)."""
    differences = TableDifferences(spec.name)
    live_rows, replay_rows = iter(live), iter(replayed)
    live_row, replay_row = next(live_rows, None), next(replay_rows, None)
    while live_row is not None or replay_row is not None:
        live_key = None if live_row is None else spec.key_of(live_row)
        replay_key = None if replay_row is None else spec.key_of(replay_row)
        if replay_key is None or (live_key is not None and live_key < replay_key):
            differences.add(f"{live_key}: only in live: {_normal_row(live_row)}")
            live_row = next(live_rows, None)
        elif live_key is None or replay_key < live_key:
            differences.add(f"{replay_key}: only in replay: {_normal_row(replay_row)}")
            replay_row = next(replay_rows, None)
        else:
            assert live_row is not None and replay_row is not None
            if live_row != replay_row and (live_row := _normal_row(live_row)) != (replay_row := _normal_row(replay_row)):
                changed = {c: (live_row.get(c), replay_row.get(c)) for c in live_row.keys() | replay_row.keys()
                           if live_row.get(c) != replay_row.get(c)}
                differences.add(f"{live_key}: " + ", ".join(f"{c} live={a!r} replay={b!r}"
                                                            for c, (a, b) in sorted(changed.items())))
            live_row, replay_row = next(live_rows, None), next(replay_rows, None)
    return differences


@contextmanager
def _snapshot(store: ReadStore, *, exported: str | None = None) -> Iterator[Cursor]:
    """One consistent view of the live read model while the service may keep writing; on
    PostgreSQL, `exported` (`pg_export_snapshot()` of another transaction) makes it that one's."""
    with store.read() as cursor:
        if store.postgres:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            if exported is not None:
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(exported)}'")
            # Idle while the whole history replays (minutes for a million events): exempt, for
            # this transaction only, from the limit the service sets on its sessions
            # (infra/settings.py), which would otherwise end it before the comparison.
            cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        yield cursor


def _tracked_position(store: ReadStore, cursor: Cursor) -> int:
    return store.tracking._max_tracking_id(TRACKING_NAME, cursor.raw) or 0  # noqa: SLF001 (inside our snapshot)


def _ledger_invariants(cursor: Cursor, side: str) -> TableDifferences:
    """Double entry (Σ per asset is 0) and no holder below zero, whatever the tables agree on."""
    differences = TableDifferences(f"ledger invariants ({side})")
    for asset, total in sorted(ledger.totals_by_asset(cursor).items()):
        if total != 0:
            differences.add(f"Σ balances of {asset} is {total}, not 0")
    for (account_id, asset), balance in sorted(ledger.all_balances(cursor).items()):
        if ":" not in account_id and balance < 0:  # system accounts are "community:role"
            differences.add(f"holder {account_id} holds {balance} {asset}")
    return differences


def _guarded_balances(app: Application[Any], cursor: Cursor) -> TableDifferences:
    """Each guarded account (a volunteer's, a beneficiary's) keeps its own balances, from its own
    Posted events; they must equal what the ledger derives from the transactions' postings. An
    edit to a transaction's event, chain rewritten and read model rebuilt, is still caught here.
    `cursor` reads the replayed store: the versions it chained are the ones compared."""
    differences = TableDifferences("guarded account aggregates against the ledger")
    ledger_balances = ledger.all_balances(cursor)
    versions = cursor.all(
        "SELECT aggregate_id, MAX(version) AS version FROM audit_chain WHERE topic LIKE ? GROUP BY aggregate_id",
        (f"{Account.__module__}:{Account.__qualname__}.%",),
    )
    for row in sorted(versions, key=lambda r: str(r["aggregate_id"])):
        account = app.repository.get(UUID(str(row["aggregate_id"])), version=int(row["version"]))
        if not isinstance(account, Account) or not account.is_guarded:
            continue
        derived = {asset: balance for (holder, asset), balance in ledger_balances.items() if holder == str(account.id)}
        kept = {asset: balance for asset, balance in account.balances.items() if balance}
        if kept != derived:
            differences.add(f"account {account.id}: its own events hold {kept}, the ledger's postings {derived}")
    return differences


def fund_reports(cursor: Cursor, moment: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """Every public fund report as it reads at `moment`: each community, each month since it began."""
    reports = {}
    for row in cursor.all("SELECT community_id FROM ledger_communities ORDER BY community_id"):
        for period in fund.report_periods(cursor, str(row["community_id"]), moment):
            report = fund.fund_report(cursor, str(row["community_id"]), period, moment)
            if report is not None:
                reports[(str(row["community_id"]), period)] = report
    return reports


def compare_reports(live: dict[tuple[str, str], dict[str, Any]], replayed: dict[tuple[str, str], dict[str, Any]]) -> TableDifferences:
    differences = TableDifferences("public fund reports")
    for key in sorted(live.keys() | replayed.keys()):
        live_report, replay_report = live.get(key, {}), replayed.get(key, {})
        for name in sorted(live_report.keys() | replay_report.keys()):
            if live_report.get(name) != replay_report.get(name):
                differences.add(f"{key[0]} {key[1]}: {name} live={live_report.get(name)!r} replay={replay_report.get(name)!r}")
    return differences


class _ScratchConnectionPool(SQLiteConnectionPool):
    """A throwaway database: no sync to disk at each commit (a crash loses only the replay) and a
    bounded page cache of its own (measured: together as fast as an in-memory database)."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute(f"PRAGMA cache_size = -{SCRATCH_CACHE_KIB}")
        return connection


@contextmanager
def _scratch_store(path: Path) -> Iterator[ReadStore]:
    """A replay's read model: a SQLite file (in a temporary folder), so a long history's tables sit
    on disk, not in this process's memory."""
    datastore = SQLiteDatastore(str(path))
    datastore.pool = _ScratchConnectionPool(db_name=datastore.pool.db_name)
    store = ReadStore(SQLiteTrackingRecorder(datastore))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _read_beside(store: ReadStore, apart: Path | None) -> Iterator[Cursor]:
    """A read of the scratch store that also sees the tables of `apart` (attached outside any
    transaction, as SQLite requires; a write transaction would lock every attached file)."""
    datastore = store.tracking.datastore
    assert isinstance(datastore, SQLiteDatastore)
    with datastore.get_connection(commit=False) as connection:
        if apart is not None:
            connection.cursor().execute("ATTACH DATABASE ? AS apart", (str(apart),))
        try:
            with connection.transaction(commit=False) as raw:
                yield Cursor(raw, postgres=False)
        finally:
            if apart is not None:
                connection.cursor().execute("DETACH DATABASE apart")


# Replayed in another process on a long PostgreSQL history: they need nothing the others project,
# and their tables (a row per event for the chain and the leaves, two for the tree's nodes) are
# three quarters of the rows to compare.
APART = (ChainProjection, TransparencyProjection)
REPLAY_APART_FROM = 20_000  # events from which replay splits its work in two processes
APART_WAIT_S = 1.0


class _ReplayApart:
    """The chain and the tree replayed, and compared with the live read model, by a forked
    process with its own connections, while this one replays and compares everything else. It
    reads the live side in the very snapshot this process holds (`pg_export_snapshot`), so both
    halves compare one moment of the read model."""

    def __init__(self, app: Application[Any], snapshot: str, position: int, path: Path) -> None:
        context = multiprocessing.get_context("fork")
        self.path, self.results = path, context.SimpleQueue()
        self.process = context.Process(target=_replay_apart, name="replay-apart", daemon=True,
                                       args=(type(app), dict(app.env), snapshot, position, str(path), self.results))
        self.process.start()

    @staticmethod
    def possible(app: Application[Any], live: ReadStore, position: int) -> bool:
        return live.postgres and position >= REPLAY_APART_FROM and _apart_possible(app)

    def tables(self) -> list[TableDifferences]:
        """Its comparisons, once it has done them; its failure, raised here."""
        while self.results.empty():
            self.process.join(APART_WAIT_S)
            if not self.process.is_alive() and self.results.empty():
                raise RuntimeError(f"the process replaying the chain and the tree stopped ({self.process.exitcode})")
        outcome, found = self.results.get()
        self.process.join()
        if outcome != "ok":
            raise RuntimeError(f"the chain and the tree could not be replayed: {found}")
        tables: list[TableDifferences] = found
        return tables

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()


def _replay_apart(app_class: type[Application[Any]], env: dict[str, str], snapshot: str, position: int, path: str,
                  results: Any) -> None:
    app = app_class(env=env)
    try:
        projections: list[Projection] = [kind() for kind in APART]
        with _scratch_store(Path(path)) as scratch:
            _replay(app, scratch, projections, position)
            with _snapshot(read_store_for(app), exported=snapshot) as live_cursor, scratch.read() as cursor:  # type: ignore[arg-type]
                tables = _compared(projections, live_cursor, cursor)
        results.put(("ok", tables))
    except Exception as exc:  # noqa: BLE001 — said to the replay, which fails with it
        results.put(("failed", repr(exc)))
    finally:
        app.close()


SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


def _snapshot_id(snapshot: str) -> str:
    """PostgreSQL's name for an exported snapshot, checked: it is spelled into the statement."""
    if not SNAPSHOT_ID.match(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    return snapshot


def _replay(app: Application[Any], scratch: ReadStore, projections: list[Projection], position: int,
            progress: Progress | None = None) -> None:
    projector = Projector(app, scratch, projections)
    projector.create_tables()
    projector.catch_up(until=position, progress=progress)


def _compared(projections: Sequence[Projection], live_cursor: Cursor, cursor: Cursor) -> list[TableDifferences]:
    """Each of the projections' tables, live against replayed."""
    return [compare_ordered(spec, _ordered_rows(live_cursor, spec), _ordered_rows(cursor, spec))
            for spec in table_specs(projections)]


def replay_and_compare(app: Application[Any], live: ReadStore, progress: Progress | None = None) -> ReplayReport:
    """The live side is read in one snapshot, held while the replay runs, then both sides are
    streamed table by table in key order: memory stays bounded however long the history. On a
    long PostgreSQL history the chain and the tree are replayed and compared in another process
    meanwhile (`_ReplayApart`)."""
    every = all_projections()
    here = every
    moment = datetime.now(UTC)  # the reports of both sides as they read at one moment
    with _snapshot(live) as live_cursor, tempfile.TemporaryDirectory(prefix="jindou-replay-") as folder:
        position = _tracked_position(live, live_cursor)
        apart = None
        if _ReplayApart.possible(app, live, position):
            snapshot = live_cursor.one("SELECT pg_export_snapshot() AS id")
            assert snapshot is not None
            apart = _ReplayApart(app, str(snapshot["id"]), position, Path(folder) / "apart.db")
            here = [projection for projection in every if not isinstance(projection, APART)]
        try:
            with _scratch_store(Path(folder) / "replay.db") as scratch:
                _replay(app, scratch, here, position, progress)
                with _read_beside(scratch, None if apart is None else apart.path) as cursor:
                    tables = _compared(here, live_cursor, cursor)
                    if apart is not None:  # in the projections' order, as if all were replayed here
                        order = [spec.name for spec in table_specs(every)]
                        tables = sorted([*apart.tables(), *tables], key=lambda table: order.index(table.table))
                    tables += [compare_reports(fund_reports(live_cursor, moment), fund_reports(cursor, moment)),
                               _ledger_invariants(live_cursor, "live"), _ledger_invariants(cursor, "replay"),
                               _guarded_balances(app, cursor)]
                    events_replayed = int(cursor.one("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_chain")["n"])  # type: ignore[index]
        finally:
            if apart is not None:
                apart.stop()
    return ReplayReport(position=position, events_replayed=events_replayed, tables=tables)


# ---------------------------------------------------------------------------------------------
# The two commands (api/cli.py parses; these print and answer the exit code).


EVENT_TABLES = {"eventsourcing.sqlite": "stored_events", POSTGRES_PERSISTENCE: "jindou_events"}


def missing_store(settings: Settings) -> str | None:
    """Why there is nothing to audit, if so: an audit must never create the store it checks
    (a mistyped path would otherwise print "OK: 0 events")."""
    try:
        env = persistence_env(settings.database_url)
    except SettingsError as problem:
        return str(problem)
    module = env["PERSISTENCE_MODULE"]
    if module not in EVENT_TABLES:
        return "memory:// keeps no events between processes: there is nothing to audit"
    table = EVENT_TABLES[module]
    if module == "eventsourcing.sqlite":
        path = Path(env["SQLITE_DBNAME"])
        if not path.is_file():
            return f"no SQLite database at {path}"
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        return None if found else f"{path} holds no Jindou events (no table {table})"
    import psycopg

    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], connect_timeout=10,
        ) as connection:
            schema = env["POSTGRES_SCHEMA"] or "public"
            row = connection.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()
    except psycopg.Error as problem:
        return f"cannot open PostgreSQL database {env['POSTGRES_DBNAME']!r}: {str(problem).strip()}"
    return None if row and row[0] else f"PostgreSQL database {env['POSTGRES_DBNAME']!r} holds no Jindou events (no table {table})"


def _refuse_missing(settings: Settings, command: str, err: TextIO) -> bool:
    problem = missing_store(settings)
    if problem is not None:
        err.write(f"jindou audit {command}: {problem}; nothing was checked and nothing was created\n")
    return problem is not None


def _open(settings: Settings) -> Services:
    # No admin bootstrap and no catch-up: an audit reads the store exactly as it finds it.
    # No statement timeout either: a replay reads whole tables of a large history.
    return build_services(replace(settings, admin_token=None, statement_timeout_ms=0), catch_up=False)


NO_PUBLISHED_HEAD_WARNING = (
    "WARNING: no published head was given (--published FILE): this shows only that the stored events "
    "match the stored chain. Someone who edits an event AND recomputes the chain passes this; check "
    "against the last published fund report (or a saved GET /v1/audit/chain) to rule that out.\n"
)


class PublishedFileError(ValueError):
    pass


def read_published(path: str) -> PublishedHead:
    """A saved fund report (`chain_head` and `tree_head`), GET /v1/audit/chain answer (`head`), with
    `events_count`, or a saved signed tree head (`tree_size`, `root_hash`, ...)."""
    try:
        with open(path, encoding="utf-8") as file:
            kept = json.load(file)
        tree_head = kept_head(kept)
        if "root_hash" in kept:  # a tree head alone
            return PublishedHead(path, None, None, _checked_tree_head(path, tree_head))
        head = kept.get("chain_head", kept.get("head"))
        count = kept["events_count"]
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise PublishedFileError(f"{path}: not a fund report, audit chain or tree head JSON ({exc})") from exc
    if not (isinstance(head, str) and re.fullmatch(r"[0-9a-f]{64}", head) and type(count) is int and count >= 0):
        raise PublishedFileError(f"{path}: needs a 64-hex-digit chain_head (or head) and a whole events_count")
    return PublishedHead(path, count, head, _checked_tree_head(path, tree_head) if "tree_head" in kept else None)


def _checked_tree_head(path: str, tree_head: Any) -> dict[str, Any]:
    if not (isinstance(tree_head, dict) and type(tree_head.get("tree_size")) is int and tree_head["tree_size"] >= 0
            and isinstance(tree_head.get("root_hash"), str) and re.fullmatch(r"[0-9a-f]{64}", tree_head["root_hash"])):
        raise PublishedFileError(f"{path}: its tree head needs a whole tree_size and a 64-hex-digit root_hash")
    return tree_head


def signature_problems(settings: Settings, published: Sequence[PublishedHead]) -> list[str]:
    """Every published tree head must be signed by a key this deployment signs or signed with."""
    heads = [kept for kept in published if kept.tree_head is not None]
    if not heads:
        return []
    try:
        keys = known_public_keys(settings)
    except SigningKeyError as exc:
        return [str(exc)]
    return [f"{kept.source}: tree head refused: {problem}" for kept in heads
            if (problem := head_problem(kept.tree_head, keys))]  # type: ignore[arg-type]


def run_verify(settings: Settings, out: TextIO, err: TextIO, published_files: Sequence[str] = (), *,
               walk: bool = False) -> int:
    try:
        published = [read_published(path) for path in published_files]
    except PublishedFileError as exc:
        err.write(f"jindou audit verify: {exc}\n")
        return 2
    if _refuse_missing(settings, "verify", err):
        return 2
    services = _open(settings)
    try:
        bar = ProgressBar(err, "verify")
        report = verify_chain(services.app, services.store, bar, published, walk=walk)
        bar.finish()
        problems = signature_problems(settings, published)
        if report.finding is None:
            problems += published_tree_findings(services.store, published)
    finally:
        services.close()
    if report.finding is not None:
        out.write(f"FAILED at position {report.finding.position}: {report.finding.problem}\n"
                  f"({report.events_checked} events before it verified)\n")
        return 1
    if problems:
        out.writelines(f"FAILED {problem}\n" for problem in problems)
        return 1
    out.write(f"OK: {report.events_checked} events verified, chain head {report.head} "
              f"(through position {report.chained_through})\n")
    if published:
        out.write(f"OK: {len(published)} published head(s) match the stored events\n")
    else:
        for stream in (out, err):
            stream.write(NO_PUBLISHED_HEAD_WARNING)
    out.writelines(f"note: {note}\n" for note in report.notes)
    if report.store_head > report.chained_through:
        out.write(f"note: events after position {report.chained_through} (up to {report.store_head}) are not "
                  "chained yet; the service chains them when it next catches up\n")
    return 0


def run_replay(settings: Settings, out: TextIO, err: TextIO) -> int:
    if _refuse_missing(settings, "replay", err):
        return 2
    services = _open(settings)
    bar = ProgressBar(err, "replay")
    try:
        report = replay_and_compare(services.app, services.store, bar)
    except (InterfaceError, InternalError, OperationalError, psycopg.InterfaceError, psycopg.OperationalError) as exc:
        bar.finish()
        out.write(f"FAILED: the database ended the replay ({exc!r}); nothing was compared, run it again\n")
        return 1
    except Exception as exc:  # noqa: BLE001 — an event that cannot be applied any more is the finding
        bar.finish()
        out.write(f"FAILED: replay stopped on an event it could not apply ({exc!r}); run `jindou audit verify`\n")
        return 1
    finally:
        services.close()
    bar.finish()
    for table in report.tables:
        if table.count:
            out.write(f"{table.table}: {table.count} difference(s)\n")
            out.writelines(f"  {line}\n" for line in table.shown)
            if table.count > len(table.shown):
                out.write(f"  … and {table.count - len(table.shown)} more\n")
    if not report.ok:
        out.write(f"FAILED: the live read model differs from a replay of events 1..{report.position}\n")
        return 1
    out.write(f"OK: replayed {report.events_replayed} events through position {report.position}; "
              f"all {len(report.tables)} tables and checks equal the live ones\n")
    return 0
