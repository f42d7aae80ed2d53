"""Redemptions by merchant and period, with their current status and settlement."""

from __future__ import annotations

from typing import Any

from domain.periods import period_of
from projections.ledger import community_timezone
from projections.projector import Recorded
from projections.store import Cursor


class RedemptionsProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS redemptions ("
        " redemption_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, merchant_id TEXT NOT NULL,"
        " customer_id TEXT NOT NULL, amount BIGINT NOT NULL, funded_welfare BIGINT NOT NULL,"
        " funded_bean BIGINT NOT NULL, method TEXT NOT NULL, status TEXT NOT NULL, period TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, position BIGINT NOT NULL, reversed_at TEXT, settlement_id TEXT)",
        "CREATE INDEX IF NOT EXISTS redemptions_by_merchant ON redemptions (merchant_id, period, position)",
        "CREATE INDEX IF NOT EXISTS redemptions_by_community ON redemptions (community_id, period, status)",
    )

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        event = recorded.event
        name = type(event).__qualname__
        if name == "Redemption.Completed":
            timezone = community_timezone(cursor, str(event.community_id))
            cursor.execute(
                "INSERT INTO redemptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?, NULL, NULL)",
                (
                    recorded.originator, str(event.community_id), str(event.merchant_id), str(event.customer_id),
                    event.amount, event.funded.get("welfare", 0), event.funded.get("bean", 0), event.method,
                    period_of(event.timestamp, timezone), recorded.occurred_at, recorded.position,
                ),
            )
        elif name == "Redemption.Reversed":
            cursor.execute(
                "UPDATE redemptions SET status = 'reversed', reversed_at = ? WHERE redemption_id = ?",
                (recorded.occurred_at, recorded.originator),
            )
        elif name == "Redemption.Settled":
            cursor.execute(
                "UPDATE redemptions SET settlement_id = ? WHERE redemption_id = ?",
                (str(event.settlement_id), recorded.originator),
            )
        elif name == "Redemption.Released":
            cursor.execute("UPDATE redemptions SET settlement_id = NULL WHERE redemption_id = ?",
                           (recorded.originator,))


def unsettled_completed(cursor: Cursor, community_id: str, period: str) -> list[dict[str, Any]]:
    """Completed redemptions of a period that no settlement has claimed yet, oldest first."""
    return cursor.all(
        "SELECT * FROM redemptions WHERE community_id = ? AND period = ? AND status = 'completed'"
        " AND settlement_id IS NULL ORDER BY position",
        (community_id, period),
    )


def for_merchant(cursor: Cursor, merchant_id: str, period: str, *, limit: int, after_position: int | None) -> list[dict[str, Any]]:
    """A merchant's redemptions in a period, oldest first, paged by log position."""
    return cursor.all(
        "SELECT * FROM redemptions WHERE merchant_id = ? AND period = ? AND position > ? ORDER BY position LIMIT ?",
        (merchant_id, period, after_position or 0, limit),
    )


def month_totals(cursor: Cursor, merchant_id: str, period: str) -> dict[str, int]:
    """A merchant's month at a glance: sales kept and reversed, and the units its kept sales took."""
    row = cursor.one(
        "SELECT CAST(COUNT(*) AS BIGINT) AS sales,"
        " CAST(COALESCE(SUM(funded_welfare), 0) AS BIGINT) AS welfare,"
        " CAST(COALESCE(SUM(funded_bean), 0) AS BIGINT) AS bean"
        " FROM redemptions WHERE merchant_id = ? AND period = ? AND status = 'completed'",
        (merchant_id, period),
    )
    reversed_row = cursor.one(
        "SELECT CAST(COUNT(*) AS BIGINT) AS reversed FROM redemptions"
        " WHERE merchant_id = ? AND period = ? AND status = 'reversed'",
        (merchant_id, period),
    )
    assert row is not None and reversed_row is not None
    return {"sales": int(row["sales"]), "reversed": int(reversed_row["reversed"]),
            "welfare": int(row["welfare"]), "bean": int(row["bean"])}
