"""The lists over HTTP, on memory, SQLite and PostgreSQL: every list and every filter, paging
through all items with cursors (no duplicates, no gaps, newest first), scope (another
community 403, the deployment's admin sees all, a volunteer only its own reports), bad filter
values, limits and cursors refused with 422, unknown communities 404, and 2,000+ reports paged
correctly. The world is set up through the application; what is listed is read over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.bus import Actor
from domain.people import OpenAccount, RegisterCommunity, RegisterStaff
from domain.periods import period_of
from domain.reports import Report
from infra.audit import replay_and_compare
from infra.wiring import Services
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, new_key

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    """Two communities; in 金沙 staff of every role, volunteers, beneficiaries and merchants."""

    api: Api
    services: Services
    here: dict[str, Any]
    elsewhere: dict[str, Any]
    people: dict[str, dict[str, Any]]

    def token(self, who: str) -> str:
        return ADMIN_TOKEN if who == "admin" else self.people[who]["token"]

    def id(self, who: str) -> str:
        return self.people[who]["id"]

    def actor(self, who: str) -> Actor:
        actor = self.services.app.authenticate(self.token(who))
        assert actor is not None
        return actor

    def report(self, who: str = "volunteer", category: str = "fire") -> str:
        body = {"category": category, "description": f"{category} 三号楼"}
        return self.api.ok("POST", "/v1/reports", self.token(who), body, status=201)["id"]

    def all_pages(self, path: str, who: str, limit: int, **filters: str) -> list[dict[str, Any]]:
        """Every item of a list, page by page; each page is full but the last, and no item twice."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {**filters, "limit": limit, **({"cursor": cursor} if cursor else {})}
            response = self.api.call("GET", path, self.token(who), params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"items", "next_cursor"}
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                assert len(body["items"]) <= limit
                break
            assert len(body["items"]) == limit
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), "an item appeared twice"
        return items

    def ids(self, path: str, who: str = "staff", **filters: str) -> list[str]:
        """The ids of a whole list, read in one page and again in pages of 2: they must agree."""
        response = self.api.call("GET", path, self.token(who), params={**filters, "limit": 500})
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        paged = [item["id"] for item in self.all_pages(path, who, 2, **filters)]
        assert paged == [item["id"] for item in response.json()["items"]]
        return paged


@pytest.fixture
def world(services: Services) -> Iterator[World]:
    app = services.app
    admin = app.authenticate(ADMIN_TOKEN)
    assert admin is not None
    here = app.execute(RegisterCommunity(name="金沙社区"), admin).result
    elsewhere = app.execute(RegisterCommunity(name="瓯北社区", timezone="Asia/Shanghai"), admin).result

    def staff(community: dict[str, Any], role: str, name: str) -> dict[str, Any]:
        return app.execute(RegisterStaff(community_id=UUID(community["id"]), display_name=name, role=role),
                           admin).result

    def account(community: dict[str, Any], kind: str, name: str,
                merchant_categories: tuple[str, ...] = ()) -> dict[str, Any]:
        opening = OpenAccount(community_id=UUID(community["id"]), kind=kind, display_name=name,
                              merchant_categories=merchant_categories)
        return app.execute(opening, admin).result

    people = {
        "staff": staff(here, "staff", "网格员 小张"), "auditor": staff(here, "auditor", "审计 老陈"),
        "local_admin": staff(here, "admin", "社区书记"), "foreign_staff": staff(elsewhere, "staff", "瓯北网格员"),
        "foreign_admin": staff(elsewhere, "admin", "瓯北书记"),
        "volunteer": account(here, "volunteer", "金豆哥 王师傅"), "other_volunteer": account(here, "volunteer", "Li Lei"),
        "beneficiary": account(here, "beneficiary", "李奶奶"),
        "other_beneficiary": account(here, "beneficiary", "ÉLODIE 张"),
        "wildcard_beneficiary": account(here, "beneficiary", "百分百%_满意"),
        "plain_beneficiary": account(here, "beneficiary", "百分百ab满意"),
        "grocer": account(here, "merchant", "菜市场老张", merchant_categories=("vegetable", "fruit")),
        "hardware": account(here, "merchant", "五金店", merchant_categories=("hardware",)),
        "foreign_volunteer": account(elsewhere, "volunteer", "瓯北志愿者"),
    }
    with api_for(services, ADMIN_TOKEN) as api:
        yield World(api, services, here, elsewhere, people)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, error
    if field is not None:
        named = error["details"].get("field") or error["details"]["errors"][0]["field"]
        assert named.split(".")[-1] == field, error


