"""Volunteers' reports (fire, security, disputes, sanitation, residents' needs) and their awards.

Every bean minted for a report carries its provenance: the report, who approved it, and the
postings (issuance → volunteer) in the same event.
"""

from __future__ import annotations

from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidState

DESCRIPTION_LENGTH_MAX = 2_000
REASON_LENGTH_MAX = 500
HANDLERS_MAX = 50


class ReportStatus(str, Enum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    DISPATCHED = "dispatched"
    CLOSED = "closed"


class Report(Aggregate):
    @event("Submitted")
    def __init__(self, community_id: UUID, reporter_id: UUID, category: str, description: str) -> None:
        self.community_id = community_id
        self.reporter_id = reporter_id
        self.category = category
        self.description = description
        self.status = ReportStatus.SUBMITTED.value
        self.award: int | None = None
        self.verified_by: str | None = None
        self.handler_ids: list[str] = []
        self.handler_awards: dict[str, int] = {}

    def check_status(self, *allowed: ReportStatus, action: str) -> None:
        if self.status not in {s.value for s in allowed}:
            raise InvalidState(
                f"cannot {action} a report that is {self.status}", status=self.status, report_id=str(self.id)
            )

    def check_verifiable(self) -> None:
        """A report is verified once, whenever staff get to it: an urgent one is often dispatched
        (and even closed) first. Verifying never reopens a dispatched or closed report."""
        if self.verified_by is not None or self.status == ReportStatus.REJECTED.value:
            state = "verified" if self.verified_by is not None else self.status
            raise InvalidState(f"cannot verify a report that is {state}", status=self.status, report_id=str(self.id))

    @event("Verified")
    def verify(self, award: int, verified_by: str, transaction_id: str, postings: list[dict[str, Any]]) -> None:
        if self.status == ReportStatus.SUBMITTED.value:
            self.status = ReportStatus.VERIFIED.value
        self.award = award
        self.verified_by = verified_by

    @event("Rejected")
    def reject(self, reason: str, rejected_by: str) -> None:
        self.status = ReportStatus.REJECTED.value

    @event("Dispatched")
    def dispatch(self, handler_ids: list[str], dispatched_by: str) -> None:
        self.status = ReportStatus.DISPATCHED.value
        self.handler_ids = handler_ids

    @event("Closed")
    def close(
        self, handler_awards: dict[str, int], closed_by: str, transaction_id: str, postings: list[dict[str, Any]]
    ) -> None:
        self.status = ReportStatus.CLOSED.value
        self.handler_awards = handler_awards
