from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import ServicesDep
from api.errors import RETRY_AFTER_SECONDS
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
def metrics(services: ServicesDep) -> str:
    head = services.projector.head()
    gauges = {
        "jindou_events_recorded": head,
        "jindou_read_model_position": services.projector.position,
        "jindou_read_model_lag_events": head - services.projector.position,
    }
    return METRICS.render(gauges)
