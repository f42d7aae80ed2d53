"""`jindou bench`: throughput and latency of the ledger's hot paths, measured in-process.

Each backend gets a fresh database. Figures are printed as a table; nothing is asserted (timed
assertions belong to no test). Measurements:

- earn:     a volunteer's report submitted and verified (two commands, one mint)
- donate:   one volunteer → one beneficiary, sequential
- contend:  N threads donating from ONE volunteer at once (optimistic-concurrency retries)
- spread:   N threads donating, each from its own volunteer (no shared aggregate)
- sale:     a phone code issued and redeemed at a food merchant (the till's hot path)
- http:     the same sale over real HTTP on loopback (uvicorn, httpx): code, sale, receipt read
- replay:   every projection rebuilt from event 1 into a scratch store (events/s)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID, uuid4

from domain.application import Jindou
from domain.base import Actor, IdempotencyKey
from domain.community import AWARD_MAX
from infra.settings import Settings
from infra.wiring import Services, build_services, memory_read_store
from projections.projector import Projector
from projections.registry import all_projections

BENCH_ADMIN_TOKEN = "bench-admin"


@dataclass(frozen=True)
class Measurement:
    backend: str
    name: str
    operations: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds else float("inf")

    def row(self) -> str:
        p50 = statistics.median(self.latencies_ms) if self.latencies_ms else 0.0
        p99 = _percentile(self.latencies_ms, 0.99)
        return f"{self.backend:<9} {self.name:<10} {self.operations:>8} {self.rate:>12.0f} {p50:>9.2f} {p99:>9.2f}"


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _awards(beans: int) -> list[int]:
    """`beans` split into report awards no larger than one report may earn."""
    return [min(AWARD_MAX, beans - start) for start in range(0, beans, AWARD_MAX)]


class Community:
    """A community with staff, volunteers and a beneficiary, set up through the application."""

    def __init__(self, app: Jindou, volunteers: int) -> None:
        admin = app.authenticate(BENCH_ADMIN_TOKEN)
        assert admin is not None
        self.app = app
        community = app.register_community(admin, name="金沙社区").result
        self.community_id = UUID(community["id"])
        self.staff = self._actor(app.register_staff(admin, community_id=self.community_id, display_name="社区工作人员",
                                                    role="staff").result["token"])
        self.volunteers = [self._open(admin, "volunteer", f"金豆哥{i}") for i in range(volunteers)]
        self.beneficiary = self._open(admin, "beneficiary", "李奶奶")
        self.merchant = self._open(admin, "merchant", "金豆小吃店", merchant_categories=["meal"])

    def _actor(self, token: str) -> Actor:
        actor = self.app.authenticate(token)
        assert actor is not None
        return actor

    def _open(self, admin: Actor, kind: str, name: str, **fields: list[str]) -> Actor:
        token = self.app.open_account(
            admin, community_id=self.community_id, kind=kind, display_name=name, **fields
        ).result["token"]
        return self._actor(token)

    def earn(self, volunteer: Actor, beans: int) -> None:
        for award in _awards(beans):
            report = self.app.submit_report(volunteer, category="fire", description="金夏苑14幢阳台着火").result
            self.app.verify_report(self.staff, UUID(report["id"]), award=award)

    def donate(self, volunteer: Actor, amount: int = 1) -> None:
        self.app.donate(volunteer, to_account_id=self.beneficiary.account_id, amount=amount)

    def sale(self, customer: Actor, amount: int = 12) -> None:
        code = self.app.issue_payment_code(customer, customer.account_id).result["code"]
        key = IdempotencyKey(principal_id=self.merchant.principal_id, key=uuid4().hex, request_hash="bench")
        self.app.redeem(self.merchant, payment_code=code, amount=amount, idempotency=key)


def _timed(operations: int, action: Callable[[int], None]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(operations):
        t0 = time.perf_counter()
        action(i)
        latencies.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - started, latencies


def _threaded(threads: int, per_thread: int, action: Callable[[int, int], None]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(t: int) -> None:
        mine: list[float] = []
        barrier.wait()
        for i in range(per_thread):
            t0 = time.perf_counter()
            action(t, i)
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - started, latencies


def bench_backend(label: str, services: Services, operations: int, threads: int) -> list[Measurement]:
    app = services.app
    community = Community(app, volunteers=threads + 1)
    results: list[Measurement] = []
    first = community.volunteers[0]

    seconds, lat = _timed(operations, lambda i: community.earn(first, 5))
    results.append(Measurement(label, "earn", operations, seconds, lat))

    seconds, lat = _timed(operations, lambda i: community.donate(first))
    results.append(Measurement(label, "donate", operations, seconds, lat))

    per_thread = max(1, operations // threads)
    shared = community.volunteers[1]
    community.earn(shared, per_thread * threads)
    seconds, lat = _threaded(threads, per_thread, lambda t, i: community.donate(shared))
    results.append(Measurement(label, "contend", per_thread * threads, seconds, lat))

    own = community.volunteers[1:threads + 1]
    for volunteer in own:
        community.earn(volunteer, per_thread)
    seconds, lat = _threaded(threads, per_thread, lambda t, i: community.donate(own[t]))
    results.append(Measurement(label, "spread", per_thread * threads, seconds, lat))

    buyer = community.volunteers[-1]
    community.earn(buyer, 12 * operations)
    seconds, lat = _timed(operations, lambda i: community.sale(buyer))
    results.append(Measurement(label, "sale", operations, seconds, lat))

    results.append(_http_sales(label, services, max(1, operations // 4)))

    services.projector.catch_up()
    scratch = Projector(app, memory_read_store(), all_projections())
    scratch.create_tables()
    started = time.perf_counter()
    events = scratch.catch_up()
    results.append(Measurement(label, "replay", events, time.perf_counter() - started, []))
    scratch.store.close()
    return results


def _http_sales(label: str, services: Services, operations: int) -> Measurement:
    """Sales over real HTTP on loopback: the wallet asks for a code, the till redeems it and the
    wallet reads its balance (which must already show the sale)."""
    import httpx
    import uvicorn

    from api.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            admin = {"Authorization": f"Bearer {BENCH_ADMIN_TOKEN}"}
            community_id = client.post("/v1/communities", json={"name": "金沙社区"}, headers=admin).json()["id"]
            staff = client.post("/v1/staff", json={"community_id": community_id, "display_name": "李明", "role": "staff"},
                                headers=admin).json()
            buyer = client.post("/v1/accounts", json={"community_id": community_id, "kind": "volunteer",
                                                      "display_name": "丰国兆"}, headers=admin).json()
            shop = client.post("/v1/accounts", json={"community_id": community_id, "kind": "merchant",
                                                     "display_name": "金豆小吃店", "merchant_categories": ["meal"]},
                               headers=admin).json()
            for award in _awards(12 * operations):
                report = client.post("/v1/reports", json={"category": "fire", "description": "阳台着火"},
                                     headers={"Authorization": f"Bearer {buyer['token']}"}).json()
                client.post(f"/v1/reports/{report['id']}/verify", json={"award": award},
                            headers={"Authorization": f"Bearer {staff['token']}"}).raise_for_status()
            wallet = {"Authorization": f"Bearer {buyer['token']}"}

            def sale(i: int) -> None:
                code = client.post(f"/v1/accounts/{buyer['id']}/payment-codes", headers=wallet).json()["code"]
                client.post("/v1/redemptions", json={"payment_code": code, "amount": 12},
                            headers={"Authorization": f"Bearer {shop['token']}", "Idempotency-Key": uuid4().hex}
                            ).raise_for_status()
                balance = client.get(f"/v1/accounts/{buyer['id']}", headers=wallet).json()["balances"]["bean"]
                assert balance == 12 * (operations - i - 1), "read-your-writes"

            seconds, latencies = _timed(operations, sale)
    finally:
        server.should_exit = True
        thread.join()
    return Measurement(label, "http", operations, seconds, latencies)


@contextmanager
def _database(url: str) -> Iterator[str]:
    """A fresh database for one backend: a temporary SQLite file or a new PostgreSQL database."""
    if url == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
    elif url.startswith("postgres"):
        import psycopg

        name = f"jindou_bench_{os.getpid()}_{int(time.time())}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.rsplit("/", 1)[0] + "/" + name
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        yield url


def run_bench(args: argparse.Namespace) -> int:
    targets = args.database_urls or ["memory://", "sqlite"]
    if not args.database_urls and os.environ.get("JINDOU_BENCH_POSTGRES_URL"):
        targets.append(os.environ["JINDOU_BENCH_POSTGRES_URL"])
    print(f"jindou bench: {args.operations} operations per run, {args.threads} threads for contend/spread", flush=True)
    print(f"{'backend':<9} {'run':<10} {'ops':>8} {'ops/s':>12} {'p50 ms':>9} {'p99 ms':>9}")
    for target in targets:
        with _database(target) as url:
            label = Settings(database_url=url).backend
            services = build_services(Settings(database_url=url, admin_token=BENCH_ADMIN_TOKEN))
            try:
                for measurement in bench_backend(label, services, args.operations, args.threads):
                    print(measurement.row(), flush=True)
            finally:
                services.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_bench(argparse.Namespace(database_urls=None, operations=500, threads=4)))
