"""The fund's read model: cash movements, settlements and the public fund report.

Cash counts in the period it moved: a donation in the month of its `received_on` date, a payout
in the month it was paid (community time zone). Every figure is "as the books stood at" a log
position, so a report is a pure function of a prefix of the event log: replay gives it back
exactly, and the chain head at that position seals it.

A report for period P, asked at moment T (default now), is cut at C = the last event recorded at
or before min(end of P, T), extended to any later-recorded donation received in or before P (a
late-entered cheque belongs to its month, and the chain head must cover it). Units outstanding
are counted at the period's end (or T); cash at C.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.fund import coverage_ratio, liability_fen, period_of_date
from domain.money import (
    UNIT_ASSETS,
    community_of_system_account,
    counts_as_outstanding,
    is_system_account,
)
from domain.periods import period_bounds, period_of
from projections.chain import chain_head_at
from projections.ledger import community_timezone, rows_of_accounts, utc_text
from projections.projector import Recorded
from projections.store import Cursor
from projections.wishes import fulfilled_count

CHART_MONTHS_MAX = 12  # the public page's chart shows the year up to the report's month


OUTSTANDING = "fund_outstanding"  # units outstanding per (community, asset): handed on to the next batch


class FundProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS fund_event_clock (position BIGINT PRIMARY KEY, occurred_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS fund_event_clock_by_time ON fund_event_clock (occurred_at, position)",
        "CREATE TABLE IF NOT EXISTS fund_outstanding ("
        " community_id TEXT NOT NULL, asset TEXT NOT NULL, position BIGINT NOT NULL, units BIGINT NOT NULL,"
        " PRIMARY KEY (community_id, asset, position))",
        "CREATE TABLE IF NOT EXISTS fund_movements ("
        " position BIGINT PRIMARY KEY, community_id TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,"
        " donations_fen BIGINT NOT NULL, reimbursements_fen BIGINT NOT NULL, rebates_fen BIGINT NOT NULL,"
        " source_id TEXT NOT NULL, label TEXT NOT NULL, occurred_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS fund_movements_by_period ON fund_movements (community_id, period, position)",
        "CREATE TABLE IF NOT EXISTS fund_settlements ("
        " settlement_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, period TEXT NOT NULL, status TEXT NOT NULL,"
        " rebate_rate_bps INTEGER NOT NULL, total_fen BIGINT NOT NULL, proposed_position BIGINT NOT NULL,"
        " paid_period TEXT, paid_position BIGINT, bank_reference TEXT)",
        "CREATE INDEX IF NOT EXISTS fund_settlements_by_paid_period ON fund_settlements (community_id, paid_period)",
        "CREATE TABLE IF NOT EXISTS fund_settlement_lines ("
        " settlement_id TEXT NOT NULL, merchant_id TEXT NOT NULL, redeemed BIGINT NOT NULL,"
        " funded_welfare BIGINT NOT NULL, funded_bean BIGINT NOT NULL, reimbursement_fen BIGINT NOT NULL,"
        " rebate_fen BIGINT NOT NULL, total_fen BIGINT NOT NULL, PRIMARY KEY (settlement_id, merchant_id))",
    )

    def __init__(self) -> None:
        # Units outstanding per (community, asset) as the batch being applied leaves them.
        self._outstanding_now: dict[tuple[str, str], int] = {}

    def apply_batch(self, cursor: Cursor, batch: Sequence[Recorded]) -> None:
        self._outstanding_now = cursor.handed_on(OUTSTANDING) or {}  # as the last batch left them
        _read_communities(cursor, {p.account_id for recorded in batch for p in recorded.postings
                                   if not is_system_account(p.account_id)})
        for recorded in batch:
            self.apply(cursor, recorded)
        cursor.hand_on(OUTSTANDING, self._outstanding_now)

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        """One event of the batch `apply_batch` is applying."""
        event = recorded.event
        cursor.execute("INSERT INTO fund_event_clock VALUES (?, ?)", (recorded.position, recorded.occurred_at))
        if recorded.postings:
            self._outstanding(cursor, recorded)
        name = type(event).__qualname__
        if name == "FundDonation.Received":
            period = period_of_date(datetime.fromisoformat(event.received_on).date())
            self._movement(cursor, recorded, "donation", period, (event.amount_fen, 0, 0), event.donor)
        elif name == "Settlement.Proposed":
            self._proposed(cursor, recorded)
        elif name in ("Settlement.Approved", "Settlement.Rejected"):
            status = "approved" if name == "Settlement.Approved" else "rejected"
            cursor.execute("UPDATE fund_settlements SET status = ? WHERE settlement_id = ?",
                           (status, recorded.originator))
        elif name == "Settlement.Paid":
            self._paid(cursor, recorded)

    def _outstanding(self, cursor: Cursor, recorded: Recorded) -> None:
        """Units in holders' hands (or pledged to wishes) per community, after every transaction
        that moves some (read once per batch, then carried in memory)."""
        deltas: dict[tuple[str, str], int] = defaultdict(int)
        for posting in recorded.postings:
            if posting.asset in UNIT_ASSETS and counts_as_outstanding(posting.account_id):
                deltas[(_community_of(cursor, posting.account_id), posting.asset.value)] += posting.amount
        for (community_id, asset), delta in sorted(deltas.items()):
            if delta:
                key = (community_id, asset)
                if key not in self._outstanding_now:
                    self._outstanding_now[key] = _outstanding_units(cursor, community_id, asset, recorded.position)
                units = self._outstanding_now[key] + delta
                self._outstanding_now[key] = units
                cursor.execute("INSERT INTO fund_outstanding VALUES (?, ?, ?, ?)",
                               (community_id, asset, recorded.position, units))

    @staticmethod
    def _movement(cursor: Cursor, recorded: Recorded, kind: str, period: str, amounts_fen: tuple[int, int, int],
                  label: str) -> None:
        event = recorded.event
        cursor.execute(
            "INSERT INTO fund_movements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (recorded.position, str(event.community_id), kind, period, *amounts_fen, recorded.originator, label,
             recorded.occurred_at),
        )

    @staticmethod
    def _proposed(cursor: Cursor, recorded: Recorded) -> None:
        event = recorded.event
        settlement_id = recorded.originator
        total = sum(int(line["total_fen"]) for line in event.lines)
        cursor.execute(
            "INSERT INTO fund_settlements VALUES (?, ?, ?, 'proposed', ?, ?, ?, NULL, NULL, NULL)",
            (settlement_id, str(event.community_id), event.period, event.rebate_rate_bps, total, recorded.position),
        )
        cursor.executemany(
            "INSERT INTO fund_settlement_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (settlement_id, line["merchant_id"], line["redeemed"], line["funded"]["welfare"],
                 line["funded"]["bean"], line["reimbursement_fen"], line["rebate_fen"], line["total_fen"])
                for line in event.lines
            ],
        )

    def _paid(self, cursor: Cursor, recorded: Recorded) -> None:
        event = recorded.event
        settlement_id = recorded.originator
        row = cursor.one("SELECT community_id FROM fund_settlements WHERE settlement_id = ?", (settlement_id,))
        assert row is not None, settlement_id
        community_id = str(row["community_id"])
        paid_period = period_of(event.timestamp, community_timezone(cursor, community_id))
        cursor.execute(
            "UPDATE fund_settlements SET status = 'paid', paid_period = ?, paid_position = ?, bank_reference = ?"
            " WHERE settlement_id = ?",
            (paid_period, recorded.position, event.bank_reference, settlement_id),
        )
        sums = cursor.one(
            "SELECT CAST(SUM(reimbursement_fen) AS BIGINT) AS reimbursements, CAST(SUM(rebate_fen) AS BIGINT) AS rebates"
            " FROM fund_settlement_lines WHERE settlement_id = ?",
            (settlement_id,),
        )
        assert sums is not None
        cursor.execute(
            "INSERT INTO fund_movements VALUES (?, ?, 'payout', ?, 0, ?, ?, ?, ?, ?)",
            (recorded.position, community_id, paid_period, int(sums["reimbursements"]), int(sums["rebates"]),
             settlement_id, event.bank_reference, recorded.occurred_at),
        )


def _read_communities(cursor: Cursor, account_ids: set[str]) -> None:
    """The communities of a batch's accounts at once, for `_community_of`."""
    unknown = {account_id for account_id in account_ids if not cursor.knows("account_community", account_id)}
    for row in rows_of_accounts(cursor, "SELECT account_id, community_id FROM ledger_accounts", unknown):
        cursor.remember("account_community", str(row["account_id"]), str(row["community_id"]))


