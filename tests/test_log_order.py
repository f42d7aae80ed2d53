"""Notification ids must commit in the order they are issued, or a projector that reads "after my
position" passes over an id that commits later and never projects it.

eventsourcing 9.5's insert function (POSTGRES_ENABLE_DB_FUNCTIONS=y) takes no table lock, so the
risk is real: the first test shows an event skipped for ever with the library's function, and that
our recorder (infra/postgres_recorder.py) makes the second writer wait instead. The last test runs
several writer processes against a tailing reader and checks that the reader saw every event.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.application import Jindou
from infra.postgres_recorder import OrderedPostgresApplicationRecorder
from infra.settings import persistence_env
from tests.conftest import PostgresDatabase, require_postgres

pytestmark = pytest.mark.postgres

WRITER_PROCESSES = 3
INSERTS_PER_WRITER = 150
BLOCKED_WAIT_S = 1.0
BARRIER_TIMEOUT_S = 120  # spawned writers import the app first; a broken one must not hang CI


def _env(url: str, *, ordered: bool) -> dict[str, str]:
    env = persistence_env(url)
    if not ordered:
        del env["APPLICATION_RECORDER_TOPIC"]  # the library's own (unlocked) insert function
    return env


_APPS: list[Jindou] = []  # an application closes its pool when collected: keep each for the test's life


def _recorder(url: str, *, ordered: bool, create_tables: bool = True) -> PostgresApplicationRecorder:
    env = _env(url, ordered=ordered)
    if not create_tables:  # the parent made them: writers starting together would race on CREATE
        env["CREATE_TABLE"] = "n"
    app = Jindou(env=env)
    _APPS.append(app)
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    assert isinstance(recorder, OrderedPostgresApplicationRecorder) is ordered
    return recorder


def _stored_event() -> StoredEvent:
    return StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="test:Event", state=b"{}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_postgres()
    database = PostgresDatabase()
    database.create()
    try:
        yield database.url
    finally:
        while _APPS:
            _APPS.pop().close()
        database.drop()


def _insert_while_another_transaction_is_open(recorder: PostgresApplicationRecorder) -> tuple[int, list[int], bool]:
    """Writer A inserts through the insert function and holds its transaction open; writer B
    inserts meanwhile. Returns A's id, what a tailing reader saw while A was open, and whether B
    had to wait for A."""
    function = recorder.pg_function_name_insert_events
    b_ids: list[int] = []
    writer_b = threading.Thread(target=lambda: b_ids.extend(recorder.insert_events([_stored_event()]) or []))
    with recorder.datastore.get_connection() as connection, connection.transaction(), connection.cursor() as cursor:
        cursor.execute(recorder.sql_invoke_pg_function_insert_events,
                       ([recorder.construct_pg_stored_event(**vars(_stored_event()))],))
        a_id = cursor.fetchall()[0][function]
        writer_b.start()
        writer_b.join(BLOCKED_WAIT_S)
        b_waited = writer_b.is_alive()
        seen_while_a_open = [n.id for n in recorder.select_notifications(start=0, limit=100)]
    writer_b.join(30)
    assert not writer_b.is_alive()
    return a_id, seen_while_a_open, b_waited


def test_the_library_insert_function_lets_a_tailing_reader_skip_an_event(postgres_url: str) -> None:
    recorder = _recorder(postgres_url, ordered=False)
    a_id, seen, b_waited = _insert_while_another_transaction_is_open(recorder)
    assert not b_waited, "without the table lock, B commits while A is still open"
    assert seen and a_id not in seen and max(seen) > a_id, "the reader saw B's later id but not A's earlier one"
    position = max(seen)  # a tailing reader moves to the highest id it saw...
    later = [n.id for n in recorder.select_notifications(start=position, limit=100, inclusive_of_start=False)]
    assert a_id not in later, "...and never comes back for A's id: the event is skipped for ever"


def test_our_insert_function_makes_the_second_writer_wait(postgres_url: str) -> None:
    recorder = _recorder(postgres_url, ordered=True)
    a_id, seen, b_waited = _insert_while_another_transaction_is_open(recorder)
    assert b_waited, "B waits for A's commit: ids are issued and committed in one order"
    assert seen == [], "nothing is visible before A commits"
    ids = [n.id for n in recorder.select_notifications(start=0, limit=100)]
    assert ids == sorted(ids) and ids[0] == a_id and len(ids) == 2


def _writer(url: str, ordered: bool, inserts: int, ready: multiprocessing.synchronize.Barrier) -> None:
    recorder = _recorder(url, ordered=ordered, create_tables=False)
    ready.wait()
    for number in range(inserts):
        recorder.insert_events([_stored_event() for _ in range(1 + number % 3)])


def tail_under_load(url: str, *, ordered: bool, writers: int = WRITER_PROCESSES,
                    inserts: int = INSERTS_PER_WRITER) -> tuple[int, int]:
    """Writer processes insert while this process tails the log as a projector does; returns
    (events recorded, events the tailing reader never saw)."""
    recorder = _recorder(url, ordered=ordered)  # creates the tables and the function once
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(writers + 1, timeout=BARRIER_TIMEOUT_S)  # a writer that failed to start fails the test, not hangs it
    processes = [context.Process(target=_writer, args=(url, ordered, inserts, ready)) for _ in range(writers)]
    for process in processes:
        process.start()
    ready.wait()
    seen: set[int] = set()
    position = 0

    def tail() -> None:
        nonlocal position
        while batch := recorder.select_notifications(start=position, limit=500, inclusive_of_start=False):
            seen.update(n.id for n in batch)
            position = batch[-1].id

    while any(p.is_alive() for p in processes):
        tail()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    tail()
    recorded = {n.id for n in recorder.select_notifications(start=0, limit=1_000_000)}
    return len(recorded), len(recorded - seen)


def test_a_tailing_reader_sees_every_event_from_several_writer_processes(postgres_url: str) -> None:
    recorded, skipped = tail_under_load(postgres_url, ordered=True)
    assert recorded == WRITER_PROCESSES * sum(1 + n % 3 for n in range(INSERTS_PER_WRITER))
    assert skipped == 0


def test_our_insert_function_keeps_every_byte_of_what_it_records(postgres_url: str) -> None:
    """The events travel to the server as binary composites: any state, topic and version come
    back as they went, whether recorded alone or with the read model in one transaction."""
    recorder = _recorder(postgres_url, ordered=True)
    states = [bytes(range(256)), b"", b"\x00\\x00'\"\n{}", "金豆 ✓".encode()]
    sent = [StoredEvent(originator_id=uuid.uuid4(), originator_version=version, topic="测试:Event\t\"x\"", state=state)
            for version, state in enumerate(states, start=1)]
    projected: list[list[int]] = []
    recorder.insert_events(sent[:2])
    recorder.insert_events(sent[2:], project_inserted=lambda _cursor, notes: projected.append([n.id for n in notes]))
    assert len(projected) == 1 and len(projected[0]) == 2
    for event in sent:
        assert recorder.select_events(event.originator_id) == [event]
