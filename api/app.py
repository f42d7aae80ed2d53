"""The FastAPI application: routers, error handlers, limits, metrics."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response, install_error_handlers, unavailable_response
from api.logs import log_request, request_id_from
from api.metrics import METRICS
from api.openapi import install_openapi
from api.routes import (
    accounts,
    audit,
    cards,
    communities,
    credentials,
    dashboard,
    docs,
    donations,
    fund,
    health,
    landing,
    lists,
    merchants,
    pages,
    payments,
    public,
    reports,
    settlements,
    staff,
    transparency,
    welfare,
    whoami,
    wishes,
)
from infra.settings import Settings
from infra.wiring import Services, build_services

REQUEST_BODY_BYTES_MAX = 256 * 1024
GATED_PATH_PREFIX = "/v1/"  # the API; /healthz, /metrics and the pages answer whatever the database does
# Matched in this order, the first full match winning (tests/test_routing.py: no route takes
# another's requests). FastAPI tries the routers one by one, several microseconds each, so the
# till's router comes first: a sale is the busiest request (54 -> 9 us to match it).
ROUTERS = (payments.router, health.router, communities.router, staff.router, accounts.router, reports.router,
           donations.router, audit.router, welfare.router, merchants.router, pages.router,
           fund.router, settlements.router, public.router,
           lists.router, credentials.router, cards.router, dashboard.router, whoami.router,
           docs.router, landing.router, transparency.router,
           wishes.router, wishes.public_router)


class RequestObserver:
    """Count, time and log every request (one line each: api/logs.py) by route template, and
    give it a request id, echoed in `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = request_id_from(scope["headers"])

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            duration_s = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            METRICS.observe(scope["method"], route, status, duration_s)
            log_request(request_id=request_id, method=scope["method"], route=route, status=status,
                        duration_s=duration_s, principal_id=scope.get("state", {}).get("principal_id"))


class DatabaseGate:
    """While the health monitor knows the database is away, API requests get 503 at once: no
    thread, no wait for a connection (16 such waits once starved every other request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(GATED_PATH_PREFIX):
            services: Services | None = getattr(scope["app"].state, "services", None)
            if services is not None and not services.health.up:
                await unavailable_response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over the limit with 413, whether or not they declare a length:
    the body is read (at most limit + one chunk) before the app sees it, then replayed."""

    def __init__(self, app: ASGIApp, limit_bytes: int) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response("payload_too_large", f"request bodies are at most {self.limit_bytes} bytes")
        await response(scope, receive, send)


FULL_COLLECTION_AFTER = 100  # collections of the middle generation between full ones (CPython: 10)


def freeze_start_up_objects() -> None:
    """Leave what start-up made (the libraries, the routes and their models, the services: about
    110,000 objects the collector tracks) out of every later collection, and collect everything
    less often. Each full collection walked them all: over 10,000 sales at 16 clients, 16 of them
    stopped the process for 1.2 s in all, up to 107 ms at once; frozen, 0.4 s, up to 55 ms
    (decision 0025). Only for a process that serves: whatever is alive now is kept for as long
    as it runs."""
    gc.collect()
    gc.freeze()
    youngest, middle, _ = gc.get_threshold()
    gc.set_threshold(youngest, middle, FULL_COLLECTION_AFTER)


def create_app(services: Services | None = None, settings: Settings | None = None, *, freeze_start_up: bool = False) -> FastAPI:
    """An app over given services (tests), or over services built from settings at start-up.
    `freeze_start_up`: the process does nothing but serve this app (`jindou serve`): see `freeze_start_up_objects`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Services given (to create_app, or put on app.state before it starts) are served and left
        # open; services it builds are its own, and closed when it stops.
        given: Services | None = services or getattr(app.state, "services", None)
        started = given or build_services(settings or Settings.from_env())
        app.state.services = started
        anyio.to_thread.current_default_thread_limiter().total_tokens = started.settings.server_threads
        started.health.start()
        if given is None:  # a new deployment makes its signing key now, so it can be backed up at once
            logging.getLogger("jindou").info("transparency log signing key id %s", started.signer.key_id)
        if freeze_start_up:
            freeze_start_up_objects()
        try:
            yield
        finally:
            if given is None:
                started.close()

    app = FastAPI(
        title="Jindou 金豆",
        version="1.0",
        description="An event-sourced community points ledger: beans, welfare credits, merchants, the fund.",
        lifespan=lifespan,
        docs_url=None,  # api/routes/docs.py serves /docs and /redoc from our own assets
        redoc_url=None,
    )
    if services is not None:
        app.state.services = services
    install_error_handlers(app)
    install_openapi(app)
    for router in ROUTERS:
        app.include_router(router)

    # Pure ASGI middleware: starlette's BaseHTTPMiddleware streams every response through a task
    # and a queue, which cost more than a whole ledger command here.
    app.add_middleware(BodyLimit, limit_bytes=REQUEST_BODY_BYTES_MAX)
    app.add_middleware(DatabaseGate)
    app.add_middleware(RequestObserver)
    return app
