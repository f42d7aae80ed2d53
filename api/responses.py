"""Turning an application outcome into the HTTP response (after the read model caught up, so
the next read sees this write)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from domain.base import Outcome
from infra.wiring import Services


def written(services: Services, outcome: Outcome, status_code: int) -> JSONResponse:
    services.projector.catch_up(until=outcome.position)  # knowing the position saves asking for the head
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.result, status_code=status_code, headers=headers)


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