# --- communities ---------------------------------------------------------------------------------


def test_communities_are_listed_as_created_newest_first_and_scoped(world: World) -> None:
    api = world.api
    views = [api.ok("GET", f"/v1/communities/{c['id']}", ADMIN_TOKEN) for c in (world.elsewhere, world.here)]
    assert views == [world.elsewhere, world.here]  # the POST reply's shape
    assert world.all_pages("/v1/communities", "admin", 1) == views
    for who in ("staff", "auditor", "local_admin"):
        assert api.ok("GET", "/v1/communities", world.token(who)) == {"items": [world.here], "next_cursor": None}
    assert api.ok("GET", "/v1/communities", world.token("foreign_staff"))["items"] == [world.elsewhere]
    assert_error(api.call("GET", "/v1/communities", world.token("volunteer")), 403, "forbidden")
    assert_error(api.call("GET", "/v1/communities"), 401, "unauthorized")
    newest = api.community(name="新社区")
    assert api.ok("GET", "/v1/communities?limit=1", ADMIN_TOKEN)["items"] == [newest]  # read-your-writes


# --- reports -------------------------------------------------------------------------------------


def test_reports_are_listed_with_every_filter_as_their_status_changes(world: World) -> None:
    api, staff = world.api, world.token("staff")
    fire, dispute, sanitation, urgent, other = (
        world.report("volunteer", "fire"), world.report("volunteer", "dispute"), world.report("other_volunteer", "sanitation"),
        world.report("volunteer", "security"), world.report("other_volunteer", "fire"),
    )
    assert world.ids("/v1/reports") == [other, urgent, sanitation, dispute, fire]
    api.ok("POST", f"/v1/reports/{fire}/verify", staff, {"award": 12})
    api.ok("POST", f"/v1/reports/{dispute}/reject", staff, {"reason": "重复上报"})
    api.ok("POST", f"/v1/reports/{sanitation}/dispatch", staff, {"handler_ids": [world.id("volunteer")]})
    api.ok("POST", f"/v1/reports/{urgent}/dispatch", staff, {"handler_ids": [world.id("other_volunteer")]})
    api.ok("POST", f"/v1/reports/{urgent}/close", staff, {"handler_awards": {world.id("other_volunteer"): 4}})
    api.ok("POST", f"/v1/reports/{sanitation}/verify", staff)  # an urgent one verified after dispatch stays dispatched

    assert world.ids("/v1/reports", status="submitted") == [other]
    assert world.ids("/v1/reports", community_id="", status="", category="", reporter_id="") == world.ids("/v1/reports")
    assert world.ids("/v1/reports", status="verified") == [fire]
    assert world.ids("/v1/reports", status="rejected") == [dispute]
    assert world.ids("/v1/reports", status="dispatched") == [sanitation]
    assert world.ids("/v1/reports", status="closed") == [urgent]
    assert world.ids("/v1/reports", category="fire") == [other, fire]
    assert world.ids("/v1/reports", category="fire", status="verified") == [fire]
    assert world.ids("/v1/reports", reporter_id=world.id("volunteer")) == [urgent, dispute, fire]
    assert world.ids("/v1/reports", reporter_id=world.id("volunteer"), category="fire", status="submitted") == []
    assert world.ids("/v1/reports", community_id=world.here["id"], reporter_id=world.id("other_volunteer")) == [other, sanitation]

    items = {item["id"]: item for item in api.ok("GET", "/v1/reports", staff)["items"]}
    submitted_at = items[fire].pop("submitted_at")
    assert datetime.fromisoformat(submitted_at).utcoffset().total_seconds() == 8 * 3600  # the community's offset
    assert items[fire] == {
        "id": fire, "status": "verified", "reporter_id": world.id("volunteer"), "category": "fire",
        "description": "fire 三号楼", "award": 12, "handler_ids": [], "community_id": world.here["id"],
    }
    assert items[other]["award"] is None and items[dispute]["award"] is None  # null until verified
    assert items[sanitation]["award"] == 2 and items[sanitation]["handler_ids"] == [world.id("volunteer")]
    assert items[urgent]["handler_ids"] == [world.id("other_volunteer")] and items[urgent]["award"] is None


