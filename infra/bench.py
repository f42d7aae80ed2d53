"""`jindou bench`: throughput and latency of the ledger's hot paths, with the yardsticks they are
judged against, taken side by side in one run (ratios hold on a noisy machine; absolute figures
do not). Each backend gets fresh databases. A table on stdout and the same figures as JSON.

In-process (one Python process, the application called directly):
- earn:       a volunteer's report submitted and verified (two commands, one mint)
- donate:     one volunteer → one beneficiary, sequential
- contend:    N threads donating from ONE volunteer at once (optimistic-concurrency retries)
- spread:     N threads donating, each from its own volunteer (no shared aggregate)
- sale:       a phone code issued and redeemed at a food merchant, then projected (balances,
              chain…): the till's hot path; SQL/op counts the statements it sent
- sale-busy:  N threads selling at once, each with its own printed card (what a busy till line
              looks like to the writer: its groups); SQL/op counts statements per sale
- naive-save: the library's textbook transfer (load two aggregates, one save()) — the yardstick
- insert:     (PostgreSQL) pgbench-style single-row INSERTs, one durable commit each — the floor
- replay:     every projection rebuilt from event 1 into a scratch store (events/s)
- verify:     `jindou audit verify`'s chain check; scan+sha: a plain scan + SHA-256 of every event (each
              the median of three runs, taken in turns)
Over real HTTP, from a separate client process, against `jindou serve` in its own process:
- http-N:     printed-card sales (one POST /v1/redemptions each) from N concurrent clients
- ref-N:      the same load on a minimal FastAPI endpoint doing 1 UPDATE + 1 INSERT through a pool
              like Jindou's (infra/bench_reference.py) on the same database — the yardstick
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from domain.application import Jindou
from domain.bus import Actor
from domain.community import AWARD_MAX, DEFAULT_TIMEZONE
from domain.donating import Donate
from domain.earning import SubmitReport, VerifyReport
from domain.paying import IssueAllowances, IssueCard, IssuePaymentCode, Redeem
from domain.payments import CARD_DAILY_LIMIT_MAX
from domain.people import OpenAccount, RegisterCommunity, RegisterStaff
from domain.periods import period_of
from infra.audit import verify_chain
from infra.bench_plot import plot
from infra.cpu_use import (
    database_seconds,
    machine_busy_seconds,
    process_tree_seconds,
    waited_children_seconds,
)
from infra.settings import Settings, persistence_env
from infra.wiring import Services, build_services, memory_read_store
from projections.projector import Projector
from projections.registry import all_projections

BENCH_ADMIN_TOKEN = "bench-admin"
HTTP_CLIENT_LEVELS = (1, 16, 64)
SERVER_START_TIMEOUT_S = 120  # a server catches its read model up before it answers
LOAD_TIMEOUT_S = 600
VERIFY_ROUNDS = 3  # verify and the plain scan, alternating; the median of each
DEFAULT_OUTPUT = "jindou-bench.json"


@dataclass(frozen=True)
class Measurement:
    backend: str
    name: str
    operations: int
    seconds: float
    latencies_ms: list[float]
    errors: int = 0
    statements_per_operation: float | None = None  # counted where the run was in this process
    # Jindou's HTTP runs on one server process: the share of the run its writer spent on groups,
    # and the share its thread spent on CPU (GET /metrics, decision 0026)
    writer: tuple[float, float] | None = None
    cpu: CpuUse | None = None  # HTTP runs: what each process spent on a request

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds else float("inf")

    @property
    def p50_ms(self) -> float | None:  # None where single operations are not timed (replay, verify)
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def p99_ms(self) -> float | None:
        return _percentile(self.latencies_ms, 0.99) if self.latencies_ms else None

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "run": self.name, "operations": self.operations, "seconds": self.seconds,
                "per_second": self.rate, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "errors": self.errors,
                "statements_per_operation": self.statements_per_operation,
                "writer_busy": None if self.writer is None else self.writer[0],
                "writer_cpu": None if self.writer is None else self.writer[1],
                **(CpuUse(None, None, None, None) if self.cpu is None else self.cpu)._asdict()}


class CpuUse(NamedTuple):
    """What an HTTP run cost each side, per request answered: CPU in microseconds of the server's
    process (and its workers), of the machine's PostgreSQL processes (None: the database is not
    on this machine, or is SQLite inside the server) and of the load generator; and how many of
    the machine's cores were busy, on average, meanwhile. None where /proc cannot tell."""
    server_cpu_us: float | None
    database_cpu_us: float | None
    load_cpu_us: float | None
    machine_cores_busy: float | None


