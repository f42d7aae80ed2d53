"""What an app's start-up serves, and what its stop closes (api/app.py `create_app`)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for


def test_services_put_on_an_app_before_it_starts_are_served_and_left_open(tmp_path: Path) -> None:
    """A test that builds its app first and its services later (tests/test_attack_schemathesis.py)
    puts them on app.state: each start-up serves them, builds nothing from its settings, and its
    stop leaves them open."""
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    elsewhere = tmp_path / "elsewhere.db"
    app = create_app(settings=Settings(database_url=f"sqlite:///{elsewhere}", admin_token="another"))
    app.state.services = services
    try:
        for _ in range(2):
            with TestClient(app) as client:
                assert app.state.services is services
                assert client.post("/v1/communities", json={"name": "金沙社区"},
                                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 201
        assert not elsewhere.exists() and not services.closed
        with api_for(services, ADMIN_TOKEN) as api:  # and they still serve
            assert api.community(name="盘龙社区")["name"] == "盘龙社区"
    finally:
        services.close()


def test_services_an_app_builds_are_its_own_and_closed_when_it_stops(tmp_path: Path) -> None:
    app = create_app(settings=Settings(database_url=f"sqlite:///{tmp_path}/own.db", admin_token=ADMIN_TOKEN))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        built = app.state.services
    assert (tmp_path / "own.db").exists()
    assert built.closed
