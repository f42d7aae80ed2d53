"""PostgreSQL that fails fast when the database is away.

The library retries every read and insert ten times on a lost connection, and waits for a pooled
connection as long as its connect timeout: with the database stopped, one request took ~55 s and
a few of them starved the server's threads. Here a request fails within seconds instead, and the
client is told to retry (503 `unavailable`, or `outcome_unknown` when a commit may have happened):

- no library retries (the unit of work retries what is worth retrying: optimistic collisions);
- a short pool wait (POSTGRES_CONNECT_TIMEOUT) and a short libpq connect timeout;
- a statement timeout, so a query that hangs on a half-dead server is cut;
- a pre-ping, so a connection that died with the last server is dropped, not handed out: the
  service recovers without a restart when the database comes back. (Pinging only connections
  idle for a second saved a sixth of a busy server's time, but after an outage the pool kept
  handing out dead connections and never recovered: measured by the outage suite, reverted.)
  The ping is a round trip only when the connection has something to say: see
  `check_unless_quiet`.
- a short reconnect timeout: the pool retries a lost connection after 1, 2, 4, 8… s for five
  minutes, so after a 4 s outage its connections came back only ~3 s after the database did
  and writes kept failing meanwhile (a flaky outage run). A slot that cannot reconnect within
  RECONNECT_TIMEOUT_S is given up instead, and the pool grows again at the next request.
  The health monitor also has the pool check its idle connections the moment the database
  answers again (infra/wiring.py), so no request meets one that died with the old server.

`PERSISTENCE_MODULE=infra.persistence` selects it (infra/settings.py does).
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType
from psycopg_pool import ConnectionPool

CONNECT_TIMEOUT_S = 2  # libpq's own minimum; a refused connection fails at once anyway
RECONNECT_TIMEOUT_S = 1.0  # a pool slot that cannot reconnect this long is dropped, not backed off for minutes
STATEMENT_TIMEOUT_SETTING = "POSTGRES_STATEMENT_TIMEOUT_MS"  # 0: none (the audit commands read whole tables)


def _without_retries(method: Any) -> Any:
    """The library's method as written, without its retry decorator (functools.wraps kept it)."""
    return method.__wrapped__


def check_unless_quiet(connection: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection before handing it out, without a round trip while
    nothing has arrived on it since its last use. A server that goes away (stopped, restarted,
    the backend terminated) closes its end, which leaves the socket readable: the end of the
    stream, or its "terminating connection" message. Only then is the connection pinged the
    usual way, so a dead one is still never handed out. The ping was a round trip per checkout:
    three in each of the writer's groups and two in each request. The pool's own `check()`
    after an outage (infra/wiring.py) still pings every idle connection."""
    if connection.closed:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(connection)


class FailFastAggregateRecorder(PostgresAggregateRecorder):
    insert_events = _without_retries(PostgresAggregateRecorder.insert_events)
    select_events = _without_retries(PostgresAggregateRecorder.select_events)


class FailFastApplicationRecorder(PostgresApplicationRecorder):
    insert_events = _without_retries(PostgresApplicationRecorder.insert_events)
    select_events = _without_retries(PostgresAggregateRecorder.select_events)
    select_notifications = _without_retries(PostgresApplicationRecorder.select_notifications)
    max_notification_id = _without_retries(PostgresApplicationRecorder.max_notification_id)


class FailFastTrackingRecorder(PostgresTrackingRecorder):
    insert_tracking = _without_retries(PostgresTrackingRecorder.insert_tracking)
    max_tracking_id = _without_retries(PostgresTrackingRecorder.max_tracking_id)
    has_tracking_id = _without_retries(PostgresTrackingRecorder.has_tracking_id)


class FailFastPostgresFactory(PostgresFactory):
    aggregate_recorder_class = FailFastAggregateRecorder
    application_recorder_class = FailFastApplicationRecorder
    tracking_recorder_class = FailFastTrackingRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # The pool opens at the first query, after this: every connection it makes carries these.
        statement_timeout_ms = int(self.env.get(STATEMENT_TIMEOUT_SETTING) or 0)
        self.datastore.pool.kwargs = {
            **(self.datastore.pool.kwargs or {}),
            "connect_timeout": CONNECT_TIMEOUT_S,
            **({"options": f"-c statement_timeout={statement_timeout_ms}"} if statement_timeout_ms else {}),
        }
        self.datastore.pool.reconnect_timeout = RECONNECT_TIMEOUT_S
        if self.datastore.pool._check is not None:  # noqa: SLF001 - POSTGRES_PRE_PING; psycopg_pool 3.2-3.3 keeps it here
            self.datastore.pool._check = check_unless_quiet  # noqa: SLF001