def _percentile(values: list[float], fraction: float) -> float:
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
        self.app, self.admin = app, admin
        community = app.execute(RegisterCommunity(name="金沙社区"), admin).result
        self.community_id = UUID(community["id"])
        staff = RegisterStaff(community_id=self.community_id, display_name="社区工作人员", role="staff")
        self.staff = self._actor(app.execute(staff, admin).result["token"])
        self.volunteers = [self._open(admin, "volunteer", f"金豆哥{i}") for i in range(volunteers)]
        self.beneficiary = self._open(admin, "beneficiary", "李奶奶")
        self.merchant = self._open(admin, "merchant", "金豆小吃店", merchant_categories=("meal",))

    def _actor(self, token: str) -> Actor:
        actor = self.app.authenticate(token)
        assert actor is not None
        return actor

    def _open(self, admin: Actor, kind: str, name: str, merchant_categories: tuple[str, ...] | None = None) -> Actor:
        opening = OpenAccount(community_id=self.community_id, kind=kind, display_name=name,
                              merchant_categories=merchant_categories)
        return self._actor(self.app.execute(opening, admin).result["token"])

    def earn(self, volunteer: Actor, beans: int) -> None:
        for award in _awards(beans):
            report = self.app.execute(SubmitReport(category="fire", description="金夏苑14幢阳台着火"), volunteer).result
            self.app.execute(VerifyReport(report_id=UUID(report["id"]), award=award), self.staff)

    def donate(self, volunteer: Actor, amount: int = 1) -> None:
        self.app.execute(Donate(to_account_id=self.beneficiary.account_id, amount=amount), volunteer)

    def funded_cards(self, count: int, units: int) -> list[str]:
        """`count` beneficiaries of this month's welfare, `units` each, with a printed card each."""
        elders = [self._open(self.admin, "beneficiary", f"老人{number}") for number in range(count)]
        period = period_of(self.app.now(), DEFAULT_TIMEZONE)
        self.app.execute(IssueAllowances(community_id=self.community_id, period=period, amount_per_beneficiary=units,
                                         beneficiary_ids=tuple(elder.account_id for elder in elders)), self.staff)
        return [self.app.execute(IssueCard(account_id=elder.account_id, daily_limit=CARD_DAILY_LIMIT_MAX),
                                 self.staff).result["card_code"] for elder in elders]

    def card_sale(self, card: str, amount: int = 1) -> None:
        key = uuid4().hex
        self.app.execute(Redeem(payment_code=card, amount=amount, sale_key=key), self.merchant, key)

    def sale(self, customer: Actor, amount: int = 12) -> None:
        code = self.app.execute(IssuePaymentCode(account_id=customer.account_id), customer).result["code"]
        key = uuid4().hex
        self.app.execute(Redeem(payment_code=code, amount=amount, sale_key=key), self.merchant, key)


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


class NaiveAccount(Aggregate):
    """The yardstick for the in-process sale: the library's textbook transfer, nothing else."""

    def __init__(self, balance: int) -> None:
        self.balance = balance

    @event("Debited")
    def debit(self, amount: int) -> None:
        self.balance -= amount

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount


class NaiveBank(Application[UUID]):
    def transfer(self, from_id: UUID, to_id: UUID, amount: int) -> None:
        source, target = self.repository.get(from_id), self.repository.get(to_id)
        assert source.balance >= amount
        source.debit(amount)
        target.credit(amount)
        self.save(source, target)


def _naive_loop(label: str, url: str, operations: int) -> Measurement:
    """One save() of two aggregates per transfer, on a database of its own (SQLite names its
    tables without the application's prefix, so it must not share Jindou's file)."""
    with _database(url if url.startswith("postgres") else ("sqlite" if url.startswith("sqlite") else url)) as own:
        bank = NaiveBank(env=persistence_env(own) | {"AGGREGATE_CACHE_MAXSIZE": "0"})
        try:
            source, target = NaiveAccount(balance=operations), NaiveAccount(balance=0)
            bank.save(source, target)
            with counted_statements() as counts:
                seconds, latencies = _timed(operations, lambda i: bank.transfer(source.id, target.id, 1))
        finally:
            bank.close()
    return Measurement(label, "naive-save", operations, seconds, latencies,
                       statements_per_operation=counts["statements"] / operations)