def _community_of(cursor: Cursor, account_id: str) -> str:
    if is_system_account(account_id):
        return community_of_system_account(account_id)

    def read() -> str:
        row = cursor.one("SELECT community_id FROM ledger_accounts WHERE account_id = ?", (account_id,))
        assert row is not None, account_id
        return str(row["community_id"])

    return str(cursor.remembered("account_community", account_id, read))  # an account never moves


# --- queries -------------------------------------------------------------------------------


def position_at(cursor: Cursor, moment: datetime, *, inclusive: bool = True) -> int:
    """The last event recorded at (if `inclusive`) or before `moment`, by its time (ties: by
    position); 0 before the first."""
    comparison = "<=" if inclusive else "<"
    row = cursor.one(
        f"SELECT position FROM fund_event_clock WHERE occurred_at {comparison} ?"
        " ORDER BY occurred_at DESC, position DESC LIMIT 1",
        (utc_text(moment),),
    )
    return int(row["position"]) if row else 0


def events_count_at(cursor: Cursor, position: int) -> int:
    row = cursor.one("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM fund_event_clock WHERE position <= ?", (position,))
    assert row is not None
    return int(row["n"])


def community(cursor: Cursor, community_id: str) -> dict[str, Any] | None:
    return cursor.one("SELECT * FROM ledger_communities WHERE community_id = ?", (community_id,))


