"""`jindou audit verify` on PostgreSQL: the database checks every link, leaf and node itself.

The chain is valid when each stored link is the SHA-256 of the stored link before it and its
event's canonical bytes, and the first follows the genesis hash: by induction, then, every link is
the one a walk from event 1 would compute. That is a property of each row and its predecessor, so
PostgreSQL can check all rows at once, set-based, with its own `sha256()` (PostgreSQL 11+), and
the tree the same way: each leaf is the event it should be, each node of level 0 the leaf hash of
its event, each node above the hash of its two children. Nothing is read into Python per event.

This answers only "all is well". On any difference (or a row that does not even decode) it
answers None, and the walk in infra/audit.py, which reads and recomputes everything, finds the
first problem and names it, as it always has. See docs/decisions/0021-verify-in-the-database.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresAggregateRecorder

from projections import transparency
from projections.chain import GENESIS_HEX, VERSION_FIELD
from projections.store import Cursor, ReadStore

RANGE = 10_000  # log positions per statement at most: a step of progress, and what a core checks at a time
RANGES_PER_WORKER = 2  # a shorter log is cut finer, so that every core checks some of it
WORK_MEM = "32MB"  # for the sorts of a range (no statistics on a new log: the planner sorts what it reads)

# The canonical bytes of projections/chain.py (version 1), spelled in SQL: each field is its length
# (4 bytes, big-endian), then its bytes; the position and the version are 8 bytes, big-endian.
CANONICAL = (
    "?::bytea || int8send(e.notification_id) || int4send(octet_length(f.aggregate)) || f.aggregate"
    " || int8send(e.originator_version::bigint) || int4send(octet_length(f.topic)) || f.topic"
    " || int4send(octet_length(e.state)) || e.state"
)


def table_of(recorder: PostgresAggregateRecorder) -> str:
    """A recorder's table of events (or snapshots), named with its schema, for these statements."""
    return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'


@dataclass(frozen=True)
class Vouched:
    """What the database found true of the log up to `through`."""

    events: int  # events, each paired with its chain link, its leaf and its node
    head: str  # the last link, hex


def _range_statement(events_table: str) -> str:
    """One range of the log in one pass: each event joined to its chain row, its leaf and its node
    of level 0 (its canonical bytes made once), counting those that hold. A range starts from the
    stored link and leaf of the last event before it, which the range before vouches for: so the
    ranges can be checked at once, and the log holds if every range does."""
    return f"""
        WITH start AS (
            -- (no event is at a position below 1: the first range starts from the genesis hash,
            -- whatever rows were put there)
            SELECT COALESCE((SELECT hash FROM audit_chain WHERE position > 0 AND position <= ?
                             ORDER BY position DESC LIMIT 1), ?) AS link,
                   COALESCE((SELECT leaf_index + 1 FROM transparency_leaves WHERE position > 0 AND position <= ?
                             ORDER BY position DESC LIMIT 1), 0) AS leaf
        ), ev AS (
            SELECT e.notification_id AS position, row_number() OVER (ORDER BY e.notification_id) - 1 + start.leaf AS k,
                   {CANONICAL} AS canonical
            FROM start, {events_table} e,
                 LATERAL (SELECT convert_to(e.originator_id::text, 'UTF8') AS aggregate,
                                 convert_to(e.topic, 'UTF8') AS topic) f
            WHERE e.notification_id > ? AND e.notification_id <= ?
        ), ch AS (
            SELECT position, hash, lag(hash, 1, start.link) OVER (ORDER BY position) AS prev
            FROM start, audit_chain WHERE position > ? AND position <= ?
        ), lv AS (  -- the range has at most `high - low` events, so its leaves lie in these
            SELECT leaf_index, position FROM start, transparency_leaves
            WHERE leaf_index >= start.leaf AND leaf_index < start.leaf + ?
        ), nd AS (
            SELECT node_index, hash FROM start, transparency_nodes
            WHERE level = 0 AND node_index >= start.leaf AND node_index < start.leaf + ?
        )
        SELECT COUNT(*) AS events,
               COUNT(*) FILTER (WHERE ch.hash = encode(sha256(decode(ch.prev, 'hex') || ev.canonical), 'hex')) AS linked,
               COUNT(*) FILTER (WHERE l.position = ev.position) AS leaves,
               COUNT(*) FILTER (WHERE n.hash = encode(sha256('\\x00'::bytea || ev.canonical), 'hex')) AS leaf_nodes,
               (SELECT COUNT(*) FROM ch) AS links,
               (SELECT hash FROM ch ORDER BY position DESC LIMIT 1) AS last_link
        FROM ev LEFT JOIN ch USING (position)
             LEFT JOIN lv l ON l.leaf_index = ev.k
             LEFT JOIN nd n ON n.node_index = ev.k
        """  # table names from the recorders, values as parameters


# The nodes a tree of n leaves has above them are (level, index) for 1 <= level < 64 and
# 0 <= index < n >> level: as many distinct ones of those as it should have means every one is
# there. Both bounds on each side matter: PostgreSQL shifts a bigint by its count modulo 64 (so a
# row at level 64 + k would pass for one of level k), and an index below 0 passes any upper bound.
# (level, index) is counted as one bigint, index * 64 + level (index < 2^57 for any log under 2^58
# events): distinct records sorted ten times slower (3.3 s against 0.4 s for a million nodes).
NODES_STATEMENT = """
    SELECT (SELECT COUNT(DISTINCT (node_index << 6) | level) FROM transparency_nodes
             WHERE level BETWEEN 1 AND 63 AND node_index >= 0 AND node_index < (?::bigint >> level)) AS nodes,
           (SELECT COUNT(*) FROM transparency_nodes p
              JOIN transparency_nodes l ON l.level = p.level - 1 AND l.node_index = 2 * p.node_index
              JOIN transparency_nodes r ON r.level = p.level - 1 AND r.node_index = 2 * p.node_index + 1
             WHERE p.level BETWEEN 1 AND 63 AND p.node_index >= 0 AND p.node_index < (?::bigint >> p.level)
               AND p.hash = encode(sha256('\\x01'::bytea || decode(l.hash, 'hex') || decode(r.hash, 'hex')), 'hex')
           ) AS linked
    """


