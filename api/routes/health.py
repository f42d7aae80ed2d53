from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import ServicesDep
from api.metrics import METRICS

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(services: ServicesDep) -> dict[str, str]:
    services.projector.head()  # the database answers
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(services: ServicesDep) -> str:
    head = services.projector.head()
    gauges = {
        "jindou_events_recorded": head,
        "jindou_read_model_position": services.projector.position,
        "jindou_read_model_lag_events": head - services.projector.position,
    }
    return METRICS.render(gauges)
