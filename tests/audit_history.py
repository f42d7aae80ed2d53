"""For the audit tests: a generated history through the API, and raw access to the database
underneath (an auditor's tampering goes straight to the tables, past the application)."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from infra.settings import Settings
from infra.wiring import Services, build_services
from projections.chain import canonical_bytes, link
from projections.transparency import Frontier
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, new_key
from tools.verify_jindou import leaf_hash

CATEGORIES = ("security", "fire", "dispute", "sanitation", "resident_need")


@contextmanager
def stored_history(database_url: str, monkeypatch: pytest.MonkeyPatch, *, seed: int) -> Iterator[Services]:
    """A generated history, closed over in the database: the audit commands open it afresh
    through the environment, as an operator would."""
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    make_history(services, seed=seed, steps=12)
    monkeypatch.setenv("JINDOU_DATABASE_URL", database_url)
    monkeypatch.delenv("JINDOU_ADMIN_TOKEN", raising=False)
    try:
        yield services
    finally:
        services.close()


def make_history(services: Services, *, seed: int, steps: int) -> dict[str, Any]:
    """A community with volunteers earning and donating to beneficiaries, chosen by `seed`."""
    rng = random.Random(seed)
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        staff = api.staff(community["id"])
        auditor = api.staff(community["id"], role="auditor")
        volunteers = [api.account(community["id"], "volunteer") for _ in range(3)]
        beneficiaries = [api.account(community["id"], "beneficiary") for _ in range(2)]
        for _ in range(steps):
            volunteer = rng.choice(volunteers)
            if rng.random() < 0.6:
                api.earn(volunteer, staff["token"], rng.choice(CATEGORIES))
            else:
                _donate_some(api, rng, volunteer, rng.choice(beneficiaries))
    return {"community": community, "staff": staff, "auditor": auditor,
            "volunteers": volunteers, "beneficiaries": beneficiaries}


def _donate_some(api: Api, rng: random.Random, volunteer: dict[str, Any], beneficiary: dict[str, Any]) -> None:
    beans = api.balances(volunteer["id"])["bean"]
    if beans:
        body = {"to_account_id": beneficiary["id"], "amount": rng.randint(1, beans)}
        api.ok("POST", "/v1/donations", volunteer["token"], body, key=new_key(), status=201)


class RawDatabase:
    """Plain SQL on the live database file or server, as someone with database access would."""

    def __init__(self, services: Services) -> None:
        self.url = services.settings.database_url
        self.postgres = self.url.startswith("postgresql")
        self.events_table = services.app.recorder.events_table_name  # type: ignore[attr-defined]
        self.position_column = "notification_id" if self.postgres else "rowid"

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self.postgres:
            with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                cursor = conn.execute(statement.replace("?", "%s"), params)
                return list(cursor.fetchall()) if cursor.description else []
        conn = sqlite3.connect(self.url[len("sqlite:///"):])
        conn.row_factory = sqlite3.Row
        try:
            rows = [dict(row) for row in conn.execute(statement, params).fetchall()]
            conn.commit()
            return rows
        finally:
            conn.close()

    def event_at(self, position: int) -> dict[str, Any]:
        rows = self.execute(f"SELECT * FROM {self.events_table} WHERE {self.position_column} = ?", (position,))
        assert len(rows) == 1, position
        return rows[0]

    def positions_of(self, topic_suffix: str) -> list[int]:
        rows = self.execute(
            f"SELECT {self.position_column} AS position FROM {self.events_table} WHERE topic LIKE ?"
            f" ORDER BY {self.position_column}",
            (f"%{topic_suffix}",),
        )
        return [int(row["position"]) for row in rows]

    def edit_state(self, position: int, **changes: Any) -> None:
        """Rewrite fields of one stored event's JSON state in place."""
        state = json.loads(bytes(self.event_at(position)["state"]))
        assert set(changes) <= set(state), (changes, state)
        state.update(changes)
        encoded = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
        self.execute(f"UPDATE {self.events_table} SET state = ? WHERE {self.position_column} = ?", (encoded, position))

    def delete_event(self, position: int) -> None:
        self.execute(f"DELETE FROM {self.events_table} WHERE {self.position_column} = ?", (position,))

    def move_event(self, position: int, to_position: int) -> None:
        self.execute(
            f"UPDATE {self.events_table} SET {self.position_column} = ? WHERE {self.position_column} = ?",
            (to_position, position),
        )


def rewrite_chain_and_tree(services: Services, raw: RawDatabase) -> None:
    """What an attacker with database access does after editing events: recompute every chain row
    and every node of the Merkle tree from the edited store."""
    events = services.app.recorder.select_notifications(start=1, limit=10_000)
    prev, frontier, nodes = bytes(32), Frontier(), []
    for event in events:
        prev = link(prev, event)
        raw.execute("UPDATE audit_chain SET hash = ? WHERE position = ?", (prev.hex(), event.id))
        nodes += frontier.append(leaf_hash(canonical_bytes(event)))
    raw.execute("DELETE FROM transparency_nodes")
    values = ", ".join("(?, ?, ?)" for _ in nodes)
    raw.execute(f"INSERT INTO transparency_nodes VALUES {values}",  # noqa: S608 (placeholders only)
                tuple(value for level, index, hashed in nodes for value in (level, index, hashed.hex())))