def test_a_volunteer_sees_only_its_own_reports_whatever_it_asks(world: World) -> None:
    mine = [world.report("volunteer", "fire"), world.report("volunteer", "dispute")]
    world.report("other_volunteer")
    world.report("foreign_volunteer")
    for asked in ({}, {"reporter_id": world.id("other_volunteer")}, {"community_id": world.elsewhere["id"]},
                  {"community_id": UNKNOWN_ID}):
        assert world.ids("/v1/reports", "volunteer", **asked) == mine[::-1]
    assert world.ids("/v1/reports", "volunteer", category="dispute") == [mine[1]]
    assert world.ids("/v1/reports", "foreign_volunteer", status="verified") == []
    for who in ("beneficiary", "grocer"):
        assert_error(world.api.call("GET", "/v1/reports", world.token(who)), 403, "forbidden")


def test_report_lists_are_scoped_to_a_community_and_the_deployment_admin_sees_all(world: World) -> None:
    api = world.api
    here, there = world.report("volunteer"), world.report("foreign_volunteer")
    assert world.ids("/v1/reports", "admin") == [there, here]
    assert world.ids("/v1/reports", "admin", community_id=world.elsewhere["id"]) == [there]
    for who in ("staff", "auditor", "local_admin"):
        assert world.ids("/v1/reports", who) == [here]
    assert world.ids("/v1/reports", "foreign_staff") == [there]
    assert_error(api.call("GET", f"/v1/reports?community_id={world.here['id']}", world.token("foreign_staff")),
                 403, "forbidden")
    assert_error(api.call("GET", f"/v1/reports?reporter_id={world.id('volunteer')}", world.token("foreign_staff")),
                 403, "forbidden")
    for unknown in (UNKNOWN_ID, "not-an-id"):
        assert_error(api.call("GET", f"/v1/reports?community_id={unknown}", world.token("staff")), 404, "not_found")
        assert_error(api.call("GET", f"/v1/reports?reporter_id={unknown}", world.token("staff")), 404, "not_found")


# --- accounts ------------------------------------------------------------------------------------


def test_accounts_are_listed_as_each_account_reads_with_balances(world: World) -> None:
    api, staff = world.api, world.token("staff")
    report = world.report("volunteer")
    api.ok("POST", f"/v1/reports/{report}/verify", staff, {"award": 30})
    api.ok("POST", "/v1/donations", world.token("volunteer"), {"to_account_id": world.id("beneficiary"), "amount": 7})
    listed = world.all_pages("/v1/accounts", "staff", 3)
    here = [who for who in world.people if "id" in world.people[who] and "kind" in world.people[who]
            and world.people[who]["community_id"] == world.here["id"]]
    assert [item["id"] for item in listed] == [world.id(who) for who in reversed(here)]
    assert listed == [api.ok("GET", f"/v1/accounts/{item['id']}", staff) for item in listed]
    by_id = {item["id"]: item for item in listed}
    assert by_id[world.id("volunteer")]["balances"] == {"bean": 23, "welfare": 0}
    assert by_id[world.id("beneficiary")]["balances"] == {"bean": 7, "welfare": 0}

    assert world.ids("/v1/accounts", kind="merchant") == [world.id("hardware"), world.id("grocer")]
    api.ok("POST", f"/v1/accounts/{world.id('beneficiary')}/freeze", staff, {"reason": "搬走了"})
    assert world.ids("/v1/accounts", status="frozen") == [world.id("beneficiary")]
    assert world.id("beneficiary") not in world.ids("/v1/accounts", kind="beneficiary", status="active")
    api.ok("POST", f"/v1/accounts/{world.id('beneficiary')}/unfreeze", staff)
    assert world.ids("/v1/accounts", status="frozen") == []
    assert world.ids("/v1/accounts", kind="", status="", q="") == [item["id"] for item in listed]
    assert world.ids("/v1/accounts", "admin", kind="volunteer") == [
        world.id("foreign_volunteer"), world.id("other_volunteer"), world.id("volunteer")]


