"""The ledger read model: balances and entries of every account, system accounts included.

Any event that carries `postings` is a transaction; this projection applies it generically, so a
new kind of money movement needs only a name in TRANSACTION_TYPES.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from datetime import timezone as utc_timezone
from typing import Any

from domain.money import UNIT_ASSETS
from projections.projector import Recorded
from projections.store import Cursor

# Event class (qualified name) → the transaction type shown on statements.
TRANSACTION_TYPES: dict[str, str] = {
    "Report.Verified": "report_award",
    "Report.Closed": "dispatch_award",
    "Donation.Made": "donation",
    "Redemption.Completed": "redemption",
    "Redemption.Reversed": "reversal",
    "WelfareAllowance.Issued": "welfare_allowance",
    "FundDonation.Received": "fund_donation",
    "Settlement.Paid": "settlement",
    "Wish.Pledged": "wish_pledge",
    "Wish.Cancelled": "wish_refund",
}

ENTRIES_PAGE_MAX = 500


def transaction_type(name: str) -> str:
    """The statement type of the event class `name`, which moves money."""
    try:
        return TRANSACTION_TYPES[name]
    except KeyError:
        raise LookupError(f"{name} moves money (it carries postings) but has no statement type: add it to "
                          "projections/ledger.py TRANSACTION_TYPES (docs/adding-a-transaction.md)") from None


# Whose name a statement line shows: the shop on a sale or its reversal (shops are public), both
# sides of a donation (a donor and the elder they chose know each other). A customer's name never
# reaches a merchant's statement.
SALE_TYPES = frozenset({"redemption", "reversal"})


class LedgerProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS ledger_communities ("
        " community_id TEXT PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL,"
        " rebate_rate_bps INTEGER NOT NULL, registered_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger_accounts ("
        " account_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " display_name TEXT NOT NULL, status TEXT NOT NULL, merchant_categories TEXT NOT NULL,"
        " opened_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ledger_accounts_by_community ON ledger_accounts (community_id, kind)",
        "CREATE TABLE IF NOT EXISTS ledger_balances ("
        " account_id TEXT NOT NULL, asset TEXT NOT NULL, balance BIGINT NOT NULL,"
        " PRIMARY KEY (account_id, asset))",
        "CREATE TABLE IF NOT EXISTS ledger_entries ("
        " position BIGINT NOT NULL, idx INTEGER NOT NULL, account_id TEXT NOT NULL,"
        " transaction_id TEXT NOT NULL, type TEXT NOT NULL, asset TEXT NOT NULL,"
        " amount BIGINT NOT NULL, balance_after BIGINT NOT NULL, counterparty_id TEXT,"
        " occurred_at TEXT NOT NULL, PRIMARY KEY (position, idx))",
        "CREATE INDEX IF NOT EXISTS ledger_entries_by_account ON ledger_entries (account_id, position, idx)",
        # What a statement line was for, beyond its type: the category of the report an award
        # came from, the month of a welfare allowance.
        "CREATE TABLE IF NOT EXISTS ledger_reports (report_id TEXT PRIMARY KEY, category TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger_transaction_notes ("
        " transaction_id TEXT PRIMARY KEY, report_category TEXT, period TEXT)",
    )

    def __init__(self) -> None:
        # The batch being applied: every balance it moves (read once, written once at its end)
        # and the categories of the reports submitted in it.
        self._balances: dict[tuple[str, str], int] = {}
        self._report_categories: dict[str, str] = {}

    def apply_batch(self, cursor: Cursor, batch: Sequence[Recorded]) -> None:
        """Balances are folded in memory: one query reads those the batch moves, one statement
        writes each once; every entry still carries the balance after it."""
        known: dict[tuple[str, str], int] = cursor.handed_on(BALANCES) or {}  # as the last batch left them
        self._balances = _balances_moved(cursor, batch, known)
        self._report_categories = {}
        for recorded in batch:
            self.apply(cursor, recorded)
        cursor.executemany(
            "INSERT INTO ledger_balances (account_id, asset, balance) VALUES (?, ?, ?) ON CONFLICT (account_id, asset)"
            " DO UPDATE SET balance = excluded.balance",
            [(account_id, asset, balance) for (account_id, asset), balance in sorted(self._balances.items())],
        )
        if len(known) + len(self._balances) > BALANCES_HANDED_MAX:
            known = {}
        known.update(self._balances)
        cursor.hand_on(BALANCES, known)

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        """One event of the batch `apply_batch` is applying."""
        event = recorded.event
        name = type(event).__qualname__
        if name == "Community.Registered":
            cursor.execute(
                "INSERT INTO ledger_communities VALUES (?, ?, ?, ?, ?)",
                (recorded.originator, event.name, event.timezone, event.rebate_rate_bps, recorded.occurred_at),
            )
        elif name == "Account.Opened":
            cursor.execute(
                "INSERT INTO ledger_accounts VALUES (?, ?, ?, ?, 'active', ?, ?)",
                (
                    recorded.originator, str(event.community_id), event.kind, event.display_name,
                    ",".join(event.merchant_categories), recorded.occurred_at,
                ),
            )
        elif name in ("Account.Frozen", "Account.Unfrozen"):
            status = "frozen" if name == "Account.Frozen" else "active"
            cursor.execute("UPDATE ledger_accounts SET status = ? WHERE account_id = ?", (status, recorded.originator))
        elif name == "Report.Submitted":
            self._report_categories[recorded.originator] = event.category
            cursor.execute("INSERT INTO ledger_reports VALUES (?, ?)", (recorded.originator, event.category))
        if recorded.postings:  # a report closed with no awards moves nothing
            self._apply_transaction(cursor, recorded, transaction_type(name))
            self._note_transaction(cursor, recorded)

    def _note_transaction(self, cursor: Cursor, recorded: Recorded) -> None:
        event = recorded.event
        name = type(event).__qualname__
        category = None
        if name in ("Report.Verified", "Report.Closed"):
            category = self._report_category(cursor, recorded.originator)
        period = event.period if name == "WelfareAllowance.Issued" else None
        if category is not None or period is not None:
            cursor.execute("INSERT INTO ledger_transaction_notes VALUES (?, ?, ?)", (event.transaction_id, category, period))

    def _report_category(self, cursor: Cursor, report_id: str) -> str | None:
        """None only in a read model begun mid-history."""
        if report_id not in self._report_categories:
            row = cursor.one("SELECT category FROM ledger_reports WHERE report_id = ?", (report_id,))
            if row is None:
                return None
            self._report_categories[report_id] = str(row["category"])
        return self._report_categories[report_id]

    def _apply_transaction(self, cursor: Cursor, recorded: Recorded, transaction_type: str) -> None:
        event = recorded.event
        postings = recorded.postings
        for idx, posting in enumerate(postings):
            opposite = {
                p.account_id for p in postings
                if p.asset is posting.asset and (p.amount > 0) != (posting.amount > 0)
            }
            counterparty = next(iter(opposite)) if len(opposite) == 1 else None
            key = (posting.account_id, posting.asset.value)
            balance_after = self._balances[key] + posting.amount
            self._balances[key] = balance_after
            cursor.execute(
                "INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    recorded.position, idx, posting.account_id, event.transaction_id, transaction_type,
                    posting.asset.value, posting.amount, balance_after, counterparty, recorded.occurred_at,
                ),
            )


BALANCES = "ledger_balances"  # what a batch hands on to the next (projections/store.py `Carried`)
BALANCES_HANDED_MAX = 100_000  # (account, asset) balances kept in memory between batches, at most
ACCOUNTS_PER_QUERY_MAX = 500  # keeps an IN list well inside every backend's limit on parameters


def _balances_moved(cursor: Cursor, batch: Sequence[Recorded],
                    known: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """The balance before the batch of every (account, asset) its postings move (0 if none yet):
    from `known` (balances as they stand before the batch) where it has them, else read."""
    moved = {
        (posting.account_id, posting.asset.value)
        for recorded in batch for posting in recorded.postings
    }
    found = {key: known[key] for key in moved if key in known}
    unknown = moved - found.keys()
    found.update(dict.fromkeys(unknown, 0))
    for row in rows_of_accounts(cursor, "SELECT account_id, asset, balance FROM ledger_balances",
                                {account_id for account_id, _ in unknown}):
        key = (row["account_id"], row["asset"])
        if key in unknown:
            found[key] = int(row["balance"])
    return found


def rows_of_accounts(cursor: Cursor, select: str, account_ids: set[str]) -> list[dict[str, Any]]:
    """`select ... WHERE account_id IN (...)` for many accounts, ACCOUNTS_PER_QUERY_MAX a query."""
    ordered, rows = sorted(account_ids), []
    for start in range(0, len(ordered), ACCOUNTS_PER_QUERY_MAX):
        chunk = ordered[start:start + ACCOUNTS_PER_QUERY_MAX]
        rows += cursor.all(f"{select} WHERE account_id IN ({', '.join('?' * len(chunk))})", chunk)
    return rows


def balances(cursor: Cursor, account_id: str) -> dict[str, int]:
    return balances_of(cursor, [account_id])[account_id]


def balances_of(cursor: Cursor, account_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Unit balances of several accounts (a page of a list) in one query."""
    placeholders = ", ".join("?" * len(account_ids))
    rows = cursor.all(
        f"SELECT account_id, asset, balance FROM ledger_balances WHERE account_id IN ({placeholders})",  # noqa: S608
        list(account_ids),
    ) if account_ids else []
    found = {(row["account_id"], row["asset"]): int(row["balance"]) for row in rows}
    return {
        account_id: {asset.value: found.get((account_id, asset.value), 0) for asset in UNIT_ASSETS}
        for account_id in account_ids
    }


