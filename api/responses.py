"""Turning an application outcome into the HTTP response (after the read model caught up, so
the next read sees this write)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

from api.errors import DATABASE_UNAVAILABLE
from domain.writer import Outcome
from infra.wiring import Services

log = logging.getLogger("jindou.api")


def written(services: Services, outcome: Outcome, status_code: int) -> JSONResponse:
    """The write is committed: say so even if the read model cannot catch up now (the database
    just went away). Every read catches up first, so read-your-writes still holds."""
    try:
        services.projector.catch_up(until=outcome.position)  # knowing the position saves asking for the head
    except DATABASE_UNAVAILABLE as failure:
        log.warning("committed, but the read model could not catch up yet: %s", failure)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.result, status_code=status_code, headers=headers)


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