NAME_SEARCHES = [
    ("li", ["other_volunteer"]),  # "Li Lei", ignoring case
    ("LEI", ["other_volunteer"]),
    ("élodie", ["other_beneficiary"]),  # beyond ASCII too
    ("奶奶", ["beneficiary"]),
    ("%_", ["wildcard_beneficiary"]),  # LIKE's wildcards are letters here
    ("百分百", ["plain_beneficiary", "wildcard_beneficiary"]),
    ("\\", []),
    ("nobody", []),
]


def test_accounts_match_part_of_a_display_name(world: World) -> None:
    for q, expected in NAME_SEARCHES:
        assert world.ids("/v1/accounts", q=q) == [world.id(who) for who in expected], q


def test_a_name_search_combines_with_filters_and_scope(world: World) -> None:
    assert world.ids("/v1/accounts", q="百分百", kind="merchant") == []
    assert world.ids("/v1/accounts", "foreign_staff", q="李") == []
    assert world.ids("/v1/accounts", "admin", q="志愿者") == [world.id("foreign_volunteer")]
    assert_error(world.api.call("GET", f"/v1/accounts?community_id={world.here['id']}", world.token("foreign_admin")),
                 403, "forbidden")
    for who in ("volunteer", "beneficiary", "grocer"):
        assert_error(world.api.call("GET", "/v1/accounts", world.token(who)), 403, "forbidden")


# --- settlements and staff -------------------------------------------------------------------------


def test_settlements_are_listed_by_period_and_status(world: World) -> None:
    api, staff = world.api, world.token("staff")
    report = world.report("volunteer")
    api.ok("POST", f"/v1/reports/{report}/verify", staff, {"award": 40})
    for amount in (5, 6):
        code = api.ok("POST", f"/v1/accounts/{world.id('volunteer')}/payment-codes", world.token("volunteer"), status=201)
        api.ok("POST", "/v1/redemptions", world.token("grocer"), {"payment_code": code["code"], "amount": amount},
               key=new_key(), status=201)
    period = period_of(datetime.now(timezone.utc), world.here["timezone"])
    first = api.ok("POST", "/v1/settlements", staff, {"community_id": world.here["id"], "period": period}, status=201)
    api.ok("POST", f"/v1/settlements/{first['id']}/reject", ADMIN_TOKEN, {"reason": "金额有误"})
    second = api.ok("POST", "/v1/settlements", staff, {"community_id": world.here["id"], "period": period}, status=201)
    api.ok("POST", f"/v1/settlements/{second['id']}/approve", world.token("local_admin"))

    listed = world.all_pages("/v1/settlements", "auditor", 1)
    assert listed == [api.ok("GET", f"/v1/settlements/{s['id']}", staff) for s in (second, first)]
    assert world.ids("/v1/settlements", status="rejected") == [first["id"]]
    assert world.ids("/v1/settlements", status="approved", period=period) == [second["id"]]
    assert world.ids("/v1/settlements", status="proposed") == []
    assert world.ids("/v1/settlements", period="2001-01") == []
    assert world.ids("/v1/settlements", period="", status="", community_id="") == [second["id"], first["id"]]
    assert world.ids("/v1/settlements", "admin", community_id=world.here["id"]) == [second["id"], first["id"]]
    assert world.ids("/v1/settlements", "foreign_staff") == []
    assert_error(api.call("GET", f"/v1/settlements?community_id={world.here['id']}", world.token("foreign_staff")),
                 403, "forbidden")
    assert_error(api.call("GET", "/v1/settlements", world.token("grocer")), 403, "forbidden")


def test_staff_are_listed_for_admins_only(world: World) -> None:
    everyone = world.ids("/v1/staff", "admin")
    here = [world.id(who) for who in ("local_admin", "auditor", "staff")]
    assert everyone[:5] == [world.id("foreign_admin"), world.id("foreign_staff"), *here]
    assert len(everyone) == 6  # and the deployment's own admin, bound to no community
    assert world.ids("/v1/staff", "admin", community_id=world.here["id"]) == here
    assert world.ids("/v1/staff", "local_admin") == here
    item = world.api.ok("GET", "/v1/staff?limit=1", world.token("local_admin"))["items"][0]
    assert item == {"id": world.id("local_admin"), "display_name": "社区书记", "role": "admin",
                    "community_id": world.here["id"]}
    assert_error(world.api.call("GET", f"/v1/staff?community_id={world.here['id']}", world.token("foreign_admin")),
                 403, "forbidden")
    for who in ("staff", "auditor", "volunteer"):
        assert_error(world.api.call("GET", "/v1/staff", world.token(who)), 403, "forbidden")


