"""The writer snapshots an aggregate its group left at the snapshot's version from memory
(domain/writer.py `_take_snapshots`): each such snapshot must hold exactly what the aggregate's
events rebuild, and `jindou audit verify` must find them all true."""

from __future__ import annotations

import concurrent.futures
from typing import Any
from uuid import UUID

import pytest

from domain.accounts import Account
from domain.application import Jindou
from infra.audit import verify_chain
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, new_key

INTERVAL = 3


def _rebuilt(app: Jindou, aggregate_id: UUID, version: int) -> Any:
    aggregate = None
    for event in app.events.get(aggregate_id, lte=version):
        aggregate = event.mutate(aggregate)
    return aggregate


@pytest.mark.backends("sqlite", "postgres")
def test_snapshots_taken_from_memory_equal_the_aggregate_rebuilt_from_its_events(services, monkeypatch) -> None:
    app = services.app
    monkeypatch.setattr(Jindou, "snapshotting_intervals", {Account: INTERVAL})
    from_events: list[int] = []
    take_snapshot = app.take_snapshot

    def counted(aggregate_id: UUID, version: int | None = None, **kwargs: Any) -> None:
        from_events.append(version or 0)
        take_snapshot(aggregate_id, version, **kwargs)

    monkeypatch.setattr(app, "take_snapshot", counted)
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        staff = api.staff(community["id"])
        volunteer = api.account(community["id"], "volunteer")
        elders = [api.account(community["id"], "beneficiary") for _ in range(4)]
        for _ in range(3):
            api.earn(volunteer, staff["token"], award=10)

        def donate(elder: dict[str, Any]) -> int:
            body = {"to_account_id": elder["id"], "amount": 1}
            return api.call("POST", "/v1/donations", volunteer["token"], body, key=new_key()).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # groups that change one account many times
            assert set(pool.map(donate, elders * 4)) == {201}

    snapshotted = 0
    for account_id in [volunteer["id"], *(elder["id"] for elder in elders)]:
        snapshots = list(app.snapshots.get(UUID(account_id)))  # type: ignore[union-attr]
        latest = app.repository.get(UUID(account_id)).version
        assert [s.originator_version for s in snapshots] == list(range(INTERVAL, latest + 1, INTERVAL))
        for snapshot in snapshots:
            expected = Account.Snapshot.take(_rebuilt(app, UUID(account_id), snapshot.originator_version))
            assert snapshot.state == expected.state, (account_id, snapshot.originator_version)
            snapshotted += 1
    assert snapshotted >= 10
    assert len(from_events) < snapshotted  # most came from memory; a group past the version reads events
    assert verify_chain(app, services.store).ok