def public_communities(cursor: Cursor, limit: int) -> list[dict[str, Any]]:
    """What anyone may know of the communities: their ids, names and time zones, by name."""
    return cursor.all(
        "SELECT community_id, name, timezone FROM ledger_communities ORDER BY name, community_id LIMIT ?", (limit,)
    )


@dataclass(frozen=True)
class CashFigures:
    opening_balance_fen: int
    donations_fen: int
    reimbursements_fen: int
    rebates_fen: int

    @property
    def closing_balance_fen(self) -> int:
        return self.opening_balance_fen + self.donations_fen - self.reimbursements_fen - self.rebates_fen


def cash_figures(cursor: Cursor, community_id: str, period: str, position: int) -> CashFigures:
    rows = cursor.all(
        "SELECT period, CAST(SUM(donations_fen) AS BIGINT) AS donations,"
        " CAST(SUM(reimbursements_fen) AS BIGINT) AS reimbursements, CAST(SUM(rebates_fen) AS BIGINT) AS rebates"
        " FROM fund_movements WHERE community_id = ? AND period <= ? AND position <= ? GROUP BY period",
        (community_id, period, position),
    )
    opening, current = 0, (0, 0, 0)
    for row in rows:
        amounts = (int(row["donations"]), int(row["reimbursements"]), int(row["rebates"]))
        if row["period"] == period:
            current = amounts
        else:
            opening += amounts[0] - amounts[1] - amounts[2]
    return CashFigures(opening, *current)


def fund_balance_at(cursor: Cursor, community_id: str, position: int) -> dict[str, int]:
    """Cash as the books stood at `position`, whatever the dates the cash carries."""
    row = cursor.one(
        "SELECT CAST(COALESCE(SUM(donations_fen), 0) AS BIGINT) AS donations,"
        " CAST(COALESCE(SUM(reimbursements_fen + rebates_fen), 0) AS BIGINT) AS paid"
        " FROM fund_movements WHERE community_id = ? AND position <= ?",
        (community_id, position),
    )
    assert row is not None
    donations, paid = int(row["donations"]), int(row["paid"])
    return {"balance_fen": donations - paid, "received_fen": donations, "paid_out_fen": paid}