# --- merchants and beneficiaries, for holders --------------------------------------------------------


def test_holders_and_staff_of_a_community_see_its_merchants(world: World) -> None:
    path = f"/v1/communities/{world.here['id']}/merchants"
    for who in ("volunteer", "beneficiary", "grocer", "staff", "auditor", "admin"):
        assert world.all_pages(path, who, 1) == [
            {"id": world.id("hardware"), "display_name": "五金店", "merchant_categories": ["hardware"],
             "accepts_welfare": False},
            {"id": world.id("grocer"), "display_name": "菜市场老张", "merchant_categories": ["fruit", "vegetable"],
             "accepts_welfare": True},
        ]
    assert world.ids(f"/v1/communities/{world.elsewhere['id']}/merchants", "foreign_volunteer") == []
    for who in ("foreign_volunteer", "foreign_staff"):
        assert_error(world.api.call("GET", path, world.token(who)), 403, "forbidden")
    for unknown in (UNKNOWN_ID, "nope"):
        assert_error(world.api.call("GET", f"/v1/communities/{unknown}/merchants", world.token("volunteer")),
                     404, "not_found")


def test_volunteers_see_active_beneficiaries_to_donate_to(world: World) -> None:
    api, path = world.api, f"/v1/communities/{world.here['id']}/beneficiaries"
    newest_first = ["plain_beneficiary", "wildcard_beneficiary", "other_beneficiary", "beneficiary"]
    expected = [{"id": world.id(who), "display_name": world.people[who]["display_name"]} for who in newest_first]
    for who in ("volunteer", "staff", "auditor", "local_admin", "admin"):
        assert world.all_pages(path, who, 3) == expected
    api.ok("POST", f"/v1/accounts/{world.id('other_beneficiary')}/freeze", world.token("staff"))
    assert [item["id"] for item in world.all_pages(path, "volunteer", 2)] == [
        world.id(who) for who in ("plain_beneficiary", "wildcard_beneficiary", "beneficiary")]
    for who in ("beneficiary", "grocer"):
        assert_error(api.call("GET", path, world.token(who)), 403, "forbidden")
    assert_error(api.call("GET", path, world.token("foreign_volunteer")), 403, "forbidden")
    assert_error(api.call("GET", f"/v1/communities/{UNKNOWN_ID}/beneficiaries", ADMIN_TOKEN), 404, "not_found")


# --- refusals ------------------------------------------------------------------------------------------


BAD_FILTERS = [
    ("/v1/reports", {"status": "open"}, "status"),
    ("/v1/reports", {"status": "submitted\x00"}, "status"),
    ("/v1/reports", {"category": "flood"}, "category"),
    ("/v1/accounts", {"kind": "staff"}, "kind"),
    ("/v1/accounts", {"status": "closed"}, "status"),
    ("/v1/accounts", {"q": "李\x01"}, "q"),
    ("/v1/accounts", {"q": "x" * 201}, "q"),
    ("/v1/settlements", {"status": "done"}, "status"),
    ("/v1/settlements", {"period": "2025-13"}, "period"),
    ("/v1/settlements", {"period": "2025-1\x00"}, "period"),
    ("/v1/communities", {"limit": "0"}, "limit"),
    ("/v1/staff", {"limit": "501"}, "limit"),
    ("/v1/reports", {"limit": "many"}, "limit"),
    ("/v1/reports", {"cursor": "not a cursor"}, "cursor"),
    ("/v1/accounts", {"cursor": "WzEsMl0"}, "cursor"),  # two positions where one is expected
    ("/v1/settlements", {"cursor": "WyJ4Il0"}, "cursor"),  # a string where a position is expected
    ("/v1/staff", {"cursor": "x" * 201}, "cursor"),
]


def test_unknown_filter_values_limits_and_cursors_are_named_in_a_422(world: World) -> None:
    for path, params, field in BAD_FILTERS:
        who = "admin" if path == "/v1/staff" else "staff"
        assert_error(world.api.call("GET", path, world.token(who), params=params), 422, "validation_error", field)


