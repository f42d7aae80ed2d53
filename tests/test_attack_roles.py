"""Attack suite: the role matrix, generated from the app's own routes.

Every route of every router in `api.app.ROUTERS` must be classified in ROUTES below, or this
test fails naming it: a new endpoint cannot escape the matrix. Each route is then called

- without a token (401 unless it is public; a public route answers it, 2xx),
- by every role of its own community (admitted roles must get past authorisation: neither 401
  nor 403; the others 403),
- by every admitted role of *another* community, on this community's objects: 403 or 404
  (or 422 where the rule refuses the other community's account as a field value).

To classify a new route, add one line: its admitted roles, and the body a valid call sends
(with its query, and which of the World's objects its path names where the usual ones would not
do: a token that is issued revokes the holder's others, so it is issued to a spare account).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import APIRoute

from api.app import ROUTERS
from infra.wiring import Services
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, new_key, this_period

pytestmark = [pytest.mark.attack, pytest.mark.backends("memory", "postgres")]

ADMIN, COMMUNITY_ADMIN, STAFF, AUDITOR = "admin", "community_admin", "staff", "auditor"
VOLUNTEER, BENEFICIARY, MERCHANT = "volunteer", "beneficiary", "merchant"
ROLES = (ADMIN, COMMUNITY_ADMIN, STAFF, AUDITOR, VOLUNTEER, BENEFICIARY, MERCHANT)
RUNNERS = frozenset({ADMIN, COMMUNITY_ADMIN, STAFF, AUDITOR})
WRITERS = frozenset({ADMIN, COMMUNITY_ADMIN, STAFF})
ADMINS = frozenset({ADMIN, COMMUNITY_ADMIN})
HOLDERS = frozenset({VOLUNTEER, BENEFICIARY, MERCHANT})
EVERYONE = frozenset(ROLES)
PUBLIC = frozenset({"anyone"})
A_CODE = "0" * 20  # shaped like a phone code, issued to no one

Body = Callable[["World"], dict[str, Any] | None]
Query = Callable[["World"], dict[str, Any]]


def in_community(world: World) -> dict[str, Any]:
    """A list's query naming this community: another community's people asking for it are refused."""
    return {"community_id": world.community_id}


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    body: Body = lambda world: None
    scoped: bool = True  # names an object of one community: another community's people are refused
    other_may_be_422: bool = False  # the other community's id in a field is a validation error here
    query: Query = lambda world: {}
    objects: dict[str, str] = field(default_factory=dict)  # path parameter -> the World's object it names
    answers_own: frozenset[str] = frozenset()  # roles answered with their own data whatever they ask
    renews_token: bool = False  # replaces the caller's token: the matrix goes on with the new one


CARD = {"account_id": "card_account_id", "code": "card_code"}  # the beneficiary's printed card, which staff show too

ROUTES: dict[str, Rule] = {
    "GET /healthz": Rule(PUBLIC),
    "GET /metrics": Rule(PUBLIC),
    "GET /merchant": Rule(PUBLIC),
    "GET /wallet": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/fund-reports/{period}": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/fund-reports/{period}.csv": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/fund-reports/{period}.html": Rule(PUBLIC),
    "POST /v1/communities": Rule(frozenset({ADMIN}), lambda w: {"name": "新社区"}, scoped=False),
    "GET /v1/communities/{community_id}": Rule(RUNNERS),
    "POST /v1/staff": Rule(ADMINS, lambda w: {"community_id": w.community_id, "display_name": "新人", "role": "staff"}),
    "POST /v1/accounts": Rule(WRITERS, lambda w: {"community_id": w.community_id, "kind": "volunteer",
                                                  "display_name": "新志愿者"}),
    "GET /v1/accounts/{account_id}": Rule(RUNNERS | HOLDERS),
    "GET /v1/accounts/{account_id}/entries": Rule(RUNNERS | HOLDERS),
    "POST /v1/accounts/{account_id}/freeze": Rule(WRITERS, lambda w: {"reason": "演练"}),
    "POST /v1/accounts/{account_id}/unfreeze": Rule(WRITERS),
    "POST /v1/reports": Rule(frozenset({VOLUNTEER}), lambda w: {"category": "fire", "description": "演练"}, scoped=False),
    "GET /v1/reports/{report_id}": Rule(RUNNERS | {VOLUNTEER}),  # the volunteer who reported it
    "POST /v1/reports/{report_id}/verify": Rule(WRITERS, lambda w: {}),
    "POST /v1/reports/{report_id}/reject": Rule(WRITERS, lambda w: {"reason": "演练"}),
    "POST /v1/reports/{report_id}/dispatch": Rule(WRITERS, lambda w: {"handler_ids": [w.account(VOLUNTEER)]}),
    "POST /v1/reports/{report_id}/close": Rule(WRITERS, lambda w: {"handler_awards": {}}),
    "POST /v1/donations": Rule(frozenset({VOLUNTEER}), lambda w: {"to_account_id": w.account(BENEFICIARY), "amount": 1},
                               other_may_be_422=True),
    "GET /v1/audit/chain": Rule(ADMINS | {AUDITOR}, scoped=False),
    "GET /v1/audit/events": Rule(ADMINS | {AUDITOR}, scoped=False),  # scoped by content: tests/test_hardening.py
    "POST /v1/welfare/allowances": Rule(WRITERS, lambda w: {"community_id": w.community_id, "period": this_period(),
                                                            "amount_per_beneficiary": 1}),
    "POST /v1/accounts/{account_id}/payment-codes": Rule(frozenset({VOLUNTEER, BENEFICIARY})),
    "GET /v1/accounts/{account_id}/payment-codes/{code}.svg": Rule(ADMINS | {STAFF, BENEFICIARY}, objects=CARD),
    "POST /v1/accounts/{account_id}/cards": Rule(WRITERS, lambda w: {"daily_limit": 10}),
    "POST /v1/redemptions": Rule(frozenset({MERCHANT}), lambda w: {"payment_code": A_CODE, "amount": 1}, scoped=False),
    "POST /v1/redemptions/{redemption_id}/reverse": Rule(frozenset({MERCHANT})),  # the merchant who sold
    "GET /v1/redemptions/{redemption_id}": Rule(RUNNERS | {MERCHANT, BENEFICIARY}),  # the sale's two parties
    "GET /v1/merchants/{merchant_id}/redemptions": Rule(RUNNERS | {MERCHANT}),
    "POST /v1/fund/donations": Rule(WRITERS, lambda w: {"community_id": w.community_id, "donor": "善心人", "amount_fen": 100,
                                                        "received_on": w.today, "reference": ""}),
    "GET /v1/fund/communities/{community_id}/balance": Rule(RUNNERS),
    "POST /v1/settlements": Rule(WRITERS, lambda w: {"community_id": w.community_id, "period": this_period()}),
    "POST /v1/settlements/{settlement_id}/approve": Rule(ADMINS),
    "POST /v1/settlements/{settlement_id}/pay": Rule(WRITERS, lambda w: {"bank_reference": "BANK-1"}),
    "POST /v1/settlements/{settlement_id}/reject": Rule(ADMINS, lambda w: {"reason": "演练"}),
    "GET /v1/settlements/{settlement_id}": Rule(RUNNERS),
    # the pages and the public documents
    "GET /": Rule(PUBLIC),
    "GET /docs": Rule(PUBLIC),
    "GET /redoc": Rule(PUBLIC),
    "GET /staff": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/fund-reports": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/fund-reports.html": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/wishes": Rule(PUBLIC),
    "GET /v1/public/communities/{community_id}/wishes.html": Rule(PUBLIC),
    "GET /v1/public/transparency/key": Rule(PUBLIC),
    "GET /v1/public/transparency/tree-head": Rule(PUBLIC),
    "GET /v1/public/transparency/consistency": Rule(PUBLIC, query=lambda w: {"first": 1, "second": 2}),
    # lists (v1.1): scoped to the community named in the query
    "GET /v1/communities": Rule(RUNNERS, scoped=False),  # no id to ask for: one's own community (or all)
    "GET /v1/accounts": Rule(RUNNERS, query=in_community),
    "GET /v1/reports": Rule(RUNNERS | {VOLUNTEER}, query=in_community, answers_own=frozenset({VOLUNTEER})),
    "GET /v1/settlements": Rule(RUNNERS, query=in_community),
    "GET /v1/staff": Rule(ADMINS, query=in_community),
    "GET /v1/communities/{community_id}/merchants": Rule(RUNNERS | HOLDERS),
    "GET /v1/communities/{community_id}/beneficiaries": Rule(RUNNERS | {VOLUNTEER}),  # a volunteer donates by name
    "GET /v1/communities/{community_id}/dashboard": Rule(RUNNERS),
    "GET /v1/merchants/{merchant_id}/months/{period}": Rule(RUNNERS | {MERCHANT}),
    "GET /v1/me": Rule(EVERYONE, scoped=False),
    # credentials (v1.1): the tokens issued go to a spare account and a spare staff member
    "POST /v1/accounts/{account_id}/token": Rule(WRITERS, objects={"account_id": "spare_account_id"}),
    "POST /v1/staff/{staff_id}/token": Rule(ADMINS),  # or the staff member itself: tests/test_credentials_http.py
    "POST /v1/staff/{staff_id}/revoke": Rule(ADMINS),
    "POST /v1/auth/rotate": Rule(EVERYONE, scoped=False, renews_token=True),
    "POST /v1/auth/sign-in": Rule(PUBLIC, lambda w: {"code": w.objects["spare_sign_in_code"]}),
    "POST /v1/accounts/{account_id}/sign-in-codes": Rule(WRITERS),
    "POST /v1/staff/{staff_id}/sign-in-codes": Rule(ADMINS),  # or the staff member itself, as above
    "GET /v1/accounts/{account_id}/sign-in-codes/{code}.svg": Rule(WRITERS, objects={"code": "account_sign_in_code"}),
    "GET /v1/accounts/{account_id}/sign-in-codes/{code}.png": Rule(WRITERS, objects={"code": "account_sign_in_code"}),
    "GET /v1/staff/{staff_id}/sign-in-codes/{code}.svg": Rule(ADMINS, objects={"code": "staff_sign_in_code"}),
    "GET /v1/staff/{staff_id}/sign-in-codes/{code}.png": Rule(ADMINS, objects={"code": "staff_sign_in_code"}),
    # QR codes and printed cards
    "GET /v1/accounts/{account_id}/payment-codes/{code}.png": Rule(ADMINS | {STAFF, BENEFICIARY}, objects=CARD),
    "GET /v1/communities/{community_id}/cards.pdf": Rule(WRITERS, query=lambda w: {"account_ids": w.account(BENEFICIARY)}),
    # the transparency log: an entry's proof is read like the entry
    "GET /v1/accounts/{account_id}/entries/{entry_id}/proof": Rule(RUNNERS | HOLDERS),
    # welfare
    "POST /v1/welfare/allowances/preview": Rule(WRITERS, lambda w: {"community_id": w.community_id,
                                                                    "period": this_period(), "amount_per_beneficiary": 1}),
    # the wish wall
    "POST /v1/wishes": Rule(WRITERS, lambda w: {"community_id": w.community_id, "title": "一台收音机", "story": "演练",
                                                "target": 10}),
    "GET /v1/wishes": Rule(RUNNERS | HOLDERS, query=in_community),
    "GET /v1/wishes/{wish_id}": Rule(RUNNERS | HOLDERS),
    "POST /v1/wishes/{wish_id}/pledges": Rule(frozenset({VOLUNTEER}), lambda w: {"amount": 1}),
    "POST /v1/wishes/{wish_id}/fulfil": Rule(WRITERS, lambda w: {}),
    "POST /v1/wishes/{wish_id}/cancel": Rule(WRITERS),
}


def app_routes() -> list[str]:
    return sorted(
        f"{method} {route.path}"
        for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)
        for method in route.methods
    )


def test_every_route_is_classified() -> None:
    routes = app_routes()
    unclassified = [route for route in routes if route not in ROUTES]
    assert not unclassified, f"classify these routes in tests/test_attack_roles.py ROUTES: {unclassified}"
    stale = sorted(set(ROUTES) - set(routes))
    assert not stale, f"ROUTES lists routes the app no longer has: {stale}"


@dataclass
class World:
    """One community's people and objects (ids and tokens), made through the API."""

    api: Api
    community_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    entries: dict[str, str] = field(default_factory=dict)  # a holder's account -> one of its entries
    today: str = ""

    def account(self, role: str) -> str:
        return self.accounts[role]

    @classmethod
    def build(cls, api: Api) -> World:
        world = cls(api)
        community = api.community()
        world.community_id = community["id"]
        world.today = datetime.now(ZoneInfo(community["timezone"])).date().isoformat()
        world.tokens[ADMIN] = ADMIN_TOKEN
        for role, staff_role in ((COMMUNITY_ADMIN, "admin"), (STAFF, "staff"), (AUDITOR, "auditor")):
            world.tokens[role] = api.staff(world.community_id, role=staff_role)["token"]
        for role, extra in ((VOLUNTEER, {}), (BENEFICIARY, {}), (MERCHANT, {"merchant_categories": ["meal"]})):
            holder = api.account(world.community_id, role, **extra)
            world.tokens[role], world.accounts[role] = holder["token"], holder["id"]
        staff = world.tokens[STAFF]
        api.ok("POST", "/v1/welfare/allowances", staff, {"community_id": world.community_id, "period": this_period(),
                                                          "amount_per_beneficiary": 50}, key=new_key(), status=201)
        code = api.ok("POST", f"/v1/accounts/{world.account(BENEFICIARY)}/payment-codes", world.tokens[BENEFICIARY],
                      status=201)["code"]
        world.objects["redemption_id"] = api.ok("POST", "/v1/redemptions", world.tokens[MERCHANT],
                                                {"payment_code": code, "amount": 5}, key=new_key(), status=201)["id"]
        world.objects["settlement_id"] = api.ok("POST", "/v1/settlements", staff,
                                                {"community_id": world.community_id, "period": this_period()},
                                                key=new_key(), status=201)["id"]
        world.objects["report_id"] = api.ok("POST", "/v1/reports", world.tokens[VOLUNTEER],
                                            {"category": "fire", "description": "演练"}, status=201)["id"]
        api.earn({"token": world.tokens[VOLUNTEER]}, staff, award=20)  # beans to pledge, and an entry
        world.objects["wish_id"] = api.ok("POST", "/v1/wishes", staff, {
            "community_id": world.community_id, "title": "一副老花镜", "story": "演练", "target": 100}, status=201)["id"]
        for role in HOLDERS:  # each holder's newest entry, whose inclusion proof it may read
            account_id = world.account(role)
            entries = api.ok("GET", f"/v1/accounts/{account_id}/entries", staff)["items"]
            world.entries[account_id] = entries[0]["entry_id"]
        world.objects["spare_account_id"] = api.account(world.community_id, BENEFICIARY)["id"]
        world.objects["staff_id"] = api.staff(world.community_id)["id"]  # the spare staff member
        world.objects["account_sign_in_code"] = api.ok(
            "POST", f"/v1/accounts/{world.account(BENEFICIARY)}/sign-in-codes", staff, status=201)["code"]
        world.objects["spare_sign_in_code"] = api.ok(  # the spare account's codes die with its new token
            "POST", f"/v1/accounts/{world.account(VOLUNTEER)}/sign-in-codes", staff, status=201)["code"]
        world.objects["card_account_id"] = world.account(BENEFICIARY)
        world.objects["card_code"] = api.ok("POST", f"/v1/accounts/{world.account(BENEFICIARY)}/cards", staff,
                                            {"daily_limit": 10}, key=new_key(), status=201)["card_code"]
        world.objects["staff_sign_in_code"] = api.ok(
            "POST", f"/v1/staff/{world.objects['staff_id']}/sign-in-codes", world.tokens[COMMUNITY_ADMIN],
            status=201)["code"]
        return world

    def path(self, template: str, role: str | None, objects: dict[str, str]) -> str:
        """This community's objects; a holder's account (or merchant) is its own; `objects` names
        other objects of the World for some parameters."""
        account_id = self.accounts.get(role or "", self.account(BENEFICIARY))
        values = {
            "community_id": self.community_id, "period": this_period(), "account_id": account_id,
            "merchant_id": self.account(MERCHANT), "entry_id": self.entries.get(account_id, ""), **self.objects,
        }
        values |= {parameter: self.objects[name] for parameter, name in objects.items()}
        return template.format(**values)