def _outstanding_units(cursor: Cursor, community_id: str, asset: str, position: int) -> int:
    row = cursor.one(
        "SELECT units FROM fund_outstanding WHERE community_id = ? AND asset = ? AND position <= ?"
        " ORDER BY position DESC LIMIT 1",
        (community_id, asset, position),
    )
    return int(row["units"]) if row else 0


def outstanding_at(cursor: Cursor, community_id: str, position: int) -> dict[str, int]:
    """Units in the hands of volunteers, beneficiaries and merchants (not yet repaid), and pledged to wishes."""
    return {asset.value: _outstanding_units(cursor, community_id, asset.value, position) for asset in UNIT_ASSETS}


def merchants_paid(cursor: Cursor, community_id: str, period: str, position: int) -> list[dict[str, Any]]:
    """What each merchant was paid in the period (by settlements paid then), by name."""
    rows = cursor.all(
        "SELECT l.merchant_id AS merchant_id, a.display_name AS display_name,"
        " CAST(SUM(l.redeemed) AS BIGINT) AS redeemed, CAST(SUM(l.reimbursement_fen) AS BIGINT) AS reimbursement_fen,"
        " CAST(SUM(l.rebate_fen) AS BIGINT) AS rebate_fen"
        " FROM fund_settlement_lines l JOIN fund_settlements s ON s.settlement_id = l.settlement_id"
        " JOIN ledger_accounts a ON a.account_id = l.merchant_id"
        " WHERE s.community_id = ? AND s.paid_period = ? AND s.paid_position <= ?"
        " GROUP BY l.merchant_id, a.display_name ORDER BY a.display_name, l.merchant_id",
        (community_id, period, position),
    )
    return [
        {"merchant_id": row["merchant_id"], "display_name": row["display_name"], "redeemed": int(row["redeemed"]),
         "reimbursement_fen": int(row["reimbursement_fen"]), "rebate_fen": int(row["rebate_fen"])}
        for row in rows
    ]


def monthly_flows(cursor: Cursor, community_id: str, period: str, position: int) -> list[dict[str, Any]]:
    """Inflows and outflows per month, for the CHART_MONTHS_MAX months up to `period`."""
    months = _months_up_to(period, CHART_MONTHS_MAX)
    rows = cursor.all(
        "SELECT period, CAST(SUM(donations_fen) AS BIGINT) AS inflow,"
        " CAST(SUM(reimbursements_fen + rebates_fen) AS BIGINT) AS outflow"
        " FROM fund_movements WHERE community_id = ? AND period >= ? AND period <= ? AND position <= ? GROUP BY period",
        (community_id, months[0], period, position),
    )
    found = {row["period"]: (int(row["inflow"]), int(row["outflow"])) for row in rows}
    return [{"period": m, "inflow_fen": found.get(m, (0, 0))[0], "outflow_fen": found.get(m, (0, 0))[1]} for m in months]


def _months_up_to(period: str, count: int) -> list[str]:
    year, month = int(period[:4]), int(period[5:])
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


@dataclass(frozen=True)
class ReportCut:
    units_position: int  # the last event at or before the period's end (or the moment asked)
    books_position: int  # the last event the report reflects: chain head and events count are here


def first_report_period(cursor: Cursor, community_id: str) -> str:
    """The community's first month: the month it was registered, or an earlier month that cash
    received before registration counts in (a cheque entered late still belongs to its month)."""
    found = community(cursor, community_id)
    assert found is not None, community_id
    registered = period_of(datetime.fromisoformat(str(found["registered_at"])), str(found["timezone"]))
    row = cursor.one("SELECT MIN(period) AS period FROM fund_movements WHERE community_id = ?", (community_id,))
    earliest_cash = str(row["period"]) if row and row["period"] is not None else registered
    return min(registered, earliest_cash)


