"""On PostgreSQL `jindou audit verify` lets the database check the chain and the tree
(infra/verify_in_database.py) and walks the log only to name what it found amiss. The tamper tests
elsewhere show that verify still names every problem; these show that the database's check alone
vouches for an honest log (no walk), and vouches for none of the altered ones."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest
from eventsourcing.persistence import Notification

from infra import audit, verify_in_database
from infra.audit import verify_chain
from infra.settings import Settings
from infra.wiring import Services, build_services
from projections.chain import chain_summary, link
from tests.audit_history import RawDatabase, make_history
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.backends("postgres")


@pytest.fixture
def history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    make_history(services, seed=11, steps=14)
    monkeypatch.setattr(verify_in_database, "RANGE", 7)  # a short log spans many ranges, checked at once
    try:
        yield services
    finally:
        services.close()


def vouched(services: Services) -> verify_in_database.Vouched | None:
    recorder = services.app.recorder
    table = verify_in_database.table_of(recorder)  # type: ignore[arg-type]
    return verify_in_database.vouched_for(services.store, table, recorder.max_notification_id())


def test_an_honest_log_is_vouched_for_without_a_walk(history: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    with history.store.read() as cursor:
        events_count, head = chain_summary(cursor)
    assert events_count > 5 * verify_in_database.RANGE
    assert vouched(history) == verify_in_database.Vouched(events_count, head)

    walked: list[int] = []
    event_windows = audit._event_windows

    def counted(app: object, through: int) -> Iterator[object]:
        walked.append(through)
        return event_windows(app, through)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "_event_windows", counted)
    report = verify_chain(history.app, history.store)
    assert report.ok and (report.events_checked, report.head) == (events_count, head)
    assert walked == [0]  # the walk was asked for no event

    walked.clear()
    report = verify_chain(history.app, history.store, walk=True)  # `jindou audit verify --walk`
    assert report.ok and (report.events_checked, report.head) == (events_count, head)
    assert walked == [history.app.recorder.max_notification_id()]


def _edit_state(raw: RawDatabase) -> None:
    raw.edit_state(raw.positions_of("Donation.Made")[0], amount=1_000)


def _chain_from_a_false_start(raw: RawDatabase) -> None:
    """A row put before the first event, and every link recomputed from it: each row then holds
    against the one before it, but the chain no longer starts from the genesis hash."""
    prev = bytes.fromhex("ab" * 32)
    raw.execute("INSERT INTO audit_chain VALUES (0, 'x', 0, 'x', ?)", (prev.hex(),))
    for row in raw.execute(f"SELECT * FROM {raw.events_table} ORDER BY notification_id"):
        event = Notification(id=row["notification_id"], originator_id=row["originator_id"], topic=row["topic"],
                             originator_version=row["originator_version"], state=bytes(row["state"]))
        prev = link(prev, event)
        raw.execute("UPDATE audit_chain SET hash = ? WHERE position = ?", (prev.hex(), event.id))


def _unpaired_node_replaced_below_index_zero(raw: RawDatabase) -> None:
    """The last node of a level with an odd number of nodes has no parent to vouch for it: gone,
    and a made-up node of level 1 made of its two children in its place, at an index no tree has
    (below 0; the leaves' level is checked only where the tree's leaves are)."""
    size = raw.execute("SELECT COUNT(*) AS n FROM transparency_leaves")[0]["n"]
    level = next(level for level in range(1, size.bit_length()) if (size >> level) % 2)
    raw.execute("DELETE FROM transparency_nodes WHERE level = ? AND node_index = ?", (level, (size >> level) - 1))
    left, right = hashlib.sha256(b"left").digest(), hashlib.sha256(b"right").digest()
    for index, child in ((-2, left), (-1, right)):
        raw.execute("INSERT INTO transparency_nodes VALUES (0, ?, ?)", (index, child.hex()))
    raw.execute("INSERT INTO transparency_nodes VALUES (1, -1, ?)", (hashlib.sha256(b"\x01" + left + right).hexdigest(),))


def _unpaired_node_replaced_past_the_last_level(raw: RawDatabase) -> None:
    """As above, but the made-up node sits 64 levels above the one it replaces: PostgreSQL shifts
    a bigint by its count modulo 64, so `size >> level` bounds it as if it were that level."""
    size = raw.execute("SELECT COUNT(*) AS n FROM transparency_leaves")[0]["n"]
    level = next(level for level in range(2, size.bit_length()) if (size >> level) % 2)
    last = (size >> level) - 1
    raw.execute("DELETE FROM transparency_nodes WHERE level = ? AND node_index = ?", (level, last))
    left, right = hashlib.sha256(b"left").digest(), hashlib.sha256(b"right").digest()
    for index, child in ((2 * last, left), (2 * last + 1, right)):
        raw.execute("INSERT INTO transparency_nodes VALUES (?, ?, ?)", (63 + level, index, child.hex()))
    raw.execute("INSERT INTO transparency_nodes VALUES (?, ?, ?)",
                (64 + level, last, hashlib.sha256(b"\x01" + left + right).hexdigest()))


TAMPERS: dict[str, Callable[[RawDatabase], object]] = {
    "the chain from a false start": _chain_from_a_false_start,
    "an event's state": _edit_state,
    "an event removed": lambda raw: raw.delete_event(20),
    "a link": lambda raw: raw.execute("UPDATE audit_chain SET hash = ? WHERE position = 30", ("ab" * 32,)),
    "a link that is not hex": lambda raw: raw.execute("UPDATE audit_chain SET hash = 'zz' WHERE position = 30"),
    "a chain row removed": lambda raw: raw.execute("DELETE FROM audit_chain WHERE position = 30"),
    "a leaf": lambda raw: raw.execute("UPDATE transparency_leaves SET position = position + 100000 WHERE leaf_index = 9"),
    "a leaf node": lambda raw: raw.execute("UPDATE transparency_nodes SET hash = ? WHERE level = 0 AND node_index = 9",
                                           ("ab" * 32,)),
    "a node above": lambda raw: raw.execute("UPDATE transparency_nodes SET hash = ? WHERE level = 2 AND node_index = 1",
                                            ("ab" * 32,)),
    "a node removed": lambda raw: raw.execute("DELETE FROM transparency_nodes WHERE level = 3 AND node_index = 0"),
    # without its key a table can hold a node twice in place of another: (2, 4) twice and (2, 1)
    # gone leave as many rows, and as many parents made of their children ((3, 2) counted twice)
    "a node twice in place of another": lambda raw: raw.execute(
        "ALTER TABLE transparency_nodes DROP CONSTRAINT transparency_nodes_pkey;"
        " INSERT INTO transparency_nodes SELECT * FROM transparency_nodes WHERE level = 2 AND node_index = 4;"
        " DELETE FROM transparency_nodes WHERE level = 2 AND node_index = 1"),
    "a node without a parent replaced by one below index 0": _unpaired_node_replaced_below_index_zero,
    "a node without a parent replaced by one past the last level": _unpaired_node_replaced_past_the_last_level,
    "a chain row twice in place of another": lambda raw: raw.execute(
        "ALTER TABLE audit_chain DROP CONSTRAINT audit_chain_pkey;"
        " INSERT INTO audit_chain SELECT * FROM audit_chain WHERE position = 30;"
        " DELETE FROM audit_chain WHERE position = 31"),
}


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_an_altered_log_is_not_vouched_for_and_the_walk_names_it(history: Services, tamper: str) -> None:
    TAMPERS[tamper](RawDatabase(history))
    assert vouched(history) is None
    assert verify_chain(history.app, history.store).finding is not None
