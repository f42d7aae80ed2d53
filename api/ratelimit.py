"""Rate limits kept in this process's memory.

Payment-code guessing: a merchant whose phone keeps submitting codes that are not valid is
probably guessing, so after a few failures in a sliding window every redemption it submits is
refused with 429 until the window frees up. The counts live in one process (a deployment with
several workers allows each of them the same budget); with ≥ 66 bits per code that still makes
guessing hopeless.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

from domain.errors import RateLimited

CODE_FAILURES_PER_WINDOW_MAX = 10
CODE_FAILURE_WINDOW_SECONDS = 60.0
TRACKED_KEYS_MAX = 100_000  # bounded memory: stale keys are dropped once this many are tracked


class FailureWindow:
    """At most `failures_max` failures per key in any `window_seconds`; then `check` refuses."""

    def __init__(self, failures_max: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        assert failures_max > 0 and window_seconds > 0
        self.failures_max = failures_max
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: Hashable) -> None:
        with self._lock:
            now = self.clock()
            failures = self._recent(key, now)
            if len(failures) < self.failures_max:
                return
            retry_after_seconds = max(1, math.ceil(failures[0] + self.window_seconds - now))
        raise RateLimited(
            "too many payment codes that are not valid; wait before trying again",
            retry_after_seconds=retry_after_seconds,
        )

    def record_failure(self, key: Hashable) -> None:
        with self._lock:
            now = self.clock()
            if key not in self._failures and len(self._failures) >= TRACKED_KEYS_MAX:
                self._forget_stale(now)
            self._recent(key, now).append(now)

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures

    def _forget_stale(self, now: float) -> None:
        for key in [k for k, failures in self._failures.items() if not failures or failures[-1] <= now - self.window_seconds]:
            del self._failures[key]


PAYMENT_CODE_GUESSES = FailureWindow(CODE_FAILURES_PER_WINDOW_MAX, CODE_FAILURE_WINDOW_SECONDS)
