"""The wish wall's read model: every wish with its pledged total and pledger count, for the lists,
the public wall and the fund report's count of wishes fulfilled in a month."""

from __future__ import annotations

from typing import Any

from domain.periods import period_of
from projections.ledger import community_timezone
from projections.projector import Recorded
from projections.store import Cursor


class WishesProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS wishes ("
        " wish_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, title TEXT NOT NULL, target BIGINT NOT NULL,"
        " pledged BIGINT NOT NULL, pledgers INTEGER NOT NULL, status TEXT NOT NULL, merchant_id TEXT,"
        " created_position BIGINT NOT NULL, created_at TEXT NOT NULL, closed_position BIGINT, closed_at TEXT,"
        " fulfilled_period TEXT)",
        "CREATE INDEX IF NOT EXISTS wishes_by_community ON wishes (community_id, created_position)",
        "CREATE INDEX IF NOT EXISTS wishes_fulfilled_by_period ON wishes (community_id, fulfilled_period)",
        "CREATE TABLE IF NOT EXISTS wish_pledgers ("
        " wish_id TEXT NOT NULL, volunteer_id TEXT NOT NULL, pledged BIGINT NOT NULL,"
        " PRIMARY KEY (wish_id, volunteer_id))",
    )

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        event = recorded.event
        name = type(event).__qualname__
        wish_id = recorded.originator
        if name == "Wish.Created":
            cursor.execute(
                "INSERT INTO wishes VALUES (?, ?, ?, ?, 0, 0, 'open', ?, ?, ?, NULL, NULL, NULL)",
                (wish_id, str(event.community_id), event.title, event.target,
                 str(event.merchant_id) if event.merchant_id else None, recorded.position, recorded.occurred_at),
            )
        elif name == "Wish.Pledged":
            cursor.execute(
                "INSERT INTO wish_pledgers VALUES (?, ?, ?) ON CONFLICT (wish_id, volunteer_id)"
                " DO UPDATE SET pledged = wish_pledgers.pledged + excluded.pledged",
                (wish_id, event.volunteer_id, event.amount),
            )
            cursor.execute(
                "UPDATE wishes SET pledged = pledged + ?,"
                " pledgers = (SELECT COUNT(*) FROM wish_pledgers WHERE wish_id = ?),"
                " status = CASE WHEN pledged + ? = target THEN 'funded' ELSE status END WHERE wish_id = ?",
                (event.amount, wish_id, event.amount, wish_id),
            )
        elif name == "Wish.Fulfilled":
            row = cursor.one("SELECT community_id FROM wishes WHERE wish_id = ?", (wish_id,))
            assert row is not None, wish_id
            period = period_of(event.timestamp, community_timezone(cursor, str(row["community_id"])))
            cursor.execute(
                "UPDATE wishes SET status = 'fulfilled', merchant_id = ?, closed_position = ?, closed_at = ?,"
                " fulfilled_period = ? WHERE wish_id = ?",
                (str(event.merchant_id), recorded.position, recorded.occurred_at, period, wish_id),
            )
        elif name == "Wish.Cancelled":
            cursor.execute(
                "UPDATE wishes SET status = 'cancelled', closed_position = ?, closed_at = ? WHERE wish_id = ?",
                (recorded.position, recorded.occurred_at, wish_id),
            )


def wishes_of(
    cursor: Cursor, community_id: str, *, status: str | None, limit: int, before_position: int | None
) -> list[dict[str, Any]]:
    """A community's wishes, newest first, paged by the position that created them."""
    clauses: list[str] = ["community_id = ?"]
    params: list[Any] = [community_id]
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if before_position is not None:
        clauses.append("created_position < ?")
        params.append(before_position)
    return cursor.all(
        f"SELECT * FROM wishes WHERE {' AND '.join(clauses)} ORDER BY created_position DESC LIMIT ?",  # noqa: S608
        (*params, limit),
    )


def fulfilled_count(cursor: Cursor, community_id: str, period: str, position: int) -> int:
    """Wishes fulfilled in `period`, as the books stood at `position`."""
    row = cursor.one(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM wishes"
        " WHERE community_id = ? AND fulfilled_period = ? AND closed_position <= ?",
        (community_id, period, position),
    )
    assert row is not None
    return int(row["n"])
