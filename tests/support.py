"""Helpers shared by the tests: an HTTP client speaking the contract, and the ledger invariants."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as utc_timezone
from typing import Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient

from api.app import create_app
from domain.accounts import Account
from domain.bus import Actor
from domain.community import DEFAULT_TIMEZONE
from domain.earning import SubmitReport, VerifyReport
from domain.money import Asset, SystemAccount
from domain.people import OpenAccount, RegisterCommunity, RegisterStaff
from domain.periods import period_of
from infra.wiring import Services, memory_read_store
from projections import dashboard, ledger
from projections.projector import Projector
from projections.registry import all_projections
from tests.conftest import ADMIN_TOKEN

_keys = itertools.count(1)


def new_key() -> str:
    return f"key-{next(_keys)}"


def this_period(timezone: str = DEFAULT_TIMEZONE) -> str:
    """The community's current month: the only one (with the next) that takes welfare allowances."""
    return period_of(datetime.now(utc_timezone.utc), timezone)


class Api:
    """A thin contract-speaking client over the ASGI app (no network)."""

    def __init__(self, client: TestClient, admin_token: str) -> None:
        self.client = client
        self.admin_token = admin_token

    def call(self, method: str, path: str, token: str | None = None, json: Any = None,
             key: str | None = None, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.request(method, path, json=json, headers=headers, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, json: Any = None, key: str | None = None,
           status: int | None = None) -> dict[str, Any]:
        response = self.call(method, path, token, json, key)
        expected = status or (201 if method == "POST" and response.status_code == 201 else 200)
        assert response.status_code == expected, (response.status_code, response.text)
        return response.json()

    # Shortcuts for setting up a community.
    def community(self, **fields: Any) -> dict[str, Any]:
        return self.ok("POST", "/v1/communities", self.admin_token, {"name": "金沙社区", **fields}, status=201)

    def staff(self, community_id: str, role: str = "staff", **fields: Any) -> dict[str, Any]:
        body = {"community_id": community_id, "display_name": f"{role}-{next(_keys)}", "role": role, **fields}
        return self.ok("POST", "/v1/staff", self.admin_token, body, status=201)

    def account(self, community_id: str, kind: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"community_id": community_id, "kind": kind, "display_name": name or f"{kind}-{next(_keys)}", **fields}
        return self.ok("POST", "/v1/accounts", self.admin_token, body, status=201)

    def earn(self, volunteer: dict[str, Any], staff_token: str, category: str = "fire", award: int | None = None) -> dict[str, Any]:
        report = self.ok("POST", "/v1/reports", volunteer["token"], {"category": category, "description": "楼道有烟"}, status=201)
        body = {} if award is None else {"award": award}
        return self.ok("POST", f"/v1/reports/{report['id']}/verify", staff_token, body, key=new_key(), status=200)

    def balances(self, account_id: str, token: str | None = None) -> dict[str, int]:
        return self.ok("GET", f"/v1/accounts/{account_id}", token or self.admin_token)["balances"]


@contextmanager
def api_for(services: Services, admin_token: str) -> Iterator[Api]:
    with TestClient(create_app(services), raise_server_exceptions=True) as client:
        yield Api(client, admin_token)


def check_invariants(services: Services) -> None:
    """The ledger's invariants, checked against the live read model and a fresh replay."""
    services.projector.catch_up()
    with services.store.read() as cursor:
        totals = ledger.totals_by_asset(cursor)
        live = ledger.all_balances(cursor)
        counted = cursor.one(
            "SELECT COALESCE(SUM(units), 0) AS minted FROM dashboard_units WHERE asset = 'bean' AND kind IN"
            f" ({', '.join('?' * len(dashboard.MINTING_TRANSACTIONS))})", dashboard.MINTING_TRANSACTIONS)
    assert all(total == 0 for total in totals.values()), f"Σ balances must be 0 per asset: {totals}"
    issued = -sum(balance for (account_id, asset), balance in live.items()
                  if asset == Asset.BEAN.value and account_id.endswith(f":{SystemAccount.ISSUANCE.value}"))
    assert counted is not None and int(counted["minted"]) == issued, \
        f"the dashboard's minted beans ({counted}) != beans issued ({issued}): a mint missing from MINTING_TRANSACTIONS?"
    for (account_id, asset), balance in live.items():
        if ":" not in account_id and balance < 0:
            raise AssertionError(f"holder {account_id} went negative in {asset}: {balance}")
        if ":" not in account_id:
            account = services.app.repository.get(__import__("uuid").UUID(account_id))
            assert isinstance(account, Account)
            if account.is_guarded:
                assert account.balances.get(asset, 0) == balance, (account_id, asset, account.balances, balance)
    replayed = replay_balances(services)
    assert replayed == live, "projection != replay"


def replay_balances(services: Services) -> dict[tuple[str, str], int]:
    """Rebuild the ledger from event 1 in a scratch store and return its balances."""
    scratch = Projector(services.app, memory_read_store(), all_projections())
    scratch.create_tables()
    scratch.catch_up()
    with scratch.store.read() as cursor:
        balances = ledger.all_balances(cursor)
    scratch.store.close()
    return balances


# --- the application itself, without HTTP ---------------------------------------------------


@dataclass
class AppCommunity:
    """One community set up through the application, with a staff member and helpers."""

    services: Services
    admin: Actor
    id: UUID
    staff: Actor

    @property
    def app(self):  # noqa: ANN201 — the Jindou application
        return self.services.app

    def actor(self, token: str) -> Actor:
        actor = self.app.authenticate(token)
        assert actor is not None
        return actor

    def open(self, kind: str, name: str | None = None, merchant_categories: Sequence[str] = ()) -> Actor:
        """Open an account and return its holder, authenticated by the token it was given."""
        opening = OpenAccount(community_id=self.id, kind=kind, display_name=name or f"{kind}-{uuid4().hex[:6]}",
                              merchant_categories=tuple(merchant_categories))
        outcome = self.app.execute(opening, self.staff)
        return self.actor(outcome.result["token"])

    def register_staff(self, role: str = "staff", account_id: UUID | None = None) -> Actor:
        registering = RegisterStaff(community_id=self.id, display_name=f"{role}-{uuid4().hex[:6]}", role=role,
                                    account_id=account_id)
        outcome = self.app.execute(registering, self.admin)
        return self.actor(outcome.result["token"])

    def report(self, volunteer: Actor, category: str = "fire") -> UUID:
        outcome = self.app.execute(SubmitReport(category=category, description="三号楼楼道有烟"), volunteer)
        return UUID(outcome.result["id"])

    def earn(self, volunteer: Actor, beans: int) -> None:
        self.app.execute(VerifyReport(report_id=self.report(volunteer), award=beans), self.staff)

    def balance(self, holder: Actor | UUID | str, asset: Asset = Asset.BEAN) -> int:
        account_id = holder.account_id if isinstance(holder, Actor) else holder
        self.services.projector.catch_up()
        with self.services.store.read() as cursor:
            return ledger.balances(cursor, str(account_id))[asset.value]


def new_app_community(services: Services, admin_token: str = ADMIN_TOKEN, **fields: Any) -> AppCommunity:
    """A community, and a staff member to run it, registered by the deployment's admin."""
    admin = services.app.authenticate(admin_token)
    assert admin is not None
    community_id = UUID(services.app.execute(RegisterCommunity(name="金沙社区", **fields), admin).result["id"])
    registering = RegisterStaff(community_id=community_id, display_name="网格员 小张", role="staff")
    staff_token = services.app.execute(registering, admin).result["token"]
    staff = services.app.authenticate(staff_token)
    assert staff is not None
    return AppCommunity(services, admin, community_id, staff)
