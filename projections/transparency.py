"""The transparency log: every recorded event a leaf of one RFC 9162 Merkle tree, in log order.

    leaf = SHA-256(0x00 || canonical_bytes(event))      (the chain's bytes, `jindou-chain-v1`)
    node = SHA-256(0x01 || left || right)

The tree is stored as CT logs keep it: the hash of every *perfect* subtree, keyed by (level,
index) — node (k, i) covers leaves [i·2^k, (i+1)·2^k). Any tree size n is a left-to-right run of
perfect subtrees (the bits of n), so the root at any size, an inclusion proof and a consistency
proof each read O(log n) nodes, in one query. Appending a leaf completes on average one more
node; the projection computes them in memory per batch and inserts them together at its end.
See docs/decisions/0013-transparency-log.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from projections.projector import Projector, Recorded
from projections.store import Cursor
from tools.verify_jindou import EMPTY_ROOT_HEX, leaf_hash, node_hash

BACKFILL_BATCH_SIZE = 1_000  # events per transaction when growing the tree over an older read model
NODES_PER_QUERY_MAX = 200  # a proof over 2^63 leaves needs fewer; keeps the OR list bounded

Range = tuple[int, int]  # [start, end) of leaves, always an RFC 9162 subtree (aligned)
Node = tuple[int, int]  # (level, index) of a perfect subtree


def split_point(size: int) -> int:
    """The largest power of two smaller than `size` (RFC 9162's k), size ≥ 2."""
    assert size >= 2
    return 1 << ((size - 1).bit_length() - 1)


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees that make up the subtree [start, end), left to right."""
    nodes, position = [], start
    for level in reversed(range((end - start).bit_length())):
        if (end - start) >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def inclusion_ranges(index: int, start: int, end: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index, D[start:end]), leaf side first (RFC 9162 2.1.3.1)."""
    ranges: list[Range] = []
    while end - start > 1:
        middle = start + split_point(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees whose hashes form PROOF(first, D[0:second]), 0 < first ≤ second (RFC 9162 2.1.4.1)."""
    assert 0 < first <= second
    ranges: list[Range] = []
    start, end, whole = 0, second, True  # `whole`: the subproof's m is the first tree's size itself
    while first != end:
        middle = start + split_point(end - start)
        if first - start <= middle - start:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start, whole = middle, False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def root_of(nodes: Sequence[bytes]) -> bytes:
    """Fold a left-to-right run of perfect subtrees into the hash of the tree they make up."""
    hashed = nodes[-1]
    for left in reversed(nodes[:-1]):
        hashed = node_hash(left, hashed)
    return hashed


@dataclass
class Frontier:
    """The right edge of a growing tree: one perfect subtree per bit of its size, left to right.
    Appending a leaf merges equal subtrees; each merge is a new perfect node to store."""

    size: int = 0
    nodes: list[tuple[int, bytes]] = field(default_factory=list)  # (level, hash)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf; return the (level, index, hash) of every node it completes, the leaf first."""
        completed = [(0, self.size, leaf)]
        level, hashed = 0, leaf
        while self.nodes and self.nodes[-1][0] == level:
            hashed = node_hash(self.nodes.pop()[1], hashed)
            level += 1
            completed.append((level, self.size >> level, hashed))
        self.nodes.append((level, hashed))
        self.size += 1
        return completed

    def extend(self, leaves: Sequence[bytes]) -> list[tuple[int, list[bytes]]]:
        """Add many leaves at once, a level at a time: the nodes `append` would complete one leaf
        at a time, as (index of the first, their hashes) per level, the leaves first (level 0).
        Each level pairs its run, after the subtree left waiting at that level if there is one."""
        waiting = dict(self.nodes)  # level → the perfect subtree waiting there for its right sibling
        made: list[tuple[int, list[bytes]]] = []
        level, run, first = 0, list(leaves), self.size
        while run:
            made.append((first, run))
            if level in waiting:
                run, first = [waiting.pop(level), *run], first - 1
            if len(run) % 2:
                waiting[level] = run[-1]
            run, first, level = [node_hash(run[i], run[i + 1]) for i in range(0, len(run) - 1, 2)], first // 2, level + 1
        self.size += len(leaves)
        self.nodes = sorted(waiting.items(), reverse=True)  # left to right: the highest level first
        return made

    def root_hex(self) -> str:
        return EMPTY_ROOT_HEX if not self.nodes else root_of([h for _, h in self.nodes]).hex()


TREE_EDGE = "transparency_frontier"  # what a batch hands on to the next (projections/store.py `Carried`)


class TransparencyProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS transparency_leaves ("
        " leaf_index BIGINT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, recorded_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS transparency_nodes ("
        " level INTEGER NOT NULL, node_index BIGINT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (level, node_index))",
    )

    def __init__(self) -> None:
        # This transaction's growing tree and the rows it has not written yet. A batch is one
        # transaction; a new cursor means a new batch, whose tree is read back from the tables
        # (so a batch rolled back after losing a race leaves nothing behind here either).
        self._cursor: Cursor | None = None
        self._frontier = Frontier()
        self._leaves: list[tuple[int, int, str]] = []
        self._nodes: list[tuple[int, int, str]] = []

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        if self._cursor is not cursor:
            handed: Frontier | None = cursor.handed_on(TREE_EDGE)  # the last batch's tree
            self._cursor, self._frontier = cursor, handed if handed is not None else load_frontier(cursor)
            self._leaves, self._nodes = [], []
        leaf_index = self._frontier.size
        completed = self._frontier.append(leaf_hash(recorded.canonical))
        self._leaves.append((leaf_index, recorded.position, recorded.occurred_at))
        self._nodes.extend((level, index, hashed.hex()) for level, index, hashed in completed)

    def finish_batch(self, cursor: Cursor) -> None:
        assert self._cursor is cursor
        cursor.executemany("INSERT INTO transparency_leaves VALUES (?, ?, ?)", self._leaves)
        cursor.executemany("INSERT INTO transparency_nodes VALUES (?, ?, ?)", self._nodes)
        self._leaves, self._nodes = [], []
        cursor.hand_on(TREE_EDGE, self._frontier)


def backfill(projector: Projector) -> None:
    """A read model projected before the transparency log existed has every event tracked but no
    tree, and the projector only applies what comes after its position: grow the tree over the
    tracked events first, a batch per transaction (each re-reads where the tree ends, so processes
    starting together take turns). On every later start it finds the tree complete at once."""
    projection, target = TransparencyProjection(), projector.position
    while True:
        with projector.store.transaction(commit=True) as cursor:
            row = cursor.one("SELECT MAX(position) AS last FROM transparency_leaves")
            last = 0 if row is None or row["last"] is None else int(row["last"])
            if last >= target:
                return
            notifications = projector.app.recorder.select_notifications(
                start=last, limit=BACKFILL_BATCH_SIZE, stop=target, inclusive_of_start=False
            )
            if not notifications:  # tracked events no longer stored: for `jindou audit verify` to name
                return
            for notification in notifications:
                event = projector.app.mapper.to_domain_event(notification)
                projection.apply(cursor, Recorded(notification.id, notification, event))
            projection.finish_batch(cursor)


# ---------------------------------------------------------------------------------------------
# Reading: sizes, roots and proofs.


def tree_size(cursor: Cursor) -> int:
    row = cursor.one("SELECT MAX(leaf_index) AS last FROM transparency_leaves")
    return 0 if row is None or row["last"] is None else int(row["last"]) + 1


def node_hashes(cursor: Cursor, nodes: Iterable[Node]) -> dict[Node, bytes]:
    wanted = sorted(set(nodes))
    found: dict[Node, bytes] = {}
    for offset in range(0, len(wanted), NODES_PER_QUERY_MAX):
        chunk = wanted[offset:offset + NODES_PER_QUERY_MAX]
        condition = " OR ".join(["(level = ? AND node_index = ?)"] * len(chunk))
        params = [value for node in chunk for value in node]
        for row in cursor.all(f"SELECT level, node_index, hash FROM transparency_nodes WHERE {condition}", params):  # noqa: S608 (placeholders only)
            found[(int(row["level"]), int(row["node_index"]))] = bytes.fromhex(str(row["hash"]))
    missing = [node for node in wanted if node not in found]
    if missing:
        raise LookupError(f"the transparency tree lacks nodes {missing[:5]}: it is behind or was altered")
    return found


def range_hashes(cursor: Cursor, ranges: Sequence[Range]) -> list[bytes]:
    """The hash of each subtree, reading every perfect node they need at once."""
    parts = [perfect_nodes(start, end) for start, end in ranges]
    found = node_hashes(cursor, (node for nodes in parts for node in nodes))
    return [root_of([found[node] for node in nodes]) for nodes in parts]


def load_frontier(cursor: Cursor) -> Frontier:
    size = tree_size(cursor)
    nodes = perfect_nodes(0, size)
    found = node_hashes(cursor, nodes)
    return Frontier(size, [(level, found[(level, index)]) for level, index in nodes])


def root_hash(cursor: Cursor, size: int) -> str:
    return EMPTY_ROOT_HEX if size == 0 else range_hashes(cursor, [(0, size)])[0].hex()


def inclusion_proof(cursor: Cursor, leaf_index: int, size: int) -> list[str]:
    assert 0 <= leaf_index < size
    return [h.hex() for h in range_hashes(cursor, inclusion_ranges(leaf_index, 0, size))]


def consistency_proof(cursor: Cursor, first: int, second: int) -> list[str]:
    return [h.hex() for h in range_hashes(cursor, consistency_ranges(first, second))]


@dataclass(frozen=True)
class Leaf:
    index: int
    position: int
    recorded_at: str  # when the event was recorded (RFC 3339, UTC)


def leaf_at_position(cursor: Cursor, position: int) -> Leaf | None:
    row = cursor.one("SELECT * FROM transparency_leaves WHERE position = ?", (position,))
    return None if row is None else Leaf(int(row["leaf_index"]), int(row["position"]), str(row["recorded_at"]))


def leaf_at_index(cursor: Cursor, index: int) -> Leaf | None:
    row = cursor.one("SELECT * FROM transparency_leaves WHERE leaf_index = ?", (index,))
    return None if row is None else Leaf(int(row["leaf_index"]), int(row["position"]), str(row["recorded_at"]))