def call(world: World, route: str, rule: Rule, token: str | None, role: str | None) -> Any:
    method, template = route.split(" ", 1)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":
        headers["Idempotency-Key"] = new_key()
    return world.api.client.request(method, world.path(template, role, rule.objects), params=rule.query(world),
                                    json=rule.body(world), headers=headers)


def renew_token(world: World, role: str, token: str, route: str) -> list[str]:
    """The role goes on with its new token; the one it replaced must answer 401 from now on."""
    old, world.tokens[role] = world.tokens[role], token
    checks = {"old": (old, 401), "new": (token, 200)}
    return [
        f"{route}: {role}'s {which} token then got {status} on GET /v1/me, not {expected}"
        for which, (sent, expected) in checks.items()
        if (status := world.api.call("GET", "/v1/me", sent).status_code) != expected
    ]


def test_the_role_matrix(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        home, other = World.build(api), World.build(api)
        failures: list[str] = []
        for route in app_routes():
            rule = ROUTES[route]
            anonymous = call(home, route, rule, None, None).status_code
            if rule.roles == PUBLIC:
                if not 200 <= anonymous < 300:  # the World names real objects: a public route answers them
                    failures.append(f"{route}: public, but anonymous got {anonymous}")
                continue
            if anonymous != 401:
                failures.append(f"{route}: anonymous got {anonymous}, not 401")
            for role in ROLES:
                response = call(home, route, rule, home.tokens[role], role)
                status = response.status_code
                admitted = role in rule.roles
                if admitted and status in (401, 403) or not admitted and status != 403 or status >= 500:
                    failures.append(f"{route}: {role} of the community got {status} ({'admitted' if admitted else 'refused'})")
                if rule.renews_token and status == 201:
                    failures += renew_token(home, role, response.json()["token"], route)
            if not rule.scoped:
                continue
            refusals = {403, 404} | ({422} if rule.other_may_be_422 else set())
            for role in sorted(rule.roles - {ADMIN} - rule.answers_own):
                response = call(home, route, rule, other.tokens[role], None)
                if response.status_code not in refusals:
                    failures.append(f"{route}: {role} of another community got {response.status_code}")
        assert not failures, "\n".join(failures)
        print(f"\nrole matrix: {len(app_routes())} routes x {len(ROLES)} roles x own/other community, "
              f"{sum(1 for _ in itertools.chain(ROUTES))} classified")
