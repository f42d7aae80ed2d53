from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import ServicesDep
from api.errors import RETRY_AFTER_SECONDS, ApiError
from api.metrics import METRICS
from infra.wiring import Services

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={503: {"description": "the database does not answer"}})
async def healthz(request: Request) -> JSONResponse:
    """At once, from the health monitor's last probe (never a request thread, never the pool)."""
    services: Services = request.app.state.services
    health = services.health.view()
    if services.health.up:
        return JSONResponse({"status": "ok"} | health)
    return JSONResponse({"status": "unavailable"} | health, status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """Prometheus text. With JINDOU_METRICS_TOKEN set, only for `Authorization: Bearer <that token>`."""
    expected = services.settings.metrics_token
    if expected is not None and not hmac.compare_digest(
        (authorization or "").encode(), f"Bearer {expected}".encode()
    ):
        raise ApiError("unauthorized", "GET /metrics needs the metrics token (JINDOU_METRICS_TOKEN)")
    head = services.projector.head()
    gauges = {
        "jindou_events_recorded": head,
        "jindou_read_model_position": services.projector.position,
        "jindou_read_model_lag_events": head - services.projector.position,
        "jindou_writer_groups": services.app.writer.groups,  # transactions the writer committed
        "jindou_writer_commands": services.app.writer.commands,  # commands in them: ÷ groups = group size
        "jindou_writer_collisions": services.app.writer.collisions,  # groups run again command by command
        "jindou_writer_moved": services.app.writer.moved,  # groups decided again: another process had recorded
        # Seconds the writer spent on groups (its rate near 1: saturated), and its thread's CPU in
        # them (near the former: bound by CPU; far below: waiting on the database or the interpreter).
        "jindou_writer_seconds": round(services.app.writer.seconds, 6),
        "jindou_writer_cpu_seconds": round(services.app.writer.cpu_seconds, 6),
    }
    return METRICS.render(gauges)
