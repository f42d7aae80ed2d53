"""Attack suite: kill -9 the server under load, again and again.

`jindou serve` runs on PostgreSQL (a fresh database on the shared server) while writers donate
one bean at a time, each under its own Idempotency-Key, noting which were acknowledged. The
server is killed with SIGKILL at random moments at least KILLS times and started again. Then:
every acknowledged write is there exactly once, every unacknowledged key retried with the same
body is applied at most once, and `jindou audit verify` and `jindou audit replay` are clean.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Any

import httpx
import pytest

from tests.attack_support import Ledger, post, retry_until_answered, served
from tests.conftest import PostgresDatabase, require_postgres
from tests.test_attack_outage import BEANS_EACH, RETRY_ROUNDS_MAX, _ok, _world

pytestmark = [pytest.mark.attack, pytest.mark.postgres]

ADMIN_TOKEN = "outage-admin-token"  # the world builder's
KILLS = 5
RUN_BETWEEN_KILLS_S = (0.5, 1.5)  # random, so a kill lands anywhere in a request


@pytest.fixture
def fresh_postgres_url() -> Any:
    require_postgres()
    database = PostgresDatabase()
    database.create()
    try:
        yield database.url
    finally:
        database.drop()


def test_kill_9_under_load_loses_and_doubles_nothing(fresh_postgres_url: str, tmp_path) -> None:
    rng = random.Random(10)
    with served(fresh_postgres_url, ADMIN_TOKEN, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        world = _world(client)
        body = {"to_account_id": world["grandma"]["id"], "amount": 1}
        ledger = Ledger()
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

        threads = [threading.Thread(target=write, args=(v,)) for v in world["volunteers"]]
        for thread in threads:
            thread.start()
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(*RUN_BETWEEN_KILLS_S))
                server.kill()
                server.start()
            time.sleep(RUN_BETWEEN_KILLS_S[1])
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

        acknowledged_before_retries = ledger.acknowledged()
        cut = [a for a in ledger.answers if a.status == 0 or a.status >= 500]
        for _ in range(RETRY_ROUNDS_MAX):
            if not ledger.unresolved():
                break
            for key in sorted(ledger.unresolved()):
                ledger.note(post(client, "/v1/donations", key_owner[key], body, key, timeout_s=30))
        assert not ledger.unresolved()
        keys = {a.key for a in ledger.answers}
        assert acknowledged_before_retries <= keys
        grandma = _ok(client, "GET", f"/v1/accounts/{world['grandma']['id']}", ADMIN_TOKEN)
        assert grandma["balances"]["bean"] == len(keys), "an acknowledged donation was lost or one was doubled"
        for volunteer in world["volunteers"]:
            mine = sum(1 for key in keys if key_owner[key] == volunteer["token"])
            assert _ok(client, "GET", f"/v1/accounts/{volunteer['id']}", ADMIN_TOKEN)["balances"]["bean"] == BEANS_EACH - mine
        print(f"\nkill -9: {KILLS} kills, {len(keys)} keys, {len(acknowledged_before_retries)} acknowledged under load, "
              f"{len(cut)} answers cut or 5xx, all resolved by retrying the same key")

    for command in ("verify", "replay"):
        result = server.command("audit", command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert result.stdout.startswith("OK"), result.stdout
