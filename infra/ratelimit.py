"""Guessing limits kept in the database, so every server process counts the same failures.

A client that keeps submitting codes that are not valid is probably guessing: after
`failures_max` failures in a sliding window, `check` refuses it with 429 until the window frees
up. The failures are rows beside the read model (the same database, not the event store: a
wrong guess is not a fact of the ledger), so several processes over one SQLite file or one
PostgreSQL database share one budget; with memory:// the table is the process's own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection

from domain.errors import RateLimited
from projections.store import ReadStore

PAYMENT_CODE_FAILURES_MAX = 10  # per merchant, counting only codes that were never issued
SIGN_IN_CODE_FAILURES_MAX = 20  # per client address, counting every refused sign-in code
GUESS_WINDOW_SECONDS = 600.0
CLIENT_KEY_LENGTH_MAX = 200

TABLES = (
    "CREATE TABLE IF NOT EXISTS guess_failures ("
    " scope TEXT NOT NULL, client TEXT NOT NULL, failed_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS guess_failures_by_client ON guess_failures (scope, client, failed_at)",
    "CREATE INDEX IF NOT EXISTS guess_failures_by_time ON guess_failures (failed_at)",
)


class FailureWindow:
    """At most `failures_max` failures per client of one scope in any `window_seconds`."""

    def __init__(
        self, store: ReadStore, scope: str, *, failures_max: int, window_seconds: float = GUESS_WINDOW_SECONDS,
        message: str = "too many codes that are not valid; wait before trying again",
        clock: Callable[[], float] = time.time,  # wall-clock seconds: every process must agree on it
    ) -> None:
        assert failures_max > 0 and window_seconds > 0
        self.store = store
        self.scope = scope
        self.failures_max = failures_max
        self.window_seconds = window_seconds
        self.message = message
        self.clock = clock

    def check(self, client: object) -> None:
        key = _client_key(client)
        refusal = self.refusals([key]).get(key)
        if refusal is not None:
            raise refusal

    def refusals(self, clients: Collection[str]) -> dict[str, RateLimited]:
        """The refusal of each of these clients that is over the limit, in one query (the
        writer asks once per group)."""
        now = self.clock()
        keys = sorted({_client_key(client) for client in clients})
        if not keys:
            return {}
        rows = self.store.all(
            "SELECT client, COUNT(*) AS failures, MIN(failed_at) AS oldest FROM guess_failures"
            f" WHERE scope = ? AND failed_at > ? AND client IN ({', '.join('?' * len(keys))})"
            " GROUP BY client HAVING COUNT(*) >= ?",
            (self.scope, now - self.window_seconds, *keys, self.failures_max),
        )
        return {
            str(row["client"]): RateLimited(self.message, retry_after_seconds=max(
                1, math.ceil(float(row["oldest"]) + self.window_seconds - now)))
            for row in rows
        }

    def record_failure(self, client: object) -> None:
        now = self.clock()
        with self.store.transaction(commit=True) as cursor:
            cursor.execute("DELETE FROM guess_failures WHERE failed_at <= ?", (now - self.window_seconds,))
            cursor.execute("INSERT INTO guess_failures (scope, client, failed_at) VALUES (?, ?, ?)",
                           (self.scope, _client_key(client), now))


def _client_key(client: object) -> str:
    return str(client)[:CLIENT_KEY_LENGTH_MAX]
