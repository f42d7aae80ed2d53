"""Routing: each route answers its own requests, whatever order the routers are matched in.

The routers are matched in `api.app.ROUTERS` order and the first full match wins, so a route
with a path parameter (`/v1/redemptions/{redemption_id}`) placed before a fixed path of the same
shape would take its requests. The order is chosen for speed (the till's router first), so this
checks that it shadows nothing."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.routing import Match

from api.app import ROUTERS, create_app
from infra.settings import Settings

SAMPLE_ID = "5d0e6f6c-1f2a-4b3c-8d4e-5f6a7b8c9d0e"  # fills every path parameter: ours are ids and codes


def _resolve(app, method: str, path: str) -> APIRoute | None:  # type: ignore[no-untyped-def]
    """The route Starlette's matching gives a request, descending into included routers."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
             "query_string": b"", "app": app}
    routes = list(app.router.routes)
    while routes:
        route = routes.pop(0)
        match, _ = route.matches(scope)
        if match is not Match.FULL:
            continue
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is None:
            return route if isinstance(route, APIRoute) else None
        routes = list(inner)  # an included router: its own routes, in order
    return None


def test_every_route_answers_its_own_requests(tmp_path) -> None:
    app = create_app(settings=Settings(database_url="memory://", transparency_key_file=str(tmp_path / "key")))
    checked = 0
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            path = re.sub(r"\{[^}]+\}", SAMPLE_ID, route.path)
            for method in route.methods:
                resolved = _resolve(app, method, path)
                assert resolved is not None and resolved.endpoint is route.endpoint, (
                    f"{method} {path} is answered by {getattr(resolved, 'path', None)}, not {route.path}")
                checked += 1
    assert checked > 50