def report_periods(cursor: Cursor, community_id: str, moment: datetime) -> list[str]:
    """Every month with a public report at `moment`, oldest first: the first month to the current one."""
    timezone = community_timezone(cursor, community_id)
    last = period_of(moment, timezone)
    periods: list[str] = []
    period = first_report_period(cursor, community_id)
    while period <= last:
        periods.append(period)
        period = period_of(period_bounds(period, timezone)[1], timezone)
    return periods


def report_cut(cursor: Cursor, community_id: str, period: str, moment: datetime) -> ReportCut | None:
    """None when the period had not begun at `moment`, or is older than the community's first
    month: there is nothing to report."""
    start, end = period_bounds(period, community_timezone(cursor, community_id))
    if moment < start or period < first_report_period(cursor, community_id):
        return None
    as_of_position = position_at(cursor, moment)
    units_position = position_at(cursor, end, inclusive=False) if end <= moment else as_of_position
    late = cursor.one(
        "SELECT MAX(position) AS position FROM fund_movements WHERE community_id = ? AND period <= ? AND position <= ?",
        (community_id, period, as_of_position),
    )
    late_position = int(late["position"]) if late and late["position"] is not None else 0
    return ReportCut(units_position, max(units_position, late_position))


def fund_report(cursor: Cursor, community_id: str, period: str, moment: datetime) -> dict[str, Any] | None:
    """The public fund report of `period` as the books stood at `moment`; None if not begun."""
    found = community(cursor, community_id)
    if found is None:
        return None
    cut = report_cut(cursor, community_id, period, moment)
    if cut is None:
        return None
    cash = cash_figures(cursor, community_id, period, cut.books_position)
    units = outstanding_at(cursor, community_id, cut.units_position)
    liability = liability_fen(units["bean"] + units["welfare"], int(found["rebate_rate_bps"]))
    return {
        "period": period,
        "opening_balance_fen": cash.opening_balance_fen,
        "donations_fen": cash.donations_fen,
        "reimbursements_fen": cash.reimbursements_fen,
        "rebates_fen": cash.rebates_fen,
        "closing_balance_fen": cash.closing_balance_fen,
        "beans_outstanding": units["bean"],
        "welfare_outstanding": units["welfare"],
        "liability_fen": liability,
        "coverage_ratio": coverage_ratio(cash.closing_balance_fen, liability),
        "merchants": merchants_paid(cursor, community_id, period, cut.books_position),
        "chain_head": chain_head_at(cursor, cut.books_position),
        "events_count": events_count_at(cursor, cut.books_position),
        "wishes_fulfilled": fulfilled_count(cursor, community_id, period, cut.books_position),
    }


def report_flows(cursor: Cursor, community_id: str, period: str, moment: datetime) -> list[dict[str, Any]]:
    """The chart beside a report: monthly cash in and out, cut where the report is cut."""
    cut = report_cut(cursor, community_id, period, moment)
    return [] if cut is None else monthly_flows(cursor, community_id, period, cut.books_position)


def fund_position(cursor: Cursor, community_id: str, moment: datetime) -> dict[str, Any]:
    """The fund's cash, outstanding units and cover as the books stood at `moment`."""
    found = community(cursor, community_id)
    assert found is not None, community_id
    position = position_at(cursor, moment)
    cash = fund_balance_at(cursor, community_id, position)
    units = outstanding_at(cursor, community_id, position)
    liability = liability_fen(units["bean"] + units["welfare"], int(found["rebate_rate_bps"]))
    return {
        "community_id": community_id, **cash, "beans_outstanding": units["bean"],
        "welfare_outstanding": units["welfare"], "liability_fen": liability,
        "coverage_ratio": coverage_ratio(cash["balance_fen"], liability),
        "chain_head": chain_head_at(cursor, position), "events_count": events_count_at(cursor, position),
    }


def settlements_of(cursor: Cursor, community_id: str, period: str) -> list[dict[str, Any]]:
    """A period's settlements in the order they were proposed (for the staff console and replay)."""
    return cursor.all(
        "SELECT * FROM fund_settlements WHERE community_id = ? AND period = ? ORDER BY proposed_position",
        (community_id, period),
    )
