"""Whether the database answers, known without asking it on a request's path.

A background thread probes the database every PROBE_INTERVAL_S on its own connection, so
/healthz answers at once with the last result, and requests that need the database are refused
with 503 while it is away instead of each waiting for a connection (which starved the server's
threads). When the database comes back, the next probe opens the gate again: no restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 2  # libpq's shortest connect timeout
PROBE_STATEMENT_TIMEOUT_MS = 1_000

log = logging.getLogger("jindou.health")

Probe = Callable[[], None]


class DatabaseHealth:
    def __init__(self, probe: Probe | None, interval_s: float = PROBE_INTERVAL_S,
                 on_recovery: Callable[[], None] | None = None) -> None:
        """`probe` raises when the database does not answer; None: a database that is always
        there (memory://). `on_recovery` runs when it answers again (the pool drops what died)."""
        self._probe = probe
        self._on_recovery = on_recovery
        self.interval_s = interval_s
        self.up = True
        self.error = ""
        self.checked_at = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def start(self) -> None:
        """Idempotent: every app started over these services (tests start several at once) shares one monitor."""
        with self._starting:
            if self._probe is None or self._thread is not None:
                return
            self.check()
            self._thread = threading.Thread(target=self._run, name="jindou-database-health", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def check(self) -> None:
        assert self._probe is not None
        try:
            self._probe()
        except Exception as failure:  # noqa: BLE001 — whatever the cause, the database does not answer
            if self.up:
                log.warning("the database stopped answering: %s", failure)
            self.up, self.error = False, str(failure).strip().splitlines()[0][:200] if str(failure).strip() else repr(failure)
        else:
            if not self.up:
                log.warning("the database answers again")
                self._recover()
            self.up, self.error = True, ""
        self.checked_at = time.time()

    def _recover(self) -> None:
        if self._on_recovery is None:
            return
        try:
            self._on_recovery()
        except Exception as failure:  # noqa: BLE001 - the requests' own pre-ping still drops what died
            log.warning("could not refresh the connections after the database came back: %s", failure)

    def view(self) -> dict[str, Any]:
        state = {"database": "up" if self.up else "down", "checked_seconds_ago": round(time.time() - self.checked_at, 3)}
        return state if self.up else state | {"error": self.error}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT_S + 1)
        close_probe = getattr(self._probe, "close", None)
        if close_probe is not None:
            close_probe()


class PostgresProbe:
    """`SELECT 1` on a connection of its own (never one the requests are waiting for)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._connection: Any = None

    def __call__(self) -> None:
        import psycopg

        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(
                    dbname=self.env["POSTGRES_DBNAME"], host=self.env["POSTGRES_HOST"], port=self.env["POSTGRES_PORT"],
                    user=self.env["POSTGRES_USER"], password=self.env["POSTGRES_PASSWORD"],
                    connect_timeout=PROBE_TIMEOUT_S, autocommit=True,
                    options=f"-c statement_timeout={PROBE_STATEMENT_TIMEOUT_MS}",
                )
            self._connection.execute("SELECT 1")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
