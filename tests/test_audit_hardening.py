"""The audit commands against what the attack tried."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from api.cli import main
from infra.audit import NO_PUBLISHED_HEAD_WARNING, replay_and_compare, verify_chain
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.audit_history import RawDatabase, make_history, stored_history
from tests.conftest import ADMIN_TOKEN, PostgresDatabase, require_postgres
from tests.audit_history import rewrite_chain_and_tree
from tests.test_audit_cli import STORED


@pytest.fixture
def history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    with stored_history(database_url, monkeypatch, seed=10) as services:
        yield services


def run(command: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["audit", command, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["verify", "replay"])
def test_an_audit_of_a_sqlite_file_that_does_not_exist_refuses_and_creates_nothing(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    nope = tmp_path / "nope.db"
    monkeypatch.setenv("JINDOU_DATABASE_URL", f"sqlite:///{nope}")
    code, out, err = run(command, capsys)
    assert code != 0 and not out.startswith("OK") and "no SQLite database" in err
    assert not nope.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["verify", "replay"])
def test_an_audit_of_memory_or_of_a_file_without_events_refuses(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("JINDOU_DATABASE_URL", "memory://")
    assert run(command, capsys)[0] != 0
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.commit()
    monkeypatch.setenv("JINDOU_DATABASE_URL", f"sqlite:///{other}")
    code, _, err = run(command, capsys)
    assert code != 0 and "no Jindou events" in err


@pytest.mark.postgres
def test_an_audit_of_a_missing_postgres_database_or_tables_refuses(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    require_postgres()
    database = PostgresDatabase()
    monkeypatch.setenv("JINDOU_DATABASE_URL", database.url)
    code, _, err = run("verify", capsys)
    assert code != 0 and "cannot open PostgreSQL database" in err
    database.create()
    try:
        for command in ("verify", "replay"):
            code, _, err = run(command, capsys)
            assert code != 0 and "no Jindou events" in err
        with psycopg.connect(database.url) as connection:
            tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,), "the audit created tables"
    finally:
        database.drop()


@STORED
def test_verify_says_loudly_that_without_a_published_head_a_rewrite_passes(history: Services, capsys, tmp_path) -> None:
    code, out, err = run("verify", capsys)
    assert code == 0 and out.startswith("OK:") and NO_PUBLISHED_HEAD_WARNING in out and NO_PUBLISHED_HEAD_WARNING in err
    head = tmp_path / "chain.json"
    head.write_text(json.dumps({"head": verify_chain(history.app, history.store).head,
                                "events_count": history.app.recorder.max_notification_id()}))
    code, out, err = run("verify", capsys, "--published", str(head))
    assert code == 0 and "WARNING" not in out + err


@STORED
def test_replay_checks_guarded_accounts_own_balances_against_an_edited_transaction(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    position = raw.positions_of("Donation.Made")[0]
    postings = json.loads(bytes(raw.event_at(position)["state"]))["postings"]
    raw.edit_state(position, postings=[dict(p, amount=p["amount"] * 2) for p in postings])
    rewrite_chain_and_tree(history, raw)
    assert verify_chain(history.app, history.store).ok  # the chain alone cannot tell any more

    report = replay_and_compare(history.app, history.store)
    guarded = next(t for t in report.tables if t.table == "guarded account aggregates against the ledger")
    assert guarded.count >= 1 and "its own events hold" in guarded.shown[0]
    code, out, _ = run("replay", capsys)
    assert code == 1 and "guarded account aggregates against the ledger" in out


@STORED
def test_replay_of_an_honest_history_finds_every_guarded_account_in_agreement(history: Services) -> None:
    report = replay_and_compare(history.app, history.store)
    assert report.ok, [t.shown for t in report.tables if t.count]


@pytest.mark.backends("sqlite", "postgres")
def test_a_replay_longer_than_the_services_idle_limit_still_compares(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live side's snapshot is idle while the history replays; a service's sessions are ended
    after a while idle in a transaction (30 s; 1 s here), which once ended every replay of more
    than about 400k events on PostgreSQL before it could compare."""
    env = Settings.application_env
    monkeypatch.setattr(Settings, "application_env", lambda self: env(self) | {
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "1"})
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    try:
        make_history(services, seed=11, steps=6)
        waited: list[int] = []

        def slow_progress(done: int, total: int) -> None:  # as a long history keeps the snapshot idle
            if not waited:
                waited.append(done)
                time.sleep(2.5)

        report = replay_and_compare(services.app, services.store, slow_progress)
        assert waited and report.ok, [table.shown for table in report.tables if table.count]
    finally:
        services.close()