@contextmanager
def counted_statements() -> Iterator[dict[str, int]]:
    """Count the SQL statements this process sends (psycopg and the library's SQLite cursor)."""
    import psycopg
    from eventsourcing.sqlite import SQLiteCursor

    counts = {"statements": 0}
    patched = [(cls, name, getattr(cls, name)) for cls in (psycopg.Cursor, SQLiteCursor)
               for name in ("execute", "executemany")]

    def counting(original: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            counts["statements"] += 1
            return original(*args, **kwargs)
        return wrapper

    for cls, name, original in patched:
        setattr(cls, name, counting(original))
    try:
        yield counts
    finally:
        for cls, name, original in patched:
            setattr(cls, name, original)


def _raw_inserts(label: str, url: str, operations: int) -> Measurement | None:
    """pgbench-style: one single-row INSERT per durable commit, the floor under any write."""
    if not url.startswith("postgres"):
        return None
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_inserts (id BIGSERIAL PRIMARY KEY, amount INTEGER)")
        seconds, latencies = _timed(operations, lambda i: connection.execute(
            "INSERT INTO bench_inserts (amount) VALUES (%s)", (i,)))
        connection.execute("DROP TABLE bench_inserts")
    return Measurement(label, "insert", operations, seconds, latencies)


def _plain_scan(app: Jindou) -> tuple[int, float]:
    """Read every stored event in pages and SHA-256 it: what verify cannot beat."""
    started, position, events = time.perf_counter(), 0, 0
    while batch := app.recorder.select_notifications(start=position, limit=1_000, inclusive_of_start=False):
        for notification in batch:
            hashlib.sha256(notification.state).digest()
        events += len(batch)
        position = batch[-1].id
    return events, time.perf_counter() - started


def bench_backend(label: str, url: str, services: Services, operations: int, threads: int) -> list[Measurement]:
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
    services.projector.catch_up()

    def projected_sale(i: int) -> None:  # as a request does: decide, record, project
        community.sale(buyer)
        services.projector.catch_up()

    with counted_statements() as counts:
        seconds, lat = _timed(operations, projected_sale)
    results.append(Measurement(label, "sale", operations, seconds, lat,
                               statements_per_operation=counts["statements"] / operations))
    cards = community.funded_cards(threads, per_thread)
    with counted_statements() as counts:
        seconds, lat = _threaded(threads, per_thread, lambda t, i: community.card_sale(cards[t]))
    results.append(Measurement(label, "sale-busy", per_thread * threads, seconds, lat,
                               statements_per_operation=counts["statements"] / (per_thread * threads)))
    results.append(_naive_loop(label, url, operations))
    if inserts := _raw_inserts(label, url, operations):
        results.append(inserts)

    services.projector.catch_up()
    scratch = Projector(app, memory_read_store(), all_projections())
    scratch.create_tables()
    started = time.perf_counter()
    events = scratch.catch_up()
    results.append(Measurement(label, "replay", events, time.perf_counter() - started, []))
    scratch.store.close()

    verify_seconds, scan_seconds = [], []
    for _ in range(VERIFY_ROUNDS):  # tens of milliseconds each: one run of either is at the box's mercy
        started = time.perf_counter()
        verified = verify_chain(app, services.store)
        verify_seconds.append(time.perf_counter() - started)
        scanned, seconds = _plain_scan(app)
        scan_seconds.append(seconds)
    results.append(Measurement(label, "verify", verified.events_checked, statistics.median(verify_seconds), []))
    results.append(Measurement(label, "scan+sha", scanned, statistics.median(scan_seconds), []))
    return results


# --- over real HTTP, from a separate client process ---------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Served(NamedTuple):
    base: str
    pid: int


@contextmanager
def _server(command: list[str], env: dict[str, str]) -> Iterator[_Served]:
    """A server process on a free loopback port, up when /healthz answers; stopped afterwards."""
    port = _free_port()
    process = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=os.environ | env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read() if process.stderr else ''}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.1)
        yield _Served(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _load(spec: dict[str, object]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "infra.bench_load", json.dumps(spec)], capture_output=True,
                          text=True, check=True, timeout=LOAD_TIMEOUT_S)
    result: dict[str, object] = json.loads(done.stdout)
    return result