def test_a_cursor_before_the_first_event_gives_an_empty_last_page(world: World) -> None:
    world.report("volunteer")
    page = world.api.ok("GET", "/v1/reports?cursor=WzFd", world.token("staff"))  # [1]: before the first event
    assert page == {"items": [], "next_cursor": None}


# --- volume, and replay ----------------------------------------------------------------------------------


REPORTS_MANY = 2_050


def test_two_thousand_reports_page_correctly(world: World) -> None:
    app = world.services.app
    reporters = [world.actor("volunteer"), world.actor("other_volunteer")]
    created: list[str] = []
    batch: list[Report] = []
    for n in range(REPORTS_MANY):  # saved in batches: the lists are under test here, not submitting
        reporter = reporters[n % 2]
        batch.append(Report(community_id=reporter.community_id, reporter_id=reporter.account_id,
                            category=("fire", "dispute")[n % 3 == 0], description=f"第 {n} 号"))
        created.append(str(batch[-1].id))
        if len(batch) == 500 or n == REPORTS_MANY - 1:
            app.save(*batch)
            batch = []
    verified = created[7]
    world.api.ok("POST", f"/v1/reports/{verified}/verify", world.token("staff"), {"award": 3})
    newest_first = created[::-1]
    assert [item["id"] for item in world.all_pages("/v1/reports", "staff", 500)] == newest_first
    assert [item["id"] for item in world.all_pages("/v1/reports", "volunteer", 333)] == newest_first[1::2]
    assert [item["id"] for item in world.all_pages("/v1/reports", "staff", 500, category="dispute")] == [
        created[n] for n in reversed(range(REPORTS_MANY)) if n % 3 == 0]
    assert [item["id"] for item in world.all_pages("/v1/reports", "staff", 500, status="submitted")] == [
        r for r in newest_first if r != verified]
    assert world.ids("/v1/reports", status="verified") == [verified]


def test_the_directory_is_rebuilt_exactly_by_replay(world: World) -> None:
    api, staff = world.api, world.token("staff")
    report = world.report("volunteer")
    api.ok("POST", f"/v1/reports/{report}/dispatch", staff, {"handler_ids": [world.id("other_volunteer")]})
    api.ok("POST", f"/v1/reports/{report}/verify", staff)
    api.ok("POST", f"/v1/accounts/{world.id('grocer')}/freeze", staff)
    world.services.projector.catch_up()
    result = replay_and_compare(world.services.app, world.services.store)
    assert result.ok, [t for t in result.tables if t.count]
    compared = {t.table for t in result.tables}
    assert {"directory_keys", "directory_reports", "directory_accounts"} <= compared


def test_lists_include_every_acknowledged_write(world: World) -> None:
    for n in range(3):
        report = world.report("volunteer")
        assert world.api.ok("GET", "/v1/reports?limit=1", world.token("staff"))["items"][0]["id"] == report
        account = world.api.account(world.here["id"], "volunteer", f"新人 {n}")
        assert world.api.ok("GET", "/v1/accounts?limit=1", world.token("staff"))["items"][0]["id"] == account["id"]


LIST_FILTERS = {
    "/v1/communities": (),
    "/v1/reports": ("community_id", "status", "category", "reporter_id"),
    "/v1/accounts": ("community_id", "kind", "status", "q"),
    "/v1/settlements": ("community_id", "period", "status"),
    "/v1/staff": ("community_id",),
}
query_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@pytest.mark.backends("sqlite", "postgres")  # PostgreSQL refuses NUL in text: nothing typed may reach it unchecked
def test_no_query_string_gets_a_5xx(world: World) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(sorted(LIST_FILTERS)), data=st.data())
    def ask(path: str, data: st.DataObject) -> None:
        names = [*LIST_FILTERS[path], "limit", "cursor"]
        params = data.draw(st.dictionaries(st.sampled_from(names), query_text, max_size=3))
        response = world.api.call("GET", path, ADMIN_TOKEN, params=params)
        assert response.status_code in (200, 403, 404, 422), (params, response.status_code, response.text)
        if response.status_code != 200:
            assert set(response.json()["error"]) == {"code", "message", "details"}

    ask()
