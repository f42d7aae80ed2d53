"""The audit trail for auditors and administrators: the hash chain's head and the chained events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import (
    ADMIN,
    AUDITOR,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    ServicesDep,
    caught_up,
    require,
)
from domain.bus import Actor
from infra.audit import chained_events, community_events
from projections.chain import CANONICAL_VERSION, chain_summary

router = APIRouter(prefix="/v1/audit", tags=["audit"])

AuditorDep = Annotated[Actor, Depends(require(AUDITOR, ADMIN))]


@router.get("/chain")
def get_chain(services: ServicesDep, actor: AuditorDep) -> dict[str, Any]:
    caught_up(services)
    with services.store.read() as cursor:
        events_count, head = chain_summary(cursor)
    return {"events_count": events_count, "head": head, "canonical_version": CANONICAL_VERSION.decode()}


@router.get("/events")
def get_events(
    services: ServicesDep, actor: AuditorDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT,
) -> dict[str, Any]:
    """A community-bound auditor or admin sees only its own community's events."""
    caught_up(services)
    if actor.community_id is None:
        items, next_position = chained_events(services.app, services.store, after=after, limit=limit)
    else:
        items, next_position = community_events(services.app, services.store, actor.community_id, after=after,
                                                limit=limit)
    return {"items": items, "next_cursor": next_position}  # the cursor is the position to pass as `after`