class _CpuReading(NamedTuple):
    at: float
    server: float | None
    database: float | None
    load: float | None  # this process's waited-for children: the load generators run so far
    machine: float | None

    @classmethod
    def now(cls, server_pid: int, database_here: bool) -> _CpuReading:
        return cls(time.perf_counter(), process_tree_seconds(server_pid),
                   database_seconds() if database_here else None, waited_children_seconds(), machine_busy_seconds())


def _load_costed(spec: dict[str, object], server_pid: int, database_here: bool) -> tuple[dict[str, object], CpuUse]:
    """`_load`, and what it cost each process per request. The load generator's own start is in
    its figure; nothing else the bench runs is, since the bench waits for the load meanwhile."""
    before = _CpuReading.now(server_pid, database_here)
    load = _load(spec)
    after = _CpuReading.now(server_pid, database_here)
    answered = len(load["latencies_ms"])  # type: ignore[arg-type]

    def per_request(spent: float | None, was: float | None) -> float | None:
        return None if spent is None or was is None or not answered else (spent - was) / answered * 1e6

    machine = None if after.machine is None or before.machine is None else (
        (after.machine - before.machine) / (after.at - before.at))
    return load, CpuUse(per_request(after.server, before.server), per_request(after.database, before.database),
                        per_request(after.load, before.load), machine)


def _database_here(url: str) -> bool:
    """PostgreSQL on this machine, whose processes' CPU /proc can read."""
    return url.startswith("postgres") and urlsplit(url).hostname in (None, "", "localhost", "127.0.0.1", "::1")


def _cards_for(base: str, clients: int, sales_per_card: int) -> tuple[str, list[str]]:
    """Through the public API of the served Jindou: a merchant, and one beneficiary's printed card
    per client, each funded by a volunteer's donations."""
    with httpx.Client(base_url=base, timeout=30) as client:
        def post(path: str, token: str, body: dict[str, object]) -> dict[str, object]:
            response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()
            answer: dict[str, object] = response.json()
            return answer

        community = str(post("/v1/communities", BENCH_ADMIN_TOKEN, {"name": "金沙社区"})["id"])
        staff = str(post("/v1/staff", BENCH_ADMIN_TOKEN, {"community_id": community, "display_name": "李明",
                                                          "role": "staff"})["token"])

        def account(kind: str, name: str, **fields: object) -> dict[str, object]:
            return post("/v1/accounts", BENCH_ADMIN_TOKEN, {"community_id": community, "kind": kind,
                                                            "display_name": name, **fields})

        volunteer = account("volunteer", "丰国兆")
        merchant = account("merchant", "金豆小吃店", merchant_categories=["meal"])
        for award in _awards(clients * sales_per_card):
            report = post("/v1/reports", str(volunteer["token"]), {"category": "fire", "description": "阳台着火"})
            post(f"/v1/reports/{report['id']}/verify", staff, {"award": award})
        cards = []
        for number in range(clients):
            elder = account("beneficiary", f"老人{number}")
            cards.append(str(post(f"/v1/accounts/{elder['id']}/cards", staff, {"daily_limit": CARD_DAILY_LIMIT_MAX})
                             ["card_code"]))
            post("/v1/donations", str(volunteer["token"]), {"to_account_id": elder["id"], "amount": sales_per_card})
    return str(merchant["token"]), cards


