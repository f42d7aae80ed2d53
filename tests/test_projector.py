"""The catch-up projector across processes sharing one database."""

from __future__ import annotations

import threading

import pytest

from domain.people import RegisterCommunity
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN


@pytest.mark.backends("sqlite")
def test_a_read_model_batch_on_sqlite_holds_the_write_lock_from_its_first_statement(database_url: str) -> None:
    """Two processes over one SQLite file: a batch that reads before it writes must not lose its
    write to the other process's commit in between ('database is locked'), it must make the
    other writer wait instead."""
    ours = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    theirs = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    admin = theirs.app.authenticate(ADMIN_TOKEN)
    other_writer = threading.Thread(target=lambda: theirs.app.execute(RegisterCommunity(name="金星社区"), admin))
    try:
        with ours.store.transaction(commit=True) as cursor:
            cursor.one("SELECT COUNT(*) AS n FROM ledger_communities")
            other_writer.start()
            other_writer.join(timeout=0.5)
            assert other_writer.is_alive(), "the other process wrote in the middle of our batch"
            cursor.execute("INSERT INTO ledger_communities VALUES ('c', '金沙社区', 'Asia/Shanghai', 1000, 'now')")
        other_writer.join(timeout=30)
        assert not other_writer.is_alive()
        assert theirs.projector.catch_up() == ours.projector.catch_up()
    finally:
        ours.close()
        theirs.close()


@pytest.mark.backends("postgres")
def test_several_processes_starting_at_once_on_a_fresh_database_all_come_up(database_url: str) -> None:
    """Creating tables from several processes at once fails in PostgreSQL ('tuple concurrently
    updated') unless start-up takes turns."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        positions = pool.map(start_and_report_position, [database_url] * 4)
    assert len(positions) == 4 and all(p >= 2 for p in positions)


def start_and_report_position(database_url: str) -> int:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    try:
        return services.projector.catch_up()
    finally:
        services.close()
