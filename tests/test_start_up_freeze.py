"""`jindou serve` leaves what start-up made out of the collector's later passes and collects in full
less often (api/app.py `freeze_start_up_objects`, decision 0025); an app built for a test leaves
the collector alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import FULL_COLLECTION_AFTER, create_app
from infra.settings import Settings
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
def unfrozen() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
        gc.set_threshold(*threshold)


@pytest.mark.backends("sqlite")
def test_a_served_app_freezes_what_start_up_made(database_url: str, unfrozen: None) -> None:
    app = create_app(settings=Settings(database_url=database_url, admin_token=ADMIN_TOKEN), freeze_start_up=True)
    with TestClient(app) as client:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the libraries, the routes, the services
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() <= frozen  # a request adds nothing to it
        assert gc.get_threshold()[2] == FULL_COLLECTION_AFTER


def test_an_app_over_a_tests_services_freezes_nothing(services, unfrozen: None) -> None:
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold()[2] != FULL_COLLECTION_AFTER
