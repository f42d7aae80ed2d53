"""The directory: the lists people work from (communities, accounts, reports, settlements,
staff), each answered by one index range scan whatever its filters and however long it is.

One B-tree serves every list: `directory_keys (list_key, position)`. A list key names the list
and a value or `*` (any) for each of its filters, e.g. `reports|<community>|submitted|*|*`. An
item has one key row per combination of its own filter values and wildcards (2^filters rows,
at most 16), all at the log position of the event that created it. A page, newest first, is
then `list_key = ? AND position < ? ORDER BY position DESC LIMIT n` — keyset paging on the
log position, never OFFSET, for any filter combination. See docs/decisions/0007-list-indexes.md.

Each list also keeps its own row per item with the filter values its keys were built from, so
a change (a report verified, an account frozen) replaces exactly those keys, whatever order the
projections run in.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.accounts import AccountStatus
from domain.reports import ReportStatus
from domain.settlements import SettlementStatus
from projections.projector import Recorded
from projections.store import Cursor

ANY = "*"  # no filter value is ever spelled so: ids are UUIDs, the rest are lower-case words or YYYY-MM
KEY_SEPARATOR = "|"
LIKE_ESCAPE = "\\"
PAGE_ROWS_MAX = 501  # the API's largest page plus the one row that says whether there is more


@dataclass(frozen=True)
class DirectoryList:
    """One list: its table of items and the filters, in key order, that its keys combine."""

    name: str
    table: str
    id_column: str
    filters: tuple[str, ...]

    def key(self, **values: str | None) -> str:
        """The key of the page a request asks for: a value or `*` per filter."""
        assert set(values) <= set(self.filters), values
        return KEY_SEPARATOR.join((self.name, *(values.get(f) or ANY for f in self.filters)))

    def keys_of(self, row: Mapping[str, Any]) -> set[str]:
        """Every key an item is found under (a filter it has no value for only as `*`)."""
        choices = [(ANY,) if row[f] is None else (str(row[f]), ANY) for f in self.filters]
        return {KEY_SEPARATOR.join((self.name, *combination)) for combination in itertools.product(*choices)}


COMMUNITIES = DirectoryList("communities", "directory_communities", "community_id", ("community_id",))
ACCOUNTS = DirectoryList("accounts", "directory_accounts", "account_id", ("community_id", "kind", "status"))
REPORTS = DirectoryList("reports", "directory_reports", "report_id", ("community_id", "status", "category", "reporter_id"))
SETTLEMENTS = DirectoryList("settlements", "directory_settlements", "settlement_id", ("community_id", "period", "status"))
STAFF = DirectoryList("staff", "directory_staff", "staff_id", ("community_id",))

REPORT_STATUS_AFTER = {
    "Report.Rejected": ReportStatus.REJECTED.value,
    "Report.Dispatched": ReportStatus.DISPATCHED.value,
    "Report.Closed": ReportStatus.CLOSED.value,
}
SETTLEMENT_STATUS_AFTER = {
    "Settlement.Approved": SettlementStatus.APPROVED.value,
    "Settlement.Rejected": SettlementStatus.REJECTED.value,
    "Settlement.Paid": SettlementStatus.PAID.value,
}


class DirectoryProjection:
    tables = (
        "CREATE TABLE IF NOT EXISTS directory_keys ("
        " list_key TEXT NOT NULL, position BIGINT NOT NULL, item_id TEXT NOT NULL, PRIMARY KEY (list_key, position))",
        "CREATE TABLE IF NOT EXISTS directory_communities (community_id TEXT PRIMARY KEY, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS directory_accounts ("
        " account_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,"
        " search_name TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS directory_reports ("
        " report_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, reporter_id TEXT NOT NULL, category TEXT NOT NULL,"
        " status TEXT NOT NULL, description TEXT NOT NULL, award BIGINT, handler_ids TEXT NOT NULL,"
        " submitted_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS directory_settlements ("
        " settlement_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, period TEXT NOT NULL, status TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS directory_staff ("
        " staff_id TEXT PRIMARY KEY, community_id TEXT, display_name TEXT NOT NULL, role TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
    )

    def __init__(self) -> None:
        # The batch being applied, folded in memory and written at its end: every item it read
        # or wrote as it stands now, which of them it created and which it changed, the key rows
        # it leaves (an item id) or removed (None), and every key row it removed at some point.
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._created: dict[tuple[str, str], DirectoryList] = {}
        self._changed: dict[tuple[str, str], DirectoryList] = {}
        self._keys: dict[tuple[str, int], str | None] = {}
        self._removed: set[tuple[str, int]] = set()

    def apply_batch(self, cursor: Cursor, batch: Sequence[Recorded]) -> None:
        """Each item is written once per batch with its last values (an insert if the batch
        created it, else an update), and the keys by two statements: every key row the batch
        removed at some point is deleted, then every one it leaves is inserted."""
        self._rows, self._created, self._changed, self._keys, self._removed = {}, {}, {}, {}, set()
        for recorded in batch:
            self.apply(cursor, recorded)
        for listed in LISTS:
            created = [self._rows[item] for item, owner in self._created.items() if owner is listed]
            changed = [self._rows[item] for item, owner in self._changed.items() if owner is listed]
            if created:
                columns = sorted(created[0])
                cursor.executemany(
                    f"INSERT INTO {listed.table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608
                    [[row[column] for column in columns] for row in created],
                )
            if changed:
                columns = sorted(column for column in changed[0] if column != listed.id_column)
                cursor.executemany(
                    f"UPDATE {listed.table} SET {', '.join(f'{column} = ?' for column in columns)}"  # noqa: S608
                    f" WHERE {listed.id_column} = ?",
                    [[*(row[column] for column in columns), row[listed.id_column]] for row in changed],
                )
        cursor.executemany("DELETE FROM directory_keys WHERE list_key = ? AND position = ?", sorted(self._removed))
        cursor.executemany(
            "INSERT INTO directory_keys VALUES (?, ?, ?)",
            [(key, position, item_id) for (key, position), item_id in self._keys.items() if item_id is not None],
        )

    def apply(self, cursor: Cursor, recorded: Recorded) -> None:
        """One event of the batch `apply_batch` is applying."""
        event = recorded.event
        name = type(event).__qualname__
        item_id = recorded.originator
        if name == "Community.Registered":
            self._add(COMMUNITIES, {"community_id": item_id, "position": recorded.position})
        elif name == "Staff.Registered":
            community_id = None if event.community_id is None else str(event.community_id)
            self._add(STAFF, {"staff_id": item_id, "community_id": community_id, "display_name": event.display_name,
                                 "role": event.role, "position": recorded.position})
        elif name == "Account.Opened":
            self._add(ACCOUNTS, {
                "account_id": item_id, "community_id": str(event.community_id), "kind": event.kind,
                "status": AccountStatus.ACTIVE.value, "search_name": event.display_name.casefold(),
                "position": recorded.position,
            })
        elif name in ("Account.Frozen", "Account.Unfrozen"):
            status = AccountStatus.FROZEN if name == "Account.Frozen" else AccountStatus.ACTIVE
            self._change(cursor, ACCOUNTS, item_id, status=status.value)
        elif name == "Report.Submitted":
            self._add(REPORTS, {
                "report_id": item_id, "community_id": str(event.community_id), "reporter_id": str(event.reporter_id),
                "category": event.category, "status": ReportStatus.SUBMITTED.value, "description": event.description,
                "award": None, "handler_ids": "[]", "submitted_at": recorded.occurred_at,
                "position": recorded.position,
            })
        elif name == "Report.Verified":
            self._verified(cursor, item_id, event.award)
        elif name in REPORT_STATUS_AFTER:
            changes: dict[str, Any] = {"status": REPORT_STATUS_AFTER[name]}
            if name == "Report.Dispatched":
                changes["handler_ids"] = json.dumps(list(event.handler_ids))
            self._change(cursor, REPORTS, item_id, **changes)
        elif name == "Settlement.Proposed":
            self._add(SETTLEMENTS, {
                "settlement_id": item_id, "community_id": str(event.community_id), "period": event.period,
                "status": SettlementStatus.PROPOSED.value, "position": recorded.position,
            })
        elif name in SETTLEMENT_STATUS_AFTER:
            self._change(cursor, SETTLEMENTS, item_id, status=SETTLEMENT_STATUS_AFTER[name])

    def _verified(self, cursor: Cursor, report_id: str, award: int) -> None:
        """As the report itself: verifying an urgent report already dispatched or closed keeps
        its status and only records the award."""
        row = self._item(cursor, REPORTS, report_id)
        submitted = row["status"] == ReportStatus.SUBMITTED.value
        self._change(cursor, REPORTS, report_id, award=award,
                status=ReportStatus.VERIFIED.value if submitted else row["status"])

    def _item(self, cursor: Cursor, listed: DirectoryList, item_id: str) -> dict[str, Any]:
        if (listed.table, item_id) not in self._rows:
            row = cursor.one(f"SELECT * FROM {listed.table} WHERE {listed.id_column} = ?", (item_id,))  # noqa: S608 (our own names)
            assert row is not None, (listed.name, item_id)
            self._rows[(listed.table, item_id)] = row
        return self._rows[(listed.table, item_id)]

    def _add(self, listed: DirectoryList, row: dict[str, Any]) -> None:
        item = (listed.table, str(row[listed.id_column]))
        self._rows[item] = row
        self._created[item] = listed
        self._set_keys(listed.keys_of(row), int(row["position"]), item[1])

    def _change(self, cursor: Cursor, listed: DirectoryList, item_id: str, **changes: Any) -> None:
        """Change an item and replace the keys whose filter values changed (its position stays)."""
        before = self._item(cursor, listed, item_id)
        after = before | changes
        item = (listed.table, item_id)
        self._rows[item] = after
        if item not in self._created:
            self._changed[item] = listed
        position = int(before["position"])
        old_keys, new_keys = listed.keys_of(before), listed.keys_of(after)
        for key in old_keys - new_keys:
            self._keys[(key, position)] = None
            self._removed.add((key, position))
        self._set_keys(new_keys - old_keys, position, item_id)

    def _set_keys(self, keys: set[str], position: int, item_id: str) -> None:
        for key in sorted(keys):
            self._keys[(key, position)] = item_id


LISTS = (COMMUNITIES, ACCOUNTS, REPORTS, SETTLEMENTS, STAFF)


# --- queries -------------------------------------------------------------------------------


def like_contains(text: str) -> str:
    """A LIKE pattern (escaped with LIKE_ESCAPE) matching names that contain `text`, case folded
    as `search_name` is: `%` and `_` in what people type are letters, not wildcards."""
    escaped = "".join(LIKE_ESCAPE + c if c in ("%", "_", LIKE_ESCAPE) else c for c in text.casefold())
    return f"%{escaped}%"


def page_rows(
    cursor: Cursor, key: str, *, limit: int, before: int | None, joins: str = "", columns: str = "",
    condition: str = "", params: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Up to `limit` items listed under `key`, newest first, created before log position
    `before` (the previous page's last); each row has `position`, `item_id` and `columns` of
    the `joins` (tables joined on the key row `k`)."""
    assert 1 <= limit <= PAGE_ROWS_MAX
    where = "k.list_key = ?" + ("" if before is None else " AND k.position < ?") + (f" AND {condition}" if condition else "")
    select = "k.position AS position, k.item_id AS item_id" + (f", {columns}" if columns else "")
    return cursor.all(
        f"SELECT {select} FROM directory_keys k {joins} WHERE {where} ORDER BY k.position DESC LIMIT ?",  # noqa: S608
        [key, *([] if before is None else [before]), *params, limit],
    )


