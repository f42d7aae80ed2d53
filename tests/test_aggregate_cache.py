"""The writer's aggregate cache: what a sync reads along with the log's head is kept, absence
included, and a change another process records is never answered from memory."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import AppCommunity, new_app_community


@pytest.mark.backends("sqlite", "postgres")
def test_a_sync_keeps_what_it_prefetched_until_another_process_changes_it(
    services: Services, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = new_app_community(services)
    volunteer = community.open("volunteer")
    assert volunteer.account_id is not None
    cache, nobody = services.app.cache, uuid4()  # `nobody`: an Idempotency-Key's record, never used
    cache.evict([volunteer.account_id])
    cache.sync(prefetch=[volunteer.account_id, nobody])
    version = cache.get(volunteer.account_id).version  # type: ignore[union-attr]

    elsewhere = build_services(Settings(database_url=services.settings.database_url, admin_token=ADMIN_TOKEN,
                                        transparency_key_file=str(tmp_path / "signing.key")))
    try:
        with monkeypatch.context() as offline:  # answered from memory: no read may reach the database
            def no_read(*_: Any, **__: Any) -> Any:
                raise AssertionError("read from the database")

            offline.setattr(services.app.recorder, "select_events", no_read)
            assert cache.get(volunteer.account_id).version == version  # type: ignore[union-attr]
            assert cache.get(nobody) is None
        AppCommunity(elsewhere, community.admin, community.id, community.staff).earn(volunteer, 7)
    finally:
        elsewhere.close()
    cache.sync(prefetch=[nobody])
    changed = cache.get(volunteer.account_id)
    assert changed is not None and changed.version > version, "another process's change is read, not remembered"
    assert cache.get(nobody) is None