def totals_by_asset(cursor: Cursor) -> dict[str, int]:
    """Σ of every balance per asset: zero for every asset, always (double entry)."""
    rows = cursor.all("SELECT asset, CAST(SUM(balance) AS BIGINT) AS total FROM ledger_balances GROUP BY asset")
    return {row["asset"]: int(row["total"]) for row in rows}


def all_balances(cursor: Cursor) -> dict[tuple[str, str], int]:
    rows = cursor.all("SELECT account_id, asset, balance FROM ledger_balances WHERE balance <> 0")
    return {(row["account_id"], row["asset"]): int(row["balance"]) for row in rows}


_ENTRIES_WITH_REASONS = (
    "SELECT e.*, a.display_name AS counterparty_name, a.kind AS counterparty_kind,"
    " n.report_category AS report_category, n.period AS period"
    " FROM ledger_entries e"
    " LEFT JOIN ledger_accounts a ON a.account_id = e.counterparty_id"
    " LEFT JOIN ledger_transaction_notes n ON n.transaction_id = e.transaction_id"
    " WHERE e.account_id = ?"
)


def entries(cursor: Cursor, account_id: str, *, limit: int, before: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Newest first; `before` is the (position, idx) of the last entry already seen. Each row also
    says what it was for: `counterparty_name` (shops; donors and the elders they gave to, never
    customers), `report_category` of an award, `period` of a welfare allowance."""
    assert 1 <= limit <= ENTRIES_PAGE_MAX + 1
    if before is None:
        rows = cursor.all(f"{_ENTRIES_WITH_REASONS} ORDER BY e.position DESC, e.idx DESC LIMIT ?", (account_id, limit))
    else:
        position, idx = before
        rows = cursor.all(
            f"{_ENTRIES_WITH_REASONS} AND (e.position < ? OR (e.position = ? AND e.idx < ?))"
            " ORDER BY e.position DESC, e.idx DESC LIMIT ?",
            (account_id, position, position, idx, limit),
        )
    for row in rows:
        if not _names_counterparty(row):
            row["counterparty_name"] = None
    return rows


def _names_counterparty(row: dict[str, Any]) -> bool:
    return row["type"] == "donation" or (row["type"] in SALE_TYPES and row["counterparty_kind"] == "merchant")


def entry(cursor: Cursor, account_id: str, position: int, idx: int) -> dict[str, Any] | None:
    return cursor.one(
        "SELECT * FROM ledger_entries WHERE position = ? AND idx = ? AND account_id = ?", (position, idx, account_id)
    )


def community_timezone(cursor: Cursor, community_id: str) -> str:
    def read() -> str:
        row = cursor.one("SELECT timezone FROM ledger_communities WHERE community_id = ?", (community_id,))
        assert row is not None, community_id
        return str(row["timezone"])

    return str(cursor.remembered("community_timezone", community_id, read))  # a time zone never changes


def beneficiary_ids(cursor: Cursor, community_id: str) -> list[str]:
    """Every beneficiary of a community, frozen ones too (a frozen account still receives)."""
    rows = cursor.all(
        "SELECT account_id FROM ledger_accounts WHERE community_id = ? AND kind = 'beneficiary' ORDER BY opened_at, account_id",
        (community_id,),
    )
    return [str(row["account_id"]) for row in rows]


def utc_text(moment: datetime) -> str:
    """A moment spelled as event timestamps are stored (UTC isoformat), so text order is time order."""
    assert moment.tzinfo is not None
    return moment.astimezone(utc_timezone.utc).isoformat()


def balances_as_of(cursor: Cursor, account_id: str, moment: datetime) -> dict[str, int]:
    """Balances as they stood at `moment`: per asset, `balance_after` of the last entry by then."""
    found = {}
    for asset in UNIT_ASSETS:
        row = cursor.one(
            "SELECT balance_after FROM ledger_entries WHERE account_id = ? AND asset = ? AND occurred_at <= ?"
            " ORDER BY position DESC, idx DESC LIMIT 1",
            (account_id, asset.value, utc_text(moment)),
        )
        found[asset.value] = int(row["balance_after"]) if row else 0
    return found
