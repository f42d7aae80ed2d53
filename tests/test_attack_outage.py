"""Attack suite: the database stops under load, then comes back.

`jindou serve` runs as a real process over a PostgreSQL cluster this test creates itself (never
the shared server). Writers donate one bean at a time, each under its own Idempotency-Key; the
cluster is stopped mid-load and started again. Every request must be answered within 5 s (503
`unavailable` or `outcome_unknown` while the database is away), /healthz within 1 s and saying
so, the service must recover without a restart, and no acknowledged write may be lost or doubled.
"""

from __future__ import annotations

import itertools
from collections import Counter
import threading
import time
from typing import Any

import httpx
import pytest

from tests.attack_support import (  # noqa: F401 — throwaway_postgres is a fixture
    Answer,
    Ledger,
    ThrowawayPostgres,
    post,
    retry_until_answered,
    served,
    throwaway_postgres,
)

pytestmark = [pytest.mark.attack, pytest.mark.postgres]

ADMIN_TOKEN = "outage-admin-token"
WRITERS = 4
BEANS_EACH = 10_000
ANSWER_WITHIN_S = 5.0
HEALTH_WITHIN_S = 1.0
LOAD_BEFORE_S, OUTAGE_S, LOAD_AFTER_S = 2.0, 4.0, 2.0
RECOVERY_WITHIN_S = 10.0
RETRY_ROUNDS_MAX = 20


