"""Races with real threads (and real processes): spending the same beans at once, and the same
Idempotency-Key sent at once. Exactly the affordable donations succeed, the rest get 409
`insufficient_funds`, nothing is lost or made twice, and the ledger's invariants hold after.

Threads go through HTTP, one TestClient each over one FastAPI app (one process). Processes
each build their own application over the same database, as several server processes would:
there the optimistic-concurrency retry, not any in-process serialisation, keeps the ledger
exact.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from domain.donating import Donate
from domain.errors import DomainError
from domain.people import OpenAccount, RegisterStaff
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.support import AppCommunity, check_invariants, new_app_community, new_key

THREADS = 12
AFFORDABLE = 5  # the volunteer holds beans for exactly this many donations
DONATION_BEANS = 10
PROCESSES = 3
DONATIONS_PER_PROCESS = 6
START_TIMEOUT_S = 60


def run_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on `count` threads released together; return their results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=START_TIMEOUT_S)
            results[index] = work(index)
        except BaseException as error:  # noqa: BLE001 — reported below, with the thread's own traceback
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=START_TIMEOUT_S * 2)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    if errors:
        raise errors[0]
    return results


def post_from_own_client(app: FastAPI, path: str, token: str, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    with TestClient(app) as client:
        return client.post(path, json=body, headers=headers)


def volunteer_and_beneficiary(services: Services, beans: int) -> tuple[AppCommunity, dict[str, Any], dict[str, Any]]:
    community = new_app_community(services)
    volunteer = community.app.execute(OpenAccount(community_id=community.id, kind="volunteer", display_name="金豆哥"),
                                      community.staff).result
    beneficiary = community.app.execute(
        OpenAccount(community_id=community.id, kind="beneficiary", display_name="李奶奶"), community.staff).result
    community.earn(community.actor(volunteer["token"]), beans)
    return community, volunteer, beneficiary


@pytest.mark.backends("memory", "sqlite", "postgres")
def test_threads_spending_the_same_beans_exactly_the_affordable_ones_succeed(services: Services) -> None:
    community, volunteer, beneficiary = volunteer_and_beneficiary(services, AFFORDABLE * DONATION_BEANS)
    app = create_app(services)
    body = {"to_account_id": beneficiary["id"], "amount": DONATION_BEANS}

    responses = run_at_once(THREADS, lambda _: post_from_own_client(app, "/v1/donations", volunteer["token"], body))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: AFFORDABLE, 409: THREADS - AFFORDABLE}, [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"insufficient_funds"}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == AFFORDABLE
    assert community.balance(volunteer["id"]) == 0
    assert community.balance(beneficiary["id"]) == AFFORDABLE * DONATION_BEANS
    check_invariants(services)


@pytest.mark.backends("memory", "sqlite", "postgres")
def test_the_same_key_sent_at_once_has_one_effect_and_one_answer(services: Services) -> None:
    community, volunteer, beneficiary = volunteer_and_beneficiary(services, 30)
    app = create_app(services)
    body, key = {"to_account_id": beneficiary["id"], "amount": 7}, new_key()

    responses = run_at_once(THREADS, lambda _: post_from_own_client(app, "/v1/donations", volunteer["token"], body, key))

    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.text for r in responses}) == 1, "every answer is the original one"
    assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in responses) == 1
    assert community.balance(volunteer["id"]) == 23 and community.balance(beneficiary["id"]) == 7
    check_invariants(services)


@pytest.mark.backends("memory", "sqlite", "postgres")
def test_earning_and_spending_at_once_lose_nothing(services: Services) -> None:
    """Awards arriving while donations race: every acknowledged write is in the balance."""
    community, volunteer, beneficiary = volunteer_and_beneficiary(services, 20)
    reports = [community.report(community.actor(volunteer["token"])) for _ in range(THREADS // 2)]
    app = create_app(services)
    registering = RegisterStaff(community_id=community.id, display_name="网格员", role="staff")
    staff_token = community.app.execute(registering, community.admin).result["token"]

    def work(index: int) -> Any:
        if index % 2:
            return post_from_own_client(app, f"/v1/reports/{reports[index // 2]}/verify", staff_token, {"award": 3})
        return post_from_own_client(app, "/v1/donations", volunteer["token"], {"to_account_id": beneficiary["id"], "amount": 4})

    responses = run_at_once(THREADS, work)

    assert all(r.status_code in (200, 201, 409) for r in responses), [r.text for r in responses]
    earned = sum(r.json()["award"] for r in responses if r.status_code == 200)
    given = sum(r.json()["amount"] for r in responses if r.status_code == 201)
    assert earned == 3 * len(reports)
    assert community.balance(volunteer["id"]) == 20 + earned - given >= 0
    assert community.balance(beneficiary["id"]) == given
    check_invariants(services)


# --- several processes over one database ------------------------------------------------------


def donate_from_another_process(database_url: str, token: str, to_account_id: str, amounts: list[int],
                                start: Any, results: Any) -> None:
    """One server process's worth of donations, started together with the others. A crash is
    reported for every donation not yet answered, so the test fails with it instead of waiting."""
    answered = 0
    try:
        services = build_services(Settings(database_url=database_url))
        try:
            actor = services.app.authenticate(token)
            assert actor is not None
            start.wait(timeout=START_TIMEOUT_S)
            for amount in amounts:
                try:
                    services.app.execute(Donate(to_account_id=UUID(to_account_id), amount=amount), actor)
                    results.put((amount, "ok"))
                except DomainError as refused:
                    results.put((amount, refused.code))
                answered += 1
        finally:
            services.close()
    except Exception as crash:  # noqa: BLE001 — whatever it was, the parent must hear of it
        for amount in amounts[answered:]:
            results.put((amount, f"crashed: {crash!r}"))


@pytest.mark.backends("sqlite", "postgres")
def test_processes_spending_the_same_beans_refuse_only_what_was_unaffordable(services: Services, database_url: str) -> None:
    beans = 60
    community, volunteer, beneficiary = volunteer_and_beneficiary(services, beans)
    amounts = [[3 + (p * DONATIONS_PER_PROCESS + i) % 7 for i in range(DONATIONS_PER_PROCESS)] for p in range(PROCESSES)]
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=donate_from_another_process,
                        args=(database_url, volunteer["token"], beneficiary["id"], share, start, results))
        for share in amounts
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=START_TIMEOUT_S * 2) for _ in range(PROCESSES * DONATIONS_PER_PROCESS)]
    for process in processes:
        process.join(timeout=START_TIMEOUT_S)
        assert process.exitcode == 0

    given = sum(amount for amount, outcome in outcomes if outcome == "ok")
    refused = [(amount, outcome) for amount, outcome in outcomes if outcome != "ok"]
    remaining = beans - given
    assert {outcome for _, outcome in refused} <= {"insufficient_funds"}, refused
    # Balances only fall, so whatever was refused was unaffordable at the end as well.
    assert all(amount > remaining for amount, _ in refused), (remaining, refused)
    assert community.balance(volunteer["id"]) == remaining >= 0
    assert community.balance(beneficiary["id"]) == given
    check_invariants(services)
