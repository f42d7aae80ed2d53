"""The FastAPI application: routers, error handlers, limits, metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request, Response

from api.errors import error_response, install_error_handlers
from api.metrics import METRICS
from api.routes import accounts, audit, communities, donations, health, merchants, pages, payments, reports, staff, welfare
from api.routes import fund, public, settlements
from infra.settings import Settings
from infra.wiring import Services, build_services

REQUEST_BODY_BYTES_MAX = 256 * 1024
ROUTERS = (health.router, communities.router, staff.router, accounts.router, reports.router, donations.router, audit.router,
           welfare.router, payments.router, merchants.router, pages.router,
           fund.router, settlements.router, public.router)


def create_app(services: Services | None = None, settings: Settings | None = None) -> FastAPI:
    """An app over given services (tests), or over services built from settings at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or build_services(settings or Settings.from_env())
        anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.services.settings.server_threads
        try:
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="Jindou 金豆",
        version="1.0",
        description="An event-sourced community points ledger: beans, welfare credits, merchants, the fund.",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > REQUEST_BODY_BYTES_MAX):
            response: Response = error_response("payload_too_large", f"request bodies are at most {REQUEST_BODY_BYTES_MAX} bytes")
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        METRICS.observe(request.method, getattr(route, "path", "unmatched"), response.status_code,
                        time.perf_counter() - started)
        return response

    return app
