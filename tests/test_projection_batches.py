"""Projections in bulk: a batch folds its events in memory and writes each row once, so how the
log is cut into batches must never show in the read model."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from api.demo import SMALL, populate
from domain.donating import Donate
from domain.errors import OutcomeUnknown
from infra.audit import compare_table, table_specs
from infra.bench import counted_statements
from infra.settings import Settings
from infra.wiring import Services, build_services, memory_read_store
from projections.projector import BATCH_SIZE, Projector
from projections.registry import all_projections
from projections.store import BatchCursor, ReadStore
from tests.conftest import ADMIN_TOKEN
from tests.support import check_invariants, new_app_community
from tests.test_demo import DEMO_NOW

BATCH_SIZES = (1, 7, BATCH_SIZE)  # one event at a time, batches cut anywhere, the default


def _tables(store: ReadStore) -> dict[str, list[dict[str, Any]]]:
    with store.read() as cursor:
        return {spec.name: cursor.all(f"SELECT * FROM {spec.name}")  # noqa: S608 (our own table names)
                for spec in table_specs(all_projections())}


@pytest.mark.backends("sqlite", "postgres")
def test_every_table_is_the_same_whatever_the_batch_size(database_url: str, tmp_path) -> None:
    """Three demo months (reports dispatched and closed, frozen accounts, sales and reversals,
    settlements, wishes): the live read model, built request by request, equals a replay in
    batches of every size, table by table and row by row."""
    services = build_services(Settings(database_url=database_url, transparency_key_file=str(tmp_path / "signing.key")))
    try:
        populate(services, ADMIN_TOKEN, size=SMALL, now=DEMO_NOW)
        services.projector.catch_up()
        live = _tables(services.projector.store)
        assert sum(map(len, live.values())) > 1_000
        for batch_size in BATCH_SIZES:
            scratch = Projector(services.app, memory_read_store(), all_projections(), batch_size=batch_size)
            scratch.create_tables()
            assert scratch.catch_up() == services.projector.position
            replayed = _tables(scratch.store)
            scratch.store.close()
            for spec in table_specs(all_projections()):
                differences = compare_table(spec, live[spec.name], replayed[spec.name])
                assert differences.count == 0, (batch_size, spec.name, differences)
    finally:
        services.close()


def test_a_batch_cursor_sends_a_run_of_one_statement_at_once_and_reads_see_every_waiting_write() -> None:
    store = memory_read_store()
    try:
        store.create_tables(["CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"])
        with store.transaction(commit=True) as transaction, counted_statements() as counts:
            cursor = BatchCursor(transaction.raw, postgres=transaction.postgres)
            for k in range(5):
                cursor.execute("INSERT INTO t VALUES (?, ?)", (k, "a"))
            cursor.execute("UPDATE t SET v = ? WHERE k = ?", ("b", 3))
            cursor.execute("INSERT INTO t VALUES (?, ?)", (5, "c"))
            assert counts["statements"] == 0  # all still waiting
            rows = cursor.all("SELECT k, v FROM t ORDER BY k")
            assert counts["statements"] == 4  # the five inserts at once, the update, the insert, the read
            cursor.execute("DELETE FROM t WHERE k = ?", (0,))
            cursor.flush()
        assert rows == [{"k": 0, "v": "a"}, {"k": 1, "v": "a"}, {"k": 2, "v": "a"}, {"k": 3, "v": "b"},
                        {"k": 4, "v": "a"}, {"k": 5, "v": "c"}]
        with store.read() as cursor:
            assert [row["k"] for row in cursor.all("SELECT k FROM t ORDER BY k")] == [1, 2, 3, 4, 5]
    finally:
        store.close()


@pytest.mark.backends("postgres")
def test_many_rows_go_as_one_insert_and_an_upsert_only_when_its_keys_differ(services: Services) -> None:
    """On PostgreSQL a run of inserts is one multi-row INSERT; an upsert too, unless a key comes
    twice (one statement may not update a row twice): then row by row, with the same result."""
    store = services.store
    store.create_tables(["CREATE TABLE many_rows (k TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)"])
    upsert = ("INSERT INTO many_rows (k, n) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET n = many_rows.n + excluded.n")
    sent: list[tuple[str, int]] = []  # (how, VALUES rows in the statement)
    with store.transaction(commit=True) as transaction:
        raw = transaction.raw

        class Watched:
            def execute(self, statement: str, params: Any) -> Any:
                sent.append(("execute", statement.count("(%s")))
                return raw.execute(statement, params)

            def executemany(self, statement: str, rows: Any) -> Any:
                sent.append(("executemany", statement.count("(%s")))
                return raw.executemany(statement, rows)

        cursor = BatchCursor(Watched(), postgres=True)
        cursor.executemany("INSERT INTO many_rows VALUES (?, ?, NULL)", [(f"k{i}", i) for i in range(5)])
        cursor.executemany(upsert, [("k1", 10), ("k2", 20), ("k9", 90)])  # keys differ: one statement
        cursor.executemany("UPDATE many_rows SET note = ? WHERE k = ?", [("x", "k0")])
        cursor.executemany(upsert, [("k3", 1), ("k3", 2), ("k4", 5)])  # k3 twice: row by row
        cursor.flush()
    assert sent == [("execute", 5), ("execute", 3), ("execute", 0), ("executemany", 1)], sent
    with store.read() as cursor:
        rows = {row["k"]: (row["n"], row["note"]) for row in cursor.all("SELECT k, n, note FROM many_rows")}
    assert rows == {"k0": (0, "x"), "k1": (11, None), "k2": (22, None), "k3": (6, None), "k4": (9, None),
                    "k9": (90, None)}


@pytest.mark.backends("postgres")
def test_a_long_run_of_rows_goes_as_inserts_psycopg_parses_once(services: Services) -> None:
    """psycopg remembers how it converted a statement only up to 50 parameters: a long run of
    rows goes as INSERTs of at most that many, every one of them whole and in order."""
    from projections.store import PARAMS_PER_STATEMENT_MAX

    store = services.store
    store.create_tables(["CREATE TABLE long_run (k TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)"])
    sent: list[int] = []  # parameters per statement
    with store.transaction(commit=True) as transaction:
        raw = transaction.raw

        class Watched:
            def execute(self, statement: str, params: Any) -> Any:
                assert statement.count("%s") == len(params)
                sent.append(len(params))
                return raw.execute(statement, params)

        cursor = BatchCursor(Watched(), postgres=True)
        cursor.executemany("INSERT INTO long_run VALUES (?, ?, NULL)", [(f"k{i:03}", i) for i in range(60)])
        cursor.flush()
    assert PARAMS_PER_STATEMENT_MAX == 50 and sent == [50, 50, 20], sent  # 25 + 25 + 10 rows of 2
    with store.read() as cursor:
        rows = [(row["k"], row["n"]) for row in cursor.all("SELECT k, n FROM long_run ORDER BY k")]
    assert rows == [(f"k{i:03}", i) for i in range(60)]


@pytest.mark.backends("sqlite", "postgres")
def test_what_a_batch_hands_on_is_kept_only_if_it_commits(services: Services, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path) -> None:
    """The writer's batches hand balances, the chain head and the tree's edge on to the next in
    memory instead of reading them back. A batch projected in a transaction that then fails must
    leave nothing of itself there: the read model still equals a replay, table by table."""
    community = new_app_community(services)
    giver, elder = community.open("volunteer"), community.open("beneficiary")
    community.earn(giver, 50)
    donate = Donate(to_account_id=elder.account_id, amount=1)
    services.app.execute(donate, giver)
    real = services.projector.project_inserted

    def projected_then_lost(raw: Any, notifications: Any, events: Any) -> bool:
        real(raw, notifications, events)  # the batch's state is handed on ...
        raise OperationalError("server closed the connection unexpectedly")  # ... and never committed

    monkeypatch.setattr(services.projector, "project_inserted", projected_then_lost)
    with pytest.raises(OutcomeUnknown):
        services.app.execute(donate, giver)
    monkeypatch.undo()
    for _ in range(3):
        services.app.execute(donate, giver)
    assert community.balance(elder) == 4 and community.balance(giver) == 46
    live = _tables(services.projector.store)
    scratch = Projector(services.app, memory_read_store(), all_projections())
    scratch.create_tables()
    scratch.catch_up()
    replayed = _tables(scratch.store)
    scratch.store.close()
    for spec in table_specs(all_projections()):
        differences = compare_table(spec, live[spec.name], replayed[spec.name])
        assert differences.count == 0, (spec.name, differences)
    check_invariants(services)
