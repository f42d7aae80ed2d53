"""The read-model store: our tables beside the library's tracking table, in one database.

Projections write portable SQL (`?` placeholders, standard types, `ON CONFLICT` upserts); the
cursor adapts placeholders for PostgreSQL. Aggregates like SUM come back as Decimal from
PostgreSQL, so queries CAST(... AS BIGINT) where they sum money.
"""

from __future__ import annotations

import functools
import itertools
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eventsourcing.persistence import OperationalError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteTrackingRecorder,
    SQLiteTransaction,
)
from psycopg.pq import PipelineStatus
from psycopg.rows import dict_row

STREAM_ROWS_PER_FETCH = 2_000
_stream_names = itertools.count()  # a server-side cursor needs a name unique in its session


FACTS_KEPT_MAX = 200_000  # facts carried between batches; past this the memory starts afresh


@dataclass
class Carried:
    """What a read-model batch hands on to the next, so that a busy writer's batch need not read
    back what the last one wrote: facts that never change (a community's time zone, an
    account's community), and projections' state (a chain head, a tree's edge, balances) as
    the last committed batch left it at log position `position`. The projector keeps it, and
    replaces it only once a batch has committed (projections/projector.py)."""

    position: int | None = None
    facts: dict[tuple[str, str], Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def taken(self) -> Carried:
        """What stays behind while a batch holds this memory's state: the facts alone. A batch
        may change the state it holds in place; if it rolls back, that state is simply gone."""
        return Carried(facts=self.facts)

    def after(self, position: int, learned: dict[tuple[str, str], Any], handed: dict[str, Any]) -> Carried:
        """The memory once a batch that learned `learned` and handed on `handed` committed at `position`."""
        facts = self.facts if len(self.facts) + len(learned) <= FACTS_KEPT_MAX else {}
        facts.update(learned)  # only ever adds truths, so a batch reading it meanwhile is unharmed
        return Carried(position, facts, handed)


class Cursor:
    """One transaction's cursor with placeholder translation and rows as dicts.

    A projection batch's cursor also carries what earlier batches left (`carried`), valid
    only when the read model stands where it says: `before` is the position this transaction
    found the read model at (None: not known, nothing carried is used)."""

    def __init__(self, raw: Any, *, postgres: bool, carried: Carried | None = None, before: int | None = None) -> None:
        self.raw = raw
        self.postgres = postgres
        self._carried = carried or Carried()
        self._before = before
        # Facts that never change once recorded, read at most once: see `remembered`. What this
        # transaction learned is kept for later ones only if it commits.
        self.learned: dict[tuple[str, str], Any] = {}
        self.handed: dict[str, Any] = {}

    def remembered(self, fact: str, key: str, read: Callable[[], Any]) -> Any:
        """`read()` the first time anyone asks for `fact` of `key`, then its answer.
        Only for facts no later event changes."""
        if (fact, key) in self.learned:
            return self.learned[(fact, key)]
        if (fact, key) in self._carried.facts:
            return self._carried.facts[(fact, key)]
        value = self.learned[(fact, key)] = read()
        return value

    def knows(self, fact: str, key: str) -> bool:
        return (fact, key) in self.learned or (fact, key) in self._carried.facts

    def remember(self, fact: str, key: str, value: Any) -> None:
        """Tell `remembered` an answer read with many others at once."""
        self.learned[(fact, key)] = value

    def handed_on(self, name: str) -> Any | None:
        """What was last handed on under `name`: earlier in this transaction, or else by the
        batch that ended where this one begins; None when there is none or the read model has
        moved since (then read the tables). This batch owns it (see `Carried.taken`) and may
        change it in place."""
        if name in self.handed:
            return self.handed[name]
        if self._before is None or self._carried.position != self._before:
            return None
        return self._carried.state.get(name)

    def hand_on(self, name: str, value: Any) -> None:
        """Leave `value` for the next batch (kept only if this one commits)."""
        self.handed[name] = value

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """On PostgreSQL, the statements sent inside go out together and their answers are read
        together at the end (libpq's pipeline mode): one round trip, not one per statement. A
        statement whose rows are fetched inside waits for its answer as usual; a failure is
        raised at the end at the latest, and the transaction it was in is then rolled back
        as always. Not for `stream` (a server-side cursor). SQLite has no round trips."""
        if not self.postgres or self.raw.connection.pgconn.pipeline_status != PipelineStatus.OFF:
            yield  # already in a pipeline, which sends these with what follows (the commit)
            return
        with self.raw.connection.pipeline():
            yield

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.raw.execute(self._sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(statement), [tuple(r) for r in rows])

    def one(self, statement: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        Cursor.execute(self, statement, params)
        row = self.raw.fetchone()
        return None if row is None else dict(row)

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        Cursor.execute(self, statement, params)
        return [dict(row) for row in self.raw.fetchall()]

    def stream(self, statement: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """The rows of a large result, STREAM_ROWS_PER_FETCH at a time: on PostgreSQL a server-side cursor
        (a plain one would bring the whole result over at once), on SQLite the cursor's own steps
        (the library's wrapper holds the sqlite3 cursor, which reads a row per step)."""
        if self.postgres:
            with self.raw.connection.cursor(name=f"jindou_stream_{next(_stream_names)}", row_factory=dict_row) as named:
                named.execute(self._sql(statement), tuple(params))
                while rows := named.fetchmany(STREAM_ROWS_PER_FETCH):
                    yield from rows
            return
        Cursor.execute(self, statement, params)
        yield from map(dict, self.raw.sqlite_cursor)


class BatchCursor(Cursor):
    """A projection batch's cursor: writes wait in order and go out as one `executemany` per run
    of the same statement, so a batch of N events sends a handful of statements instead of N per
    projection. Any read first sends every waiting write, so reads see them (the same rows as
    statement by statement, in the same order). `flush()` before anything uses `raw` directly."""

    def __init__(self, raw: Any, *, postgres: bool, carried: Carried | None = None, before: int | None = None) -> None:
        super().__init__(raw, postgres=postgres, carried=carried, before=before)
        self._waiting: list[tuple[str, list[Sequence[Any]]]] = []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.executemany(statement, [params])

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._waiting and self._waiting[-1][0] == statement:
            self._waiting[-1][1].extend(rows)
        else:
            self._waiting.append((statement, list(rows)))

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for statement, rows in waiting:
            insert = _multi_row_insert(statement) if self.postgres and len(rows) > 1 else None
            if insert is not None and insert.keys is not None:
                if len({tuple(row[i] for i in insert.keys) for row in rows}) < len(rows):
                    insert = None  # a key twice: row by row, as written
            if len(rows) == 1:
                Cursor.execute(self, statement, rows[0])
            elif insert is not None:
                per_statement = max(1, PARAMS_PER_STATEMENT_MAX // len(rows[0]))
                for start in range(0, len(rows), per_statement):
                    chunk = rows[start:start + per_statement]
                    Cursor.execute(self, insert.statement(len(chunk)), [value for row in chunk for value in row])
            else:
                Cursor.executemany(self, statement, rows)

    def one(self, statement: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        self.flush()
        return super().one(statement, params)

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.flush()
        return super().all(statement, params)

    def stream(self, statement: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        self.flush()
        return super().stream(statement, params)


# Parameters in one multi-row INSERT, at most. psycopg turns a statement's `%s` into `$1, $2…`
# with a regular expression, and remembers the result only for statements of up to 50
# parameters: a longer one was parsed again at every send (a sixth of the writer's time). Runs
# of rows go as statements of this size, each parsed once, and prepared by the server once it
# has been sent five times; inside the batch's pipeline, more statements cost no round trips.
PARAMS_PER_STATEMENT_MAX = 50
_VALUE = r"(?:\?|NULL|'\w*'|\d+)"  # a placeholder or a plain constant
_INSERT_VALUES = re.compile(
    rf"^(INSERT INTO \w+ (?:\((?P<columns>[\w, ]+)\) )?VALUES )(?P<row>\({_VALUE}(?:, {_VALUE})*\))"
    r"(?P<tail>(?: ON CONFLICT \((?P<keys>[\w, ]+)\) DO (?P<action>NOTHING|UPDATE SET [^;]+))?)$"
)


class _MultiRow(NamedTuple):
    statement: Callable[[int], str]  # the insert of n rows as one statement
    keys: tuple[int, ...] | None  # an upsert's conflict key, by place in the row: it must differ row to row


@functools.lru_cache(maxsize=256)
def _multi_row_insert(statement: str) -> _MultiRow | None:
    """For `INSERT ... VALUES (?, 'x', NULL, ...)`, plain or `ON CONFLICT (...) DO ...`: the same
    insert of n rows as one statement (PostgreSQL coerces an INSERT's VALUES to the columns'
    types). psycopg's `executemany` sends, and its Python code reads back, one result per row,
    which was a quarter of the writer's time. One statement may not update a row twice, so an
    upsert (`DO UPDATE`) names its columns, and goes as one statement only when its rows' keys
    all differ (`flush` checks)."""
    match = _INSERT_VALUES.match(statement)
    if match is None:
        return None
    keys: tuple[int, ...] | None = None
    if (match["action"] or "").startswith("UPDATE"):
        columns = [c.strip() for c in (match["columns"] or "").split(",")]
        key_columns = [k.strip() for k in match["keys"].split(",")]
        if not set(key_columns) <= set(columns):
            return None
        keys = tuple(columns.index(k) for k in key_columns)
    head, row, tail = match.group(1), match["row"], match["tail"]
    return _MultiRow(lambda n: head + ", ".join([row] * n) + tail, keys)


READ_MODEL_WRITER_LOCK = 0x6A696E646F75  # "jindou": PostgreSQL advisory lock key of the read model's writer


class _ImmediateTransaction(SQLiteTransaction):
    def __init__(self, connection: SQLiteConnection) -> None:
        super().__init__(connection, commit=True)

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # still locked after the busy timeout
            raise OperationalError(error) from error
        return cursor


class ReadStore:
    """Our tables plus the library's tracking recorder, sharing one datastore (one transaction)."""

    def __init__(self, tracking: TrackingRecorder) -> None:
        assert isinstance(tracking, (SQLiteTrackingRecorder, PostgresTrackingRecorder))
        self.tracking = tracking
        self.postgres = isinstance(tracking, PostgresTrackingRecorder)

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor]:
        """Writing transactions are one at a time across processes (as the batches they apply
        are in log order): two processes applying overlapping batches would otherwise lock
        rows in different orders and deadlock on PostgreSQL, or lose the race on SQLite."""
        if commit and not self.postgres:
            with self._sqlite_write_transaction() as raw:
                yield Cursor(raw, postgres=False)
            return
        with self.tracking.datastore.transaction(commit=commit) as raw:
            cursor = Cursor(raw, postgres=self.postgres)
            if commit:
                cursor.execute("SELECT pg_advisory_xact_lock(?)", (READ_MODEL_WRITER_LOCK,))
            yield cursor

    @contextmanager
    def _sqlite_write_transaction(self) -> Iterator[Any]:
        """SQLite's plain BEGIN takes the write lock only at the first write; a batch that read
        first then finds another process committed in between and fails at once ('database is
        locked'). BEGIN IMMEDIATE takes the lock up front, waiting up to the busy timeout."""
        datastore = self.tracking.datastore
        assert isinstance(datastore, SQLiteDatastore)
        with datastore.get_connection(commit=True) as connection, _ImmediateTransaction(connection) as cursor, cursor:
            yield cursor

    def read(self) -> Any:
        return self.transaction(commit=False)

    def one(self, statement: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """One row of one statement (see `_alone`)."""
        row: dict[str, Any] | None = self._alone(lambda cursor: cursor.one(statement, params))
        return row

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one statement (see `_alone`)."""
        rows: list[dict[str, Any]] = self._alone(lambda cursor: cursor.all(statement, params))
        return rows

    def _alone(self, ask: Callable[[Cursor], Any]) -> Any:
        """One statement. On PostgreSQL outside any transaction (its connections autocommit, and
        one statement sees one snapshot anyway): one round trip where a read transaction takes
        three (BEGIN, the statement, ROLLBACK)."""
        if not self.postgres:
            with self.read() as cursor:
                return ask(cursor)
        datastore = self.tracking.datastore
        assert isinstance(datastore, PostgresDatastore)
        with datastore.get_connection() as connection, connection.cursor() as raw:
            return ask(Cursor(raw, postgres=True))

    def create_tables(self, statements: Sequence[str]) -> None:
        self.tracking.create_table()
        with self.transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(statement)

    def position(self, name: str) -> int:
        return self.tracking.max_tracking_id(name) or 0

    def position_in(self, cursor: Cursor, name: str) -> int:
        """The recorded position, read inside `cursor`'s transaction."""
        return self.ask_position(cursor, name)()

    def ask_position(self, cursor: Cursor, name: str) -> Callable[[], int]:
        """`position_in` in two steps: the question now, the answer when called. In a PostgreSQL
        pipeline the question goes out with whatever is sent before the answer is read."""
        tracking = self.tracking
        if isinstance(tracking, PostgresTrackingRecorder):
            cursor.raw.execute(tracking.max_tracking_id_statement, (name,))
            raw = cursor.raw
            return lambda: int(raw.fetchone()["max"] or 0)
        assert isinstance(tracking, SQLiteTrackingRecorder)
        position = tracking._max_tracking_id(name, cursor.raw) or 0
        return lambda: position

    def record_position(self, cursor: Cursor, name: str, position: int, *, held: bool = False) -> None:
        """Inside the batch's transaction: raises IntegrityError if another process got there first.

        `held`: this transaction holds the read model's writer lock and found the position right
        before its batch, so nobody can have moved it: the library's check of the answer, a
        round trip inside a pipeline, is skipped (the statement is the library's own)."""
        tracking = self.tracking
        if held and isinstance(tracking, PostgresTrackingRecorder) and tracking.datastore.single_row_tracking:
            cursor.raw.execute(tracking.insert_tracking_statement,
                               {"application_name": name, "notification_id": position}, prepare=True)
            return
        tracking._insert_tracking(cursor.raw, Tracking(name, position))

    def close(self) -> None:
        self.tracking.datastore.close()