def _ok(client: httpx.Client, method: str, path: str, token: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    response = client.request(method, path, json=body, headers=headers, timeout=30)
    assert response.status_code in (200, 201), (path, response.status_code, response.text)
    return response.json()


def _world(client: httpx.Client) -> dict[str, Any]:
    community = _ok(client, "POST", "/v1/communities", ADMIN_TOKEN, {"name": "停电演练社区"})
    staff = _ok(client, "POST", "/v1/staff", ADMIN_TOKEN,
                {"community_id": community["id"], "display_name": "值班员", "role": "staff"})
    grandma = _ok(client, "POST", "/v1/accounts", ADMIN_TOKEN,
                  {"community_id": community["id"], "kind": "beneficiary", "display_name": "李奶奶"})
    volunteers = []
    for number in range(WRITERS):
        volunteer = _ok(client, "POST", "/v1/accounts", ADMIN_TOKEN,
                        {"community_id": community["id"], "kind": "volunteer", "display_name": f"志愿者{number}"})
        report = _ok(client, "POST", "/v1/reports", volunteer["token"], {"category": "fire", "description": "演练"})
        _ok(client, "POST", f"/v1/reports/{report['id']}/verify", staff["token"], {"award": BEANS_EACH}, key=f"v{number}")
        volunteers.append(volunteer)
    return {"grandma": grandma, "volunteers": volunteers}


def test_the_database_stops_under_load_and_comes_back(throwaway_postgres: ThrowawayPostgres, tmp_path) -> None:  # noqa: F811
    cluster = throwaway_postgres
    with served(cluster.url, ADMIN_TOKEN, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        world = _world(client)
        body = {"to_account_id": world["grandma"]["id"], "amount": 1}
        ledger, health = Ledger(), Ledger()
        key_owner: dict[str, str] = {}
        stop = threading.Event()

        def write(volunteer: dict[str, Any]) -> None:
            with httpx.Client(base_url=server.url) as own:
                for number in itertools.count():
                    if stop.is_set():
                        return
                    key = f"{volunteer['id']}-{number}"
                    key_owner[key] = volunteer["token"]
                    retry_until_answered(own, ledger, stop, volunteer["token"], body, key)

        def watch() -> None:
            with httpx.Client(base_url=server.url) as own:
                while not stop.is_set():
                    for path, name in (("/healthz", "healthz"), ("/v1/accounts/anyone", "no_token")):
                        started = time.monotonic()
                        try:
                            response = own.get(path, timeout=30)
                            status = response.status_code
                            code = response.json().get("database", "") if name == "healthz" else name
                        except httpx.HTTPError:
                            status, code = 0, name
                        health.note(Answer(name, status, code, time.monotonic() - started, started))
                    time.sleep(0.1)

        threads = [threading.Thread(target=write, args=(v,)) for v in world["volunteers"]]
        threads.append(threading.Thread(target=watch))
        for thread in threads:
            thread.start()
        try:
            time.sleep(LOAD_BEFORE_S)
            cluster.stop("fast")
            down_from = time.monotonic()
            time.sleep(OUTAGE_S)
            down_until = time.monotonic()
            cluster.start()
            recovered_at = _wait_for_health(client)
            time.sleep(LOAD_AFTER_S)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

        slow = [a for a in ledger.answers if a.seconds > ANSWER_WITHIN_S or a.status == 0]
        assert not slow, f"{len(slow)} writes unanswered or slower than {ANSWER_WITHIN_S} s: {slow[:5]}"
        during = [a for a in ledger.answers if down_from + 0.5 <= a.at and a.at + a.seconds <= down_until]
        assert during, "no write was tried while the database was away"
        assert {(a.status, a.code) for a in during} <= {(503, "unavailable"), (503, "outcome_unknown")}, during[:5]
        slow_health = [a for a in health.answers if a.seconds > HEALTH_WITHIN_S or a.status == 0]
        assert not slow_health, f"/healthz or a request without a token was slow or unanswered: {slow_health[:5]}"
        healthz_during = [a for a in health.answers if a.key == "healthz" and down_from + 1.5 <= a.at <= down_until]
        assert healthz_during and all(a.status == 503 and a.code == "down" for a in healthz_during), healthz_during[:5]
        assert recovered_at - down_until < RECOVERY_WITHIN_S
        after = [a for a in ledger.answers if a.at > recovered_at]
        assert any(a.status == 201 for a in after), (
            f"no write succeeded after the database came back: {sorted(Counter((a.status, a.code) for a in after).items())}"
            f"\n{server.log_tail()}"
        )

        _resolve_every_key(client, ledger, key_owner, body)
        keys = {a.key for a in ledger.answers}
        grandma = _ok(client, "GET", f"/v1/accounts/{world['grandma']['id']}", ADMIN_TOKEN)
        assert grandma["balances"]["bean"] == len(keys), "an acknowledged donation was lost or one was doubled"
        for volunteer in world["volunteers"]:
            mine = sum(1 for key in keys if key_owner[key] == volunteer["token"])
            held = _ok(client, "GET", f"/v1/accounts/{volunteer['id']}", ADMIN_TOKEN)["balances"]["bean"]
            assert held == BEANS_EACH - mine
        assert server.process is not None and server.process.poll() is None, "the server restarted or died"
        _note_figures(ledger, health, during)


def _wait_for_health(client: httpx.Client) -> float:
    deadline = time.monotonic() + RECOVERY_WITHIN_S
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz", timeout=2).status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the service did not recover within {RECOVERY_WITHIN_S} s of the database's return")


def _resolve_every_key(client: httpx.Client, ledger: Ledger, key_owner: dict[str, str], body: dict[str, Any]) -> None:
    """Unacknowledged keys are retried with the same body: each applies at most once."""
    for _ in range(RETRY_ROUNDS_MAX):
        unresolved = ledger.unresolved()
        if not unresolved:
            return
        for key in sorted(unresolved):
            ledger.note(post(client, "/v1/donations", key_owner[key], body, key, timeout_s=30))
    raise AssertionError(f"keys still unresolved after {RETRY_ROUNDS_MAX} rounds: {sorted(ledger.unresolved())[:5]}")


def _note_figures(ledger: Ledger, health: Ledger, during: list[Answer]) -> None:
    """The figures docs/reliability.md quotes (pytest -s shows them)."""
    slowest = max(a.seconds for a in ledger.answers)
    print(f"\noutage: {len(ledger.answers)} writes ({len(during)} during the outage), slowest {slowest:.2f} s; "
          f"slowest /healthz {max(a.seconds for a in health.answers):.3f} s; "
          f"outcomes during: {sorted({(a.status, a.code) for a in during})}")
