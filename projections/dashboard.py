"""The month at a glance for the staff console: reports by category and outcome, beans and credits
moved by kind, and who was active, per community and period (the community's calendar month).

Reports count in the month they were submitted, with the outcome they have now. Money counts in
the month it moved: for each transaction, the units that reached holders (Σ of the positive
postings per asset), so a mint, a donation or an allowance counts once. Redemptions are read from
the redemptions projection, which already keeps them by period, net of reversals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.money import Posting
from domain.periods import period_of
from projections.ledger import TRANSACTION_TYPES, community_timezone
from projections.projector import Recorded
from projections.store import Cursor

TOP_MERCHANTS_MAX = 5
# The transactions that mint beans (from the community's issuance account): their beans are
# "minted" and the holders they reach are the month's active volunteers. A new mint joins here.
MINTING_TRANSACTIONS = ("report_award", "dispatch_award")
# The transactions the dashboard counts by month (redemptions come from their own projection).
COUNTED_TRANSACTIONS = (*MINTING_TRANSACTIONS, "donation", "welfare_allowance")
REPORT_EVENTS = {"Report.Verified", "Report.Rejected", "Report.Dispatched", "Report.Closed"}


class DashboardProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS dashboard_reports ("
        " report_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, period TEXT NOT NULL,"
        " category TEXT NOT NULL, status TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS dashboard_reports_by_period ON dashboard_reports (community_id, period)",
        "CREATE TABLE IF NOT EXISTS dashboard_units ("
        " community_id TEXT NOT NULL, period TEXT NOT NULL, kind TEXT NOT NULL, asset TEXT NOT NULL,"
        " units BIGINT NOT NULL, PRIMARY KEY (community_id, period, kind, asset))",
        "CREATE TABLE IF NOT EXISTS dashboard_active ("
        " community_id TEXT NOT NULL, period TEXT NOT NULL, account_id TEXT NOT NULL,"
        " PRIMARY KEY (community_id, period, account_id))",
    )

    def __init__(self) -> None:
        # The batch being applied, folded in memory and written at its end: the reports it read
        # or wrote (those it submitted apart), units moved per (community, period, kind, asset)
        # and who was active.
        self._reports: dict[str, dict[str, str] | None] = {}
        self._submitted: set[str] = set()
        self._units: dict[tuple[str, str, str, str], int] = {}
        self._active: dict[tuple[str, str, str], None] = {}

    def apply_batch(self, cursor: Cursor, batch: Sequence[Recorded]) -> None:
        self._reports, self._submitted, self._units, self._active = {}, set(), {}, {}
        for recorded in batch:
            self.apply(cursor, recorded)
        reports = [(report_id, row) for report_id, row in self._reports.items() if row is not None]
        cursor.executemany(
            "INSERT INTO dashboard_reports VALUES (?, ?, ?, ?, ?)",
            [(report_id, row["community_id"], row["period"], row["category"], row["status"])
             for report_id, row in reports if report_id in self._submitted],
        )
        cursor.executemany(
            "UPDATE dashboard_reports SET status = ? WHERE report_id = ?",
            [(row["status"], report_id) for report_id, row in reports
             if report_id not in self._submitted and row["status"] != row["status_before"]],
        )
        cursor.executemany(
            "INSERT INTO dashboard_units (community_id, period, kind, asset, units) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (community_id, period, kind, asset)"
            " DO UPDATE SET units = dashboard_units.units + excluded.units",
            [(*key, units) for key, units in self._units.items()],
        )
        cursor.executemany(
            "INSERT INTO dashboard_active VALUES (?, ?, ?) ON CONFLICT (community_id, period, account_id) DO NOTHING",
            list(self._active),
        )

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        """One event of the batch `apply_batch` is applying."""
        event = recorded.event
        name = type(event).__qualname__
        community_id: str | None
        if name == "Report.Submitted":
            community_id = str(event.community_id)
            period = period_of(event.timestamp, community_timezone(cursor, community_id))
            report_id = recorded.originator
            self._reports[report_id] = {"community_id": community_id, "period": period, "category": event.category,
                                        "status": "submitted", "status_before": "submitted"}
            self._submitted.add(report_id)
            self._active[(community_id, period, str(event.reporter_id))] = None
            return
        community_id = self._community_of(cursor, event, name)
        if community_id is None:
            return
        if name in REPORT_EVENTS:
            report = self._report(cursor, recorded.originator)
            assert report is not None
            report["status"] = _status_after(report["status"], name)
        kind = TRANSACTION_TYPES.get(name)
        if kind in COUNTED_TRANSACTIONS and recorded.postings:
            self._count(community_id, period_of(event.timestamp, community_timezone(cursor, community_id)),
                        kind, recorded.postings)

    def _report(self, cursor: Cursor, report_id: str) -> dict[str, str] | None:
        """The report as the batch leaves it so far; None if the read model never saw it submitted."""
        if report_id not in self._reports:
            row = cursor.one("SELECT community_id, period, category, status FROM dashboard_reports WHERE report_id = ?",
                             (report_id,))
            self._reports[report_id] = None if row is None else {**row, "status_before": row["status"]}
        return self._reports[report_id]

    def _community_of(self, cursor: Cursor, event: Any, name: str) -> str | None:
        if name in REPORT_EVENTS:
            report = self._report(cursor, str(event.originator_id))
            return None if report is None else str(report["community_id"])
        community_id = getattr(event, "community_id", None)
        return None if community_id is None else str(community_id)

    def _count(self, community_id: str, period: str, kind: str, postings: Sequence[Posting]) -> None:
        for posting in postings:
            if posting.amount > 0:
                key = (community_id, period, kind, posting.asset.value)
                self._units[key] = self._units.get(key, 0) + posting.amount
                if kind in MINTING_TRANSACTIONS:
                    self._active[(community_id, period, posting.account_id)] = None


def _status_after(status: str, name: str) -> str:
    """The report's status after the event, as the aggregate sets it: verifying a report that was
    dispatched (or closed) first leaves it dispatched (or closed)."""
    if name != "Report.Verified":
        return {"Report.Rejected": "rejected", "Report.Dispatched": "dispatched", "Report.Closed": "closed"}[name]
    return "verified" if status == "submitted" else status


def month(cursor: Cursor, community_id: str, period: str) -> dict[str, Any]:
    """The dashboard of one community's month (see the module's docstring for what counts where)."""
    reports: dict[str, dict[str, int]] = {}
    for row in cursor.all(
        "SELECT category, status, COUNT(*) AS reports FROM dashboard_reports WHERE community_id = ? AND period = ?"
        " GROUP BY category, status", (community_id, period),
    ):
        reports.setdefault(row["category"], {})[row["status"]] = int(row["reports"])
    units = {
        (row["kind"], row["asset"]): int(row["units"])
        for row in cursor.all("SELECT kind, asset, units FROM dashboard_units WHERE community_id = ? AND period = ?",
                              (community_id, period))
    }
    sales = cursor.one(
        "SELECT COUNT(*) AS sales, COALESCE(SUM(funded_bean), 0) AS bean, COALESCE(SUM(funded_welfare), 0) AS welfare"
        " FROM redemptions WHERE community_id = ? AND period = ? AND status = 'completed'", (community_id, period),
    )
    assert sales is not None
    merchants = cursor.all(
        "SELECT r.merchant_id, a.display_name, COUNT(*) AS sales, SUM(r.amount) AS redeemed"
        " FROM redemptions r JOIN ledger_accounts a ON a.account_id = r.merchant_id"
        " WHERE r.community_id = ? AND r.period = ? AND r.status = 'completed'"
        " GROUP BY r.merchant_id, a.display_name ORDER BY redeemed DESC, r.merchant_id LIMIT ?",
        (community_id, period, TOP_MERCHANTS_MAX),
    )
    active = cursor.one("SELECT COUNT(*) AS volunteers FROM dashboard_active WHERE community_id = ? AND period = ?",
                        (community_id, period))
    assert active is not None
    return {
        "period": period,
        "reports": {"by_category": reports, "total": sum(sum(by.values()) for by in reports.values())},
        "beans": {
            "minted": sum(units.get((kind, "bean"), 0) for kind in MINTING_TRANSACTIONS),
            "redeemed": int(sales["bean"]),
            "donated": units.get(("donation", "bean"), 0),
        },
        "welfare": {"issued": units.get(("welfare_allowance", "welfare"), 0), "redeemed": int(sales["welfare"])},
        "sales": int(sales["sales"]),
        "active_volunteers": int(active["volunteers"]),
        "top_merchants": [
            {"merchant_id": row["merchant_id"], "display_name": row["display_name"], "sales": int(row["sales"]),
             "redeemed": int(row["redeemed"])}
            for row in merchants
        ],
    }
