"""Several server processes, each with its own group-committing writer, on one database.

Each process runs threads donating at once from its own volunteers to two beneficiaries that
every process shares, so groups that touch them at once collide across processes and fall
back to command-by-command retries, while groups that do not collide project themselves in their
own transaction. Afterwards: every acknowledged donation is in the ledger exactly once, nothing
recorded is left unprojected or projected twice, and the read model equals a replay from event 1.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from uuid import UUID, uuid4

import pytest

from domain.credentialing import IssueAccountToken
from domain.donating import Donate
from domain.errors import DomainError
from infra.settings import Settings
from infra.wiring import build_services
from projections import ledger
from tests.conftest import ADMIN_TOKEN
from tests.support import check_invariants, new_app_community

PROCESSES = 3
THREADS = 4
DONATIONS_PER_THREAD = 15
BEANS_EACH = THREADS * DONATIONS_PER_THREAD
BARRIER_TIMEOUT_S = 120  # spawned processes build their services first; a broken one must not hang CI

pytestmark = pytest.mark.backends("sqlite", "postgres")


def _donor_process(url: str, tokens: list[str], beneficiaries: list[str], ready: multiprocessing.synchronize.Barrier,
                   acknowledged: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    services = build_services(Settings(database_url=url, admin_token=ADMIN_TOKEN))
    donors = [services.app.authenticate(token) for token in tokens]
    ready.wait()
    done: list[str] = []

    def donate(thread: int) -> None:
        donor = donors[thread]
        assert donor is not None
        for number in range(DONATIONS_PER_THREAD):
            key = uuid4().hex
            to = UUID(beneficiaries[(thread + number) % len(beneficiaries)])
            try:
                services.app.execute(Donate(to_account_id=to, amount=1), donor, key)
            except DomainError as refusal:  # a 409 after exhausted retries is an honest "not done"
                assert refusal.code == "concurrency_conflict", refusal
                continue
            done.append(f"{donor.account_id} {to}")

    threads = [threading.Thread(target=donate, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    acknowledged.put(done)
    services.close()


def test_writer_processes_on_one_database_lose_and_double_nothing(database_url: str) -> None:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    community = new_app_community(services)
    beneficiaries = [str(community.open("beneficiary").account_id) for _ in range(2)]
    tokens: list[list[str]] = []
    for _ in range(PROCESSES):
        own = []
        for _ in range(THREADS):
            volunteer = community.open("volunteer")
            community.earn(volunteer, BEANS_EACH)
            own.append(volunteer)
        tokens.append([community.app.execute(IssueAccountToken(account_id=volunteer.account_id), community.staff)
                       .result["token"] for volunteer in own])
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PROCESSES, timeout=BARRIER_TIMEOUT_S)  # a process that failed to start fails the test, not hangs it
    acknowledged: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    processes = [context.Process(target=_donor_process, args=(database_url, own, beneficiaries, ready, acknowledged))
                 for own in tokens]
    for process in processes:
        process.start()
    done = [line for _ in processes for line in acknowledged.get(timeout=300)]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert len(done) > PROCESSES * THREADS * DONATIONS_PER_THREAD // 2, "most donations went through"

    services.projector.catch_up()
    assert services.projector.position == services.app.recorder.max_notification_id(), "every event is projected"
    with services.store.read() as cursor:
        received = {b: ledger.balances(cursor, b)["bean"] for b in beneficiaries}
    for beneficiary in beneficiaries:
        assert received[beneficiary] == sum(1 for line in done if line.endswith(beneficiary)), "each exactly once"
    check_invariants(services)  # Σ = 0, guarded balances equal the aggregates, projection == replay
    services.close()
