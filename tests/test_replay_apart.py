"""On a long PostgreSQL history `jindou audit replay` replays and compares the chain and the tree in
a forked process, reading the live side in the snapshot the replay holds (infra/audit.py
`_ReplayApart`). Here every history counts as long, and the two halves must together say exactly
what one process says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from api.cli import main
from infra import audit
from infra.audit import replay_and_compare
from infra.wiring import Services
from tests.audit_history import RawDatabase, stored_history
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for

pytestmark = pytest.mark.backends("postgres")


@pytest.fixture
def history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    with stored_history(database_url, monkeypatch, seed=7) as services:
        yield services


@pytest.fixture
def apart(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every replay goes apart; counts the processes started."""
    started: list[int] = []
    start = audit._ReplayApart.__init__

    def counted(self: Any, *args: Any) -> None:
        start(self, *args)
        started.append(self.process.pid)

    monkeypatch.setattr(audit, "REPLAY_APART_FROM", 0)
    monkeypatch.setattr(audit._ReplayApart, "__init__", counted)
    return started


def _summary(report: audit.ReplayReport) -> list[tuple[str, int, list[str]]]:
    return [(table.table, table.count, table.shown) for table in report.tables]


def test_apart_the_replay_says_what_one_process_says(history: Services, apart: list[int], monkeypatch) -> None:
    together = replay_and_compare(history.app, history.store)
    assert len(apart) == 1 and together.ok, _summary(together)
    assert together.events_replayed == history.app.recorder.max_notification_id()

    monkeypatch.setattr(audit, "REPLAY_APART_FROM", 10**12)
    alone = replay_and_compare(history.app, history.store)
    assert len(apart) == 1  # not started this time
    assert _summary(alone) == _summary(together)
    assert (alone.position, alone.events_replayed) == (together.position, together.events_replayed)


ZEROS = "00" * 32


@pytest.mark.parametrize(("edit", "params"), [
    ("UPDATE audit_chain SET hash = ? WHERE position = 3", (ZEROS,)),
    ("UPDATE transparency_nodes SET hash = ? WHERE level = 1 AND node_index = 2", (ZEROS,)),
    ("DELETE FROM transparency_leaves WHERE leaf_index = 5", ()),
    (("UPDATE ledger_balances SET balance = balance + 100 WHERE asset = 'bean' AND account_id ="
      " (SELECT MIN(account_id) FROM ledger_balances WHERE account_id NOT LIKE ?)"), ("%:%",)),
])
def test_apart_an_edited_row_is_named_as_by_one_process(history: Services, apart: list[int], monkeypatch,
                                                        edit: str, params: tuple[str, ...]) -> None:
    RawDatabase(history).execute(edit, params)
    together = replay_and_compare(history.app, history.store)
    monkeypatch.setattr(audit, "REPLAY_APART_FROM", 10**12)
    alone = replay_and_compare(history.app, history.store)
    assert len(apart) == 1 and not together.ok
    assert _summary(together) == _summary(alone)


def test_apart_both_halves_compare_one_moment_of_the_read_model(history: Services, apart: list[int],
                                                                monkeypatch) -> None:
    """What the service records after the replay took its snapshot is in neither half: the forked
    process reads the live side in the snapshot the replay exported."""
    start = audit._ReplayApart.__init__

    def write_then_start(self: Any, *args: Any) -> None:
        with api_for(history, ADMIN_TOKEN) as api:
            api.account(api.community()["id"], "volunteer")
        history.projector.catch_up()
        start(self, *args)

    monkeypatch.setattr(audit._ReplayApart, "__init__", write_then_start)
    position = history.app.recorder.max_notification_id()
    report = replay_and_compare(history.app, history.store)
    assert report.ok, _summary(report)
    assert report.position == position < history.app.recorder.max_notification_id()


def test_apart_an_event_that_cannot_be_applied_fails_the_replay_and_stops_the_other_process(
    history: Services, apart: list[int], capsys
) -> None:
    raw = RawDatabase(history)
    raw.execute(f"UPDATE {raw.events_table} SET state = ? WHERE {raw.position_column} = 3", (b"not json",))
    code = main(["audit", "replay"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("FAILED: replay stopped on an event it could not apply"), out
    assert len(apart) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(apart[0], 0)  # gone, not left running


def test_a_snapshot_id_is_spelled_into_the_statement_only_when_it_is_one() -> None:
    assert audit._snapshot_id("00000003-0000001B-1") == "00000003-0000001B-1"
    with pytest.raises(ValueError):
        audit._snapshot_id("1'; DROP TABLE audit_chain; --")
