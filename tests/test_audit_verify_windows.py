"""`jindou audit verify` reads the store a window of events at a time and rebuilds each snapshotted
aggregate once: what it finds must not depend on where a window ends or how many snapshots there are."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from infra import audit
from infra.audit import verify_chain
from infra.settings import Settings
from infra.wiring import Services, build_services
from projections.chain import chain_summary
from tests.audit_history import RawDatabase, make_history
from tests.conftest import ADMIN_TOKEN
from tests.test_audit_cli import STORED, make_history_volunteer

SMALL_WINDOW = 5  # events per window: a short history then spans several


@pytest.fixture
def history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    make_history(services, seed=9, steps=12)
    monkeypatch.setattr(audit, "VERIFY_BATCH_SIZE", SMALL_WINDOW)
    try:
        yield services
    finally:
        services.close()


def leaf_position(raw: RawDatabase, leaf_index: int) -> int:
    return int(raw.execute("SELECT position FROM transparency_leaves WHERE leaf_index = ?", (leaf_index,))[0]["position"])


@STORED
def test_an_honest_store_verifies_across_many_windows(history: Services) -> None:
    report = verify_chain(history.app, history.store)
    with history.store.read() as cursor:
        events_count, head = chain_summary(cursor)
    assert report.ok, report.finding
    assert events_count > 3 * SMALL_WINDOW
    assert (report.events_checked, report.head) == (events_count, head)


@STORED
def test_a_tree_node_altered_in_a_later_window_is_named_at_its_event(history: Services) -> None:
    raw = RawDatabase(history)
    leaf_index = 2 * SMALL_WINDOW + 2
    raw.execute("UPDATE transparency_nodes SET hash = ? WHERE level = 0 AND node_index = ?", ("ab" * 32, leaf_index))
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == leaf_position(raw, leaf_index)
    assert "the stored transparency tree is not the tree of the stored events" in finding.problem


@STORED
def test_a_leaf_altered_in_a_later_window_is_named_at_its_event(history: Services) -> None:
    raw = RawDatabase(history)
    leaf_index = 3 * SMALL_WINDOW + 1
    position = leaf_position(raw, leaf_index)
    raw.execute("UPDATE transparency_leaves SET position = ? WHERE leaf_index = ?", (10**9, leaf_index))
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == position
    assert "the stored transparency tree is not the tree of the stored events" in finding.problem


@STORED
def test_an_event_edited_or_removed_at_a_window_edge_is_named(history: Services) -> None:
    raw = RawDatabase(history)
    donations = raw.positions_of("Donation.Made")
    edited = next(p for p in donations if p > SMALL_WINDOW)
    raw.edit_state(edited, amount=1000)
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == edited and finding.problem.startswith("hash mismatch")

    positions = [int(r["position"]) for r in raw.execute("SELECT position FROM audit_chain ORDER BY position")]
    edge = positions[2 * SMALL_WINDOW - 1]  # the last event of the second window
    if edge == edited:
        edge = positions[SMALL_WINDOW - 1]  # the first window's last, then
    raw.delete_event(edge)
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == min(edge, edited)


def snapshot_rows(history: Services) -> tuple[str, list[dict[str, Any]]]:
    table = history.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
    rows = RawDatabase(history).execute(f"SELECT originator_version, state FROM {table} ORDER BY originator_version")
    return table, rows


def alter_earlier_snapshot(history: Services) -> RawDatabase:
    """The earlier of the two snapshots altered (its status), the later one left true."""
    table, rows = snapshot_rows(history)
    earlier = json.loads(bytes(rows[0]["state"]))
    earlier["state"]["status"] = "frozen"
    raw = RawDatabase(history)
    raw.execute(f"UPDATE {table} SET state = ? WHERE originator_version = 2", (json.dumps(earlier).encode(),))
    return raw


def altered_snapshot(volunteer: UUID) -> str:
    return f"the snapshot of {volunteer} at version 2 differs from its events in status: snapshot altered"


def snapshotted_twice(history: Services, monkeypatch: pytest.MonkeyPatch) -> tuple[UUID, int, list[int]]:
    """A volunteer snapshotted at version 2 and at its latest: (its id, its latest version, the
    versions of its events this process decodes from now on, as they are decoded)."""
    volunteer = UUID(make_history_volunteer(history))
    latest = history.app.repository.get(volunteer).version
    assert latest >= 3
    history.app.take_snapshot(volunteer, version=2)
    history.app.take_snapshot(volunteer)
    decoded: list[int] = []
    to_domain_event = history.app.mapper.to_domain_event

    def counted(stored: Any) -> Any:
        if stored.originator_id in (volunteer, str(volunteer)) and "Snapshot" not in stored.topic:
            decoded.append(stored.originator_version)
        return to_domain_event(stored)

    monkeypatch.setattr(history.app.mapper, "to_domain_event", counted)
    return volunteer, latest, decoded


@STORED
def test_every_snapshot_of_an_aggregate_is_checked_from_one_rebuild(history: Services, monkeypatch) -> None:
    volunteer, latest, decoded = snapshotted_twice(history, monkeypatch)
    assert verify_chain(history.app, history.store).ok
    assert decoded == list(range(1, latest + 1))  # each of its events once, not once per snapshot

    table, rows = snapshot_rows(history)
    assert [row["originator_version"] for row in rows] == [2, latest]
    raw = alter_earlier_snapshot(history)
    position = raw.execute(
        f"SELECT {raw.position_column} AS position FROM {raw.events_table} WHERE originator_version = 2"
        " AND originator_id = (SELECT originator_id FROM " + table + " WHERE originator_version = 2)",
    )[0]["position"]
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == position
    assert finding.problem == altered_snapshot(volunteer)


@pytest.mark.backends("postgres")
def test_on_postgresql_a_short_log_s_snapshots_are_rebuilt_beside_the_database_s_check(
        history: Services, monkeypatch) -> None:
    """While the database checks the log (verify's threads only wait on it), a thread of this
    process rebuilds the snapshotted aggregates: each event decoded once, there and not in the
    thread that verifies; an altered snapshot is still named; and no thread outlives verify,
    also when verify stops at the first event."""
    volunteer, latest, decoded = snapshotted_twice(history, monkeypatch)
    threads: set[str] = set()
    to_domain_event = history.app.mapper.to_domain_event

    def noted(stored: Any) -> Any:
        if "Snapshot" not in stored.topic:  # the snapshots themselves are read by verify's own thread
            threads.add(threading.current_thread().name)
        return to_domain_event(stored)

    monkeypatch.setattr(history.app.mapper, "to_domain_event", noted)
    assert verify_chain(history.app, history.store).ok
    assert decoded == list(range(1, latest + 1)) and threads == {"verify-snapshots"}

    raw = alter_earlier_snapshot(history)
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.problem == altered_snapshot(volunteer)

    raw.execute("UPDATE audit_chain SET hash = ? WHERE position = 1", ("ab" * 32,))
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == 1
    assert [t.name for t in threading.enumerate() if t.name == "verify-snapshots"] == []


@STORED
def test_on_a_long_log_snapshots_are_checked_in_another_process(history: Services, monkeypatch) -> None:
    """Past SNAPSHOTS_APART_FROM events the rebuilding is done by a forked process with its own
    connections: this one decodes none of the aggregate's events, yet an altered snapshot is found
    where it was found before, and the other process never outlives verify."""
    monkeypatch.setattr(audit, "SNAPSHOTS_APART_FROM", 0)
    volunteer, latest, decoded = snapshotted_twice(history, monkeypatch)
    assert verify_chain(history.app, history.store).ok
    assert decoded == [] and latest >= 3  # rebuilt elsewhere

    raw = alter_earlier_snapshot(history)
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.problem == altered_snapshot(volunteer)
    assert decoded == []
    assert multiprocessing.active_children() == []

    raw.execute("UPDATE audit_chain SET hash = ? WHERE position = 1", ("ab" * 32,))  # verify stops at event 1
    finding = verify_chain(history.app, history.store).finding
    assert finding is not None and finding.position == 1
    assert multiprocessing.active_children() == []
