"""The ledger read model: balances and entries of every account, system accounts included.

Any event that carries `postings` is a transaction; this projection applies it generically, so a
new kind of money movement needs only a name in TRANSACTION_TYPES.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as utc_timezone
from typing import Any

from domain.money import UNIT_ASSETS, decode_postings
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
    )

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        event = recorded.event
        name = type(event).__qualname__
        if name == "Community.Registered":
            cursor.execute(
                "INSERT INTO ledger_communities VALUES (?, ?, ?, ?, ?)",
                (str(event.originator_id), event.name, event.timezone, event.rebate_rate_bps, event.timestamp.isoformat()),
            )
        elif name == "Account.Opened":
            cursor.execute(
                "INSERT INTO ledger_accounts VALUES (?, ?, ?, ?, 'active', ?, ?)",
                (
                    str(event.originator_id), str(event.community_id), event.kind, event.display_name,
                    ",".join(event.merchant_categories), event.timestamp.isoformat(),
                ),
            )
        elif name in ("Account.Frozen", "Account.Unfrozen"):
            status = "frozen" if name == "Account.Frozen" else "active"
            cursor.execute("UPDATE ledger_accounts SET status = ? WHERE account_id = ?", (status, str(event.originator_id)))
        if getattr(event, "postings", None):  # a report closed with no awards moves nothing
            self._apply_transaction(cursor, recorded, TRANSACTION_TYPES[name])

    def _apply_transaction(self, cursor: Cursor, recorded: Recorded, transaction_type: str) -> None:
        event = recorded.event
        postings = decode_postings(event.postings)
        for idx, posting in enumerate(postings):
            opposite = {
                p.account_id for p in postings
                if p.asset is posting.asset and (p.amount > 0) != (posting.amount > 0)
            }
            counterparty = next(iter(opposite)) if len(opposite) == 1 else None
            row = cursor.one(
                "INSERT INTO ledger_balances VALUES (?, ?, ?) ON CONFLICT (account_id, asset)"
                " DO UPDATE SET balance = ledger_balances.balance + excluded.balance RETURNING balance",
                (posting.account_id, posting.asset.value, posting.amount),
            )
            assert row is not None
            balance_after = int(row["balance"])
            cursor.execute(
                "INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    recorded.position, idx, posting.account_id, event.transaction_id, transaction_type,
                    posting.asset.value, posting.amount, balance_after, counterparty, event.timestamp.isoformat(),
                ),
            )


def balances(cursor: Cursor, account_id: str) -> dict[str, int]:
    rows = cursor.all("SELECT asset, balance FROM ledger_balances WHERE account_id = ?", (account_id,))
    found = {row["asset"]: int(row["balance"]) for row in rows}
    return {asset.value: found.get(asset.value, 0) for asset in UNIT_ASSETS}


def totals_by_asset(cursor: Cursor) -> dict[str, int]:
    """Σ of every balance per asset: zero for every asset, always (double entry)."""
    rows = cursor.all("SELECT asset, CAST(SUM(balance) AS BIGINT) AS total FROM ledger_balances GROUP BY asset")
    return {row["asset"]: int(row["total"]) for row in rows}


def all_balances(cursor: Cursor) -> dict[tuple[str, str], int]:
    rows = cursor.all("SELECT account_id, asset, balance FROM ledger_balances WHERE balance <> 0")
    return {(row["account_id"], row["asset"]): int(row["balance"]) for row in rows}


def entries(cursor: Cursor, account_id: str, *, limit: int, before: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Newest first; `before` is the (position, idx) of the last entry already seen."""
    assert 1 <= limit <= ENTRIES_PAGE_MAX + 1
    if before is None:
        return cursor.all(
            "SELECT * FROM ledger_entries WHERE account_id = ? ORDER BY position DESC, idx DESC LIMIT ?",
            (account_id, limit),
        )
    position, idx = before
    return cursor.all(
        "SELECT * FROM ledger_entries WHERE account_id = ? AND (position < ? OR (position = ? AND idx < ?))"
        " ORDER BY position DESC, idx DESC LIMIT ?",
        (account_id, position, position, idx, limit),
    )


def community_timezone(cursor: Cursor, community_id: str) -> str:
    row = cursor.one("SELECT timezone FROM ledger_communities WHERE community_id = ?", (community_id,))
    assert row is not None, community_id
    return str(row["timezone"])


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
