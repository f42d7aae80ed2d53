from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import PlainTextResponse

from api.deps import ServicesDep
from api.errors import ApiError
from api.metrics import METRICS

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(services: ServicesDep) -> dict[str, str]:
    services.projector.head()  # the database answers
    return {"status": "ok"}


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
    }
    return METRICS.render(gauges)
