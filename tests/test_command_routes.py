"""Write routes answer the usual request themselves and leave everything else to FastAPI
(api/commands.py `CommandRoute`, decision 0023): the same bodies accepted, as the same values, and
every malformed request answered by FastAPI as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute

from api.app import create_app
from api.commands import KEY_RULE, CommandRoute, Key, usual_body
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, new_key


def _routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        yield from _routes(included.routes) if included is not None else (route,)


@pytest.fixture(scope="module")
def app_and_routes() -> tuple[Any, list[APIRoute]]:
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        app = create_app(services)
        return app, [route for route in _routes(app.routes) if isinstance(route, CommandRoute)]
    finally:
        services.close()


@pytest.fixture(scope="module")
def command_routes(app_and_routes) -> list[APIRoute]:
    return app_and_routes[1]


def test_every_write_route_declared_once_is_a_command_route(command_routes) -> None:
    assert len(command_routes) >= 20
    assert any(route.path == "/v1/redemptions" for route in command_routes)


def test_the_openapi_document_says_of_each_command_route_what_its_command_route_line_declares(app_and_routes) -> None:
    app, command_routes = app_and_routes
    document = app.openapi()
    for route in command_routes:
        (method,) = route.methods
        operation = document["paths"][route.path][method.lower()]
        key = Key(route.openapi_extra[KEY_RULE])
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("Idempotency-Key" in headers) == (key is not Key.NONE), route.path
        if key is not Key.NONE:
            assert headers["Idempotency-Key"]["required"] == (key is Key.REQUIRED), route.path
        assert KEY_RULE not in operation  # the declaration is worded, not shown
        assert [status for status in operation["responses"] if status.startswith("2")] == [str(route.status_code)]
        if route.response_model is not None:
            schema = operation["responses"][str(route.status_code)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{route.response_model.__name__}"}, route.path
    assert sum(route.response_model is not None for route in command_routes) >= 15


_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8) \
    | st.uuids().map(str) | st.sampled_from(["meal", "fire", "volunteer", "2026-11", "1", "1.5", ""])
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_direct_path_takes_exactly_the_bodies_fastapi_takes_as_the_same_values(command_routes, data) -> None:
    route = data.draw(st.sampled_from([route for route in command_routes if route.body_field is not None]))
    model = route.body_field.field_info.annotation
    fields = {name: _scalars | _json for name in model.model_fields}
    sent = data.draw(st.fixed_dictionaries({}, optional=fields) | _json)
    raw = json.dumps(sent).encode()
    taken = usual_body("application/json", raw, model)
    value, errors = route.body_field.validate(json.loads(raw), {}, loc=("body",))
    assert (taken is not None) == (not errors), (route.path, sent, errors)
    if taken is not None:
        assert taken == value
    assert usual_body("text/plain", raw, model) is None  # FastAPI reads that as bytes: its error, not ours
    assert usual_body("application/json", raw[:-1], model) is None or raw[:-1] == b""


def test_the_usual_write_skips_fastapis_machinery_and_anything_else_gets_fastapis_answer(services, monkeypatch) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        staff = api.staff(community["id"])
        volunteer = api.account(community["id"], "volunteer")
        grandma = api.account(community["id"], "beneficiary")
        api.earn(volunteer, staff["token"], award=10)
        body = {"to_account_id": grandma["id"], "amount": 2}

        solved.clear()
        assert api.call("POST", "/v1/donations", volunteer["token"], body, key=new_key()).status_code == 201
        unfrozen = api.call("POST", f"/v1/accounts/{grandma['id']}/unfreeze", staff["token"])  # no body at all
        assert unfrozen.status_code in (200, 201, 409), unfrozen.text
        assert solved == []

        def answered_by_fastapi(response: Any, status: int, code: str) -> None:
            assert response.status_code == status, response.text
            assert response.json()["error"]["code"] == code
            assert solved.pop() == "/v1/donations" and solved == []

        headers = {"Authorization": f"Bearer {volunteer['token']}"}
        broken = api.client.post("/v1/donations", content=b'{"amount": 2', headers=headers | {"Content-Type": "application/json"})
        assert broken.status_code == 422 and broken.json()["error"]["code"] == "validation_error"  # FastAPI's, before solving
        answered_by_fastapi(api.client.post("/v1/donations", content=json.dumps(body), headers=headers
                                            | {"Content-Type": "text/plain"}), 422, "validation_error")
        answered_by_fastapi(api.call("POST", "/v1/donations", volunteer["token"], {"amount": 2}), 422, "validation_error")
        answered_by_fastapi(api.call("POST", "/v1/donations", volunteer["token"], {**body, "amount": "two"}),
                            422, "validation_error")
        # Authentication is found wrong before the body, as it always was.
        answered_by_fastapi(api.call("POST", "/v1/donations", "not-a-token", {"amount": 2}), 401, "unauthorized")
        answered_by_fastapi(api.call("POST", "/v1/donations", staff["token"], {"amount": 2}), 403, "forbidden")
        # With a valid body, the direct path words the same refusals itself.
        assert api.call("POST", "/v1/donations", "not-a-token", body).json()["error"]["code"] == "unauthorized"
        assert api.call("POST", "/v1/donations", staff["token"], body).json()["error"]["code"] == "forbidden"
        assert api.call("POST", "/v1/donations", volunteer["token"], body, key="bad key").status_code == 422
        assert solved == []
        assert api.balances(grandma["id"]) == {"bean": 2, "welfare": 0}