def bench_http(label: str, url: str, requests: int, levels: Sequence[int], workers: int = 1) -> list[Measurement]:
    """Card sales (one POST /v1/redemptions each) at each number of concurrent clients, and the same
    load on the reference endpoint, taken in turns in one run so the ratios hold on a noisy box."""
    results: list[Measurement] = []
    per_client = {clients: max(1, requests // clients) for clients in levels}
    sales_per_card = sum(per_client.values())  # card i serves client i at every level
    processes = 1 if url.startswith("memory") else workers  # memory:// is one process
    serve = [sys.executable, "-m", "api.cli", "serve", "--database-url", url, "--log-level", "warning",
             "--workers", str(processes)]
    reference_url = url if not url.startswith("sqlite") else url + "-reference"
    database_here = _database_here(url)
    with _signing_key() as key, _server(serve, {"JINDOU_ADMIN_TOKEN": BENCH_ADMIN_TOKEN,
                                                 "JINDOU_TRANSPARENCY_KEY_FILE": key}) as jindou:
        merchant_token, cards = _cards_for(jindou.base, max(levels), sales_per_card)
        reference_server = contextlib.nullcontext(None) if url.startswith("memory") else _server(
            [sys.executable, "-m", "uvicorn", "infra.bench_reference:app", "--log-level", "warning"],
            {"JINDOU_REFERENCE_DATABASE_URL": reference_url})
        with reference_server as reference:
            for clients in levels:
                spec = {"base_url": jindou.base, "path": "/v1/redemptions", "clients": clients,
                        "requests_per_client": per_client[clients], "key_prefix": f"bench-{uuid4().hex}",
                        "headers": {"Authorization": f"Bearer {merchant_token}"},
                        "bodies": [{"payment_code": card, "amount": 1} for card in cards[:clients]]}
                before = _writer_seconds(jindou.base)
                load, cpu = _load_costed(spec, jindou.pid, database_here)
                after = _writer_seconds(jindou.base)
                between = after.answered - before.asked  # both readings lie within it
                writer = None if processes > 1 else (  # /metrics answers for one process only
                    (after.seconds - before.seconds) / between, (after.cpu - before.cpu) / between)
                results.append(_measured(label, f"http-{clients}", load, cpu, writer))
                if reference is not None:
                    spec = {"base_url": reference.base, "path": "/sale", "clients": clients,
                            "requests_per_client": per_client[clients], "headers": {},
                            "bodies": [{"account_id": i, "amount": 1} for i in range(clients)]}
                    results.append(_measured(label, f"ref-{clients}", *_load_costed(spec, reference.pid, database_here)))
    return results


def _measured(label: str, name: str, load: dict[str, object], cpu: CpuUse,
              writer: tuple[float, float] | None = None) -> Measurement:
    latencies = [float(v) for v in load["latencies_ms"]]  # type: ignore[attr-defined]
    return Measurement(label, name, len(latencies), float(load["seconds"]), latencies,  # type: ignore[arg-type]
                       errors=int(load["errors"]), writer=writer, cpu=cpu)  # type: ignore[call-overload]


class _WriterSeconds(NamedTuple):
    asked: float
    answered: float
    seconds: float  # the writer's time on groups since the server started
    cpu: float  # its thread's CPU in that time


def _writer_seconds(base: str) -> _WriterSeconds:
    """The server's metrics of its writer, and when they were asked for and answered."""
    asked = time.perf_counter()
    lines = httpx.get(base + "/metrics", timeout=30).text.splitlines()
    answered = time.perf_counter()
    values = dict(line.split() for line in lines if line.startswith(("jindou_writer_seconds ", "jindou_writer_cpu_seconds ")))
    return _WriterSeconds(asked, answered, float(values["jindou_writer_seconds"]), float(values["jindou_writer_cpu_seconds"]))


# --- the command -------------------------------------------------------------------------------

@contextmanager
def _signing_key() -> Iterator[str]:
    """A transparency signing key file of the bench's own, gone afterwards: never the deployment's
    default (`./jindou-signing.key` on PostgreSQL) wherever the bench was started."""
    with tempfile.TemporaryDirectory(prefix="jindou-bench-key-") as folder:
        yield str(Path(folder) / "signing.key")


@contextmanager
def _database(url: str) -> Iterator[str]:
    """A fresh database for one backend: a temporary SQLite file or a new PostgreSQL database."""
    if url == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
    elif url.startswith("postgres"):
        import psycopg

        name = f"jindou_bench_{os.getpid()}_{uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.rsplit("/", 1)[0] + "/" + name
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        yield url


def ratios(results: Sequence[Measurement]) -> list[tuple[str, str, float]]:
    """(backend, what, ratio) for each pair the issue of performance is judged by."""
    rates = {(m.backend, m.name): m.rate for m in results}
    pairs = [("sale", "naive-save", "in-process sale / naive one-save loop"),
             ("sale-busy", "naive-save", "in-process card sales, N threads / naive one-save loop"),
             ("verify", "scan+sha", "verify / plain scan + SHA-256")]
    levels = dict.fromkeys(m.name.removeprefix("http-") for m in results if m.name.startswith("http-"))
    pairs += [(f"http-{n}", f"ref-{n}", f"HTTP card sales / reference endpoint, {n} clients") for n in levels]
    found = []
    for backend in dict.fromkeys(m.backend for m in results):
        for ours, theirs, what in pairs:
            if (backend, ours) in rates and (backend, theirs) in rates and rates[(backend, theirs)]:
                found.append((backend, what, rates[(backend, ours)] / rates[(backend, theirs)]))
    return found


def run_bench(args: argparse.Namespace) -> int:
    targets = list(args.database_urls or ["memory://", "sqlite"])
    if not args.database_urls and os.environ.get("JINDOU_BENCH_POSTGRES_URL"):
        targets.append(os.environ["JINDOU_BENCH_POSTGRES_URL"])
    levels = tuple(getattr(args, "http_clients", None) or HTTP_CLIENT_LEVELS)
    console = Console()
    console.print(f"jindou bench: {args.operations} operations per in-process run, {args.threads} threads for "
                  f"contend/spread, {args.http_requests} HTTP requests per level at {', '.join(map(str, levels))} clients")
    results: list[Measurement] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("bench", total=len(targets) * 2)
        for target in targets:
            with _database(target) as url:
                label = Settings(database_url=url).backend
                with _signing_key() as key:
                    services = build_services(Settings(database_url=url, admin_token=BENCH_ADMIN_TOKEN,
                                                       transparency_key_file=key))
                    try:
                        results += bench_backend(label, url, services, args.operations, args.threads)
                    finally:
                        services.close()
                progress.advance(task)
            with _database(target) as url:
                results += bench_http(label, url, args.http_requests, levels, getattr(args, "server_workers", 1))
                progress.advance(task)
    console.print(_table(results))
    for backend, what, ratio in ratios(results):
        console.print(f"{backend:<9} {what}: [bold]{ratio:.2f}×[/bold]")
    for m in results:
        if m.writer is not None:
            console.print(f"{m.backend:<9} {m.name}: the writer on groups {m.writer[0]:.0%} of the run, "
                          f"on CPU {m.writer[1]:.0%}")
    for m in results:
        if m.cpu is not None and m.cpu.server_cpu_us is not None:
            console.print(f"{m.backend:<9} {m.name}: CPU a request: {_cpu_line(m.cpu)}", soft_wrap=True)
    output = Path(args.output)
    output.write_text(json.dumps({"results": [m.as_json() for m in results],
                                  "ratios": [{"backend": b, "what": w, "ratio": r} for b, w, r in ratios(results)]},
                                 indent=2, ensure_ascii=False))
    plotted = Path(getattr(args, "plot", None) or output.with_suffix(".svg"))
    plotted.write_text(plot(results))
    console.print(f"written to {output} and {plotted}")
    return 0


def _cpu_line(cpu: CpuUse) -> str:
    def us(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f} µs"

    busy = "" if cpu.machine_cores_busy is None else f"; the machine {cpu.machine_cores_busy:.2f} cores busy"
    return (f"server {us(cpu.server_cpu_us)}, database {us(cpu.database_cpu_us)}, "
            f"load generator {us(cpu.load_cpu_us)}{busy}")


def _table(results: Sequence[Measurement]) -> Table:
    table = Table(title="jindou bench")
    for column in ("backend", "run", "ops"):
        table.add_column(column)
    for column in ("ops/s", "p50 ms", "p99 ms", "errors", "SQL/op"):
        table.add_column(column, justify="right")
    for m in results:
        p50, p99, sql = m.p50_ms, m.p99_ms, m.statements_per_operation
        table.add_row(m.backend, m.name, str(m.operations), f"{m.rate:,.0f}",
                      "—" if p50 is None else f"{p50:.2f}", "—" if p99 is None else f"{p99:.2f}",
                      str(m.errors), "—" if sql is None else f"{sql:.1f}")
    return table
