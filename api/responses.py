"""Turning an application outcome into the HTTP response (after the read model caught up, so
the next read sees this write)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.errors import DATABASE_UNAVAILABLE
from domain.writer import Outcome
from infra.wiring import Services

log = logging.getLogger("jindou.api")


def written(services: Services, outcome: Outcome, status_code: int) -> JSONResponse:
    """The write is committed: say so even if the read model cannot catch up now (the database
    just went away). Every read catches up first, so read-your-writes still holds."""
    _catch_up(services, outcome)
    return _response(outcome, status_code)


async def written_async(services: Services, outcome: Outcome, status_code: int) -> JSONResponse:
    """`written` on the event loop: the writer's group has usually projected the write already,
    and then nothing is read; a catch-up runs in the thread pool."""
    if outcome.position is None or outcome.position > services.projector.position:
        await run_in_threadpool(_catch_up, services, outcome)
    return _response(outcome, status_code)


def _catch_up(services: Services, outcome: Outcome) -> None:
    try:
        services.projector.catch_up(until=outcome.position)  # knowing the position saves asking for the head
    except DATABASE_UNAVAILABLE as failure:
        log.warning("committed, but the read model could not catch up yet: %s", failure)


def _response(outcome: Outcome, status_code: int) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.result, status_code=status_code, headers=headers)


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