def _checked(store: ReadStore, statement: str, params: Sequence[object], *, no_nested_loops: bool = False
             ) -> dict[str, Any] | None:
    """The one row of a checking statement, in a read transaction with room for its sorts; None if
    a stored hash is not even hex (the walk will say where). `no_nested_loops`: for a statement
    joining a whole table to itself, which a planner without statistics (a new or young log)
    would otherwise join row by row against whole levels: 3.3 s against 0.02 s for 7,500 nodes."""
    with store.read() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")  # compiling took a third of a range's first checks
        if no_nested_loops:
            cursor.execute("SET LOCAL enable_nestloop = off")
        try:
            row = cursor.one(statement, params)
        except psycopg.DataError:
            return None
    assert row is not None
    return row


def _range_holds(store: ReadStore, statement: str, low: int, high: int) -> tuple[int, str | None] | None:
    """(events, last link) of the range (low, high] if all of it holds, else None."""
    row = _checked(store, statement, (low, GENESIS_HEX, low, VERSION_FIELD, low, high, low, high, high - low, high - low))
    if row is None:
        return None
    counted = int(row["events"])
    if not counted == row["links"] == row["linked"] == row["leaves"] == row["leaf_nodes"]:
        return None
    return counted, row["last_link"]


def _nodes_hold(store: ReadStore, size: int) -> bool:
    """Every node above the leaves of a tree of `size` leaves: as many per level as it should have,
    and each the hash of its two children (which exist: they are counted at their own level)."""
    row = _checked(store, NODES_STATEMENT, (size, size), no_nested_loops=True)
    return row is not None and sum(size >> level for level in range(1, size.bit_length())) == row["nodes"] == row["linked"]


def vouched_for(
    store: ReadStore, events_table: str, through: int, progress: Callable[[int, int], None] | None = None
) -> Vouched | None:
    """The log up to `through` checked by the database, a range at a time on as many connections
    as there are cores, the tree's upper nodes beside them: each event paired with a chain row at
    its position and no chain row without one, each link right after the one before, the tree's
    leaves and nodes those of the events. None if anything differs anywhere."""
    statement = _range_statement(events_table)
    row = store.one(f"SELECT COUNT(*) AS events FROM {events_table} WHERE notification_id <= ?", (through,))
    size = int(row["events"]) if row is not None else 0
    cores = max(2, os.cpu_count() or 1)
    step = max(1, min(RANGE, -(-through // (RANGES_PER_WORKER * cores))))
    ranges = [(low, min(low + step, through)) for low in range(0, through, step)]
    # A short log's few statements go at once (the threads then only wait); a long log's, a
    # core's worth at a time.
    workers = len(ranges) + 1 if step < RANGE else cores
    with ThreadPoolExecutor(workers, thread_name_prefix="verify-database") as pool:
        nodes = pool.submit(_nodes_hold, store, size)
        checks = [pool.submit(_range_holds, store, statement, low, high) for low, high in ranges]
        events, head = 0, GENESIS_HEX
        for (_, high), check in zip(ranges, checks, strict=True):
            held = check.result()
            if held is None:
                for waiting in checks:
                    waiting.cancel()
                return None
            events, head = events + held[0], held[1] or head
            if progress is not None:
                progress(high, through)
        if events != size or not nodes.result():
            return None
    return Vouched(events, head)


def snapshot_positions(
    cursor: Cursor, events_table: str, snapshots_table: str, through: int
) -> list[tuple[str, int, dict[int, int]]]:
    """(aggregate id, the last position of its events, snapshot version → position of the event at
    that version) of every snapshotted aggregate with events up to `through`: what the walk notes
    for the snapshot check when it passes them."""
    rows = cursor.all(
        f"SELECT e.originator_id::text AS aggregate, MAX(e.notification_id) AS last,"
        f" array_agg(e.originator_version) FILTER (WHERE s.originator_version IS NOT NULL) AS versions,"
        f" array_agg(e.notification_id) FILTER (WHERE s.originator_version IS NOT NULL) AS positions"
        f" FROM {events_table} e LEFT JOIN {snapshots_table} s"
        f"  ON s.originator_id = e.originator_id AND s.originator_version = e.originator_version"
        f" WHERE e.notification_id <= ? AND e.originator_id IN (SELECT originator_id FROM {snapshots_table})"
        f" GROUP BY e.originator_id ORDER BY MIN(e.notification_id)", (through,))
    return [(row["aggregate"], int(row["last"]), dict(zip(row["versions"] or [], row["positions"] or [], strict=True)))
            for row in rows]


def published_heads_hold(cursor: Cursor, chain_heads: Sequence[tuple[int, str]], tree_heads: Sequence[tuple[int, str]]) -> bool:
    """Each (events count, head) published is the stored link at that count, and each (tree size,
    root) the root of the stored tree of that size (both already vouched for)."""
    for count, published in chain_heads:
        row = cursor.one("SELECT hash FROM audit_chain WHERE position > 0 ORDER BY position OFFSET ? LIMIT 1",
                         (count - 1,))
        if row is None or row["hash"] != published:
            return False
    return all(transparency.root_hash(cursor, size) == published for size, published in tree_heads)