def item_ids(cursor: Cursor, key: str, *, limit: int, before: int | None, name_contains: str | None = None) -> list[dict[str, Any]]:
    """Positions and ids of a page; `name_contains` (accounts only) keeps display names that
    contain it, ignoring case."""
    if not name_contains:
        return page_rows(cursor, key, limit=limit, before=before)
    assert key.startswith(ACCOUNTS.name + KEY_SEPARATOR), key
    return page_rows(
        cursor, key, limit=limit, before=before, joins="JOIN directory_accounts a ON a.account_id = k.item_id",
        condition=f"a.search_name LIKE ? ESCAPE '{LIKE_ESCAPE}'", params=[like_contains(name_contains)],
    )


def reports(cursor: Cursor, key: str, *, limit: int, before: int | None) -> list[dict[str, Any]]:
    """A page of reports, each with its community's time zone."""
    return page_rows(
        cursor, key, limit=limit, before=before,
        joins="JOIN directory_reports r ON r.report_id = k.item_id"
              " JOIN ledger_communities c ON c.community_id = r.community_id",
        columns="r.reporter_id AS reporter_id, r.category AS category, r.status AS status,"
                " r.description AS description, r.award AS award, r.handler_ids AS handler_ids,"
                " r.submitted_at AS submitted_at, r.community_id AS community_id, c.timezone AS timezone",
    )


def staff(cursor: Cursor, key: str, *, limit: int, before: int | None) -> list[dict[str, Any]]:
    return page_rows(
        cursor, key, limit=limit, before=before, joins="JOIN directory_staff s ON s.staff_id = k.item_id",
        columns="s.display_name AS display_name, s.role AS role, s.community_id AS community_id",
    )


def named_accounts(cursor: Cursor, key: str, *, limit: int, before: int | None) -> list[dict[str, Any]]:
    """A page of accounts with their display names (from the ledger's own account table)."""
    return page_rows(
        cursor, key, limit=limit, before=before, joins="JOIN ledger_accounts a ON a.account_id = k.item_id",
        columns="a.display_name AS display_name",
    )
