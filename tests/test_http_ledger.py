"""The ledger core over HTTP: every endpoint of Running, Conventions, Communities and people,
Earning and Donations; every error path; the role matrix as a table; entries paged across
pages; and bad input of every kind answered 4xx in the contract's error shape, never 5xx,
never a partial write.

Most tests run on memory (the HTTP layer is the same on every backend); the ones whose
outcome depends on the database run on all three.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.earning import SubmitReport, VerifyReport
from domain.people import OpenAccount, RegisterCommunity, RegisterStaff
from infra.wiring import Services
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key

memory_only = pytest.mark.backends("memory")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
GARBAGE_IDS = ("nope", "1", "%E2%98%83", "x" * 300, "00000000-0000-0000-0000-00000000000g")


@dataclass
class World:
    """Two communities and someone in every role; the volunteer holds 50 beans."""

    api: Api
    services: Services
    community: dict[str, Any]
    staff: dict[str, Any]
    auditor: dict[str, Any]
    foreign_staff: dict[str, Any]
    volunteer: dict[str, Any]
    other_volunteer: dict[str, Any]
    beneficiary: dict[str, Any]
    merchant: dict[str, Any]
    foreign_beneficiary: dict[str, Any]

    def token(self, role: str) -> str | None:
        special = {"anonymous": None, "bad_token": "jd_not-a-real-token", "admin": ADMIN_TOKEN}
        return special[role] if role in special else getattr(self, role)["token"]

    def report(self, volunteer: dict[str, Any] | None = None, category: str = "fire") -> dict[str, Any]:
        body = {"category": category, "description": "三号楼楼道有烟"}
        return self.api.ok("POST", "/v1/reports", (volunteer or self.volunteer)["token"], body, status=201)

    def dispatched(self) -> dict[str, Any]:
        report = self.report()
        self.api.ok("POST", f"/v1/reports/{report['id']}/dispatch", self.staff["token"],
                    {"handler_ids": [self.other_volunteer["id"]]}, status=200)
        return report

    def head(self) -> int:
        return self.services.projector.head()


@pytest.fixture
def world(services: Services) -> Iterator[World]:
    """Set up through the application (fast); the HTTP endpoints that did it are tested below."""
    app = services.app
    admin = app.authenticate(ADMIN_TOKEN)
    assert admin is not None

    def community(name: str) -> dict[str, Any]:
        return app.execute(RegisterCommunity(name=name), admin).result

    def staff(community: dict[str, Any], role: str = "staff") -> dict[str, Any]:
        registering = RegisterStaff(community_id=UUID(community["id"]), display_name=f"{role}-{new_key()}", role=role)
        return app.execute(registering, admin).result

    def account(community: dict[str, Any], kind: str, name: str | None = None,
                merchant_categories: tuple[str, ...] = ()) -> dict[str, Any]:
        opening = OpenAccount(community_id=UUID(community["id"]), kind=kind, display_name=name or f"{kind}-{new_key()}",
                              merchant_categories=merchant_categories)
        return app.execute(opening, admin).result

    def earn(volunteer: dict[str, Any], staff_member: dict[str, Any], beans: int) -> None:
        reporter, verifier = app.authenticate(volunteer["token"]), app.authenticate(staff_member["token"])
        assert reporter is not None and verifier is not None
        report = app.execute(SubmitReport(category="fire", description="楼道有烟"), reporter).result
        app.execute(VerifyReport(report_id=UUID(report["id"]), award=beans), verifier)

    here, elsewhere = community("金沙社区"), community("另一个社区")
    people = {
        "staff": staff(here), "auditor": staff(here, "auditor"), "foreign_staff": staff(elsewhere),
        "volunteer": account(here, "volunteer", "金豆哥 王师傅"), "other_volunteer": account(here, "volunteer"),
        "beneficiary": account(here, "beneficiary", "李奶奶"),
        "merchant": account(here, "merchant", "菜市场老张", merchant_categories=("vegetable",)),
        "foreign_beneficiary": account(elsewhere, "beneficiary"),
    }
    earn(people["volunteer"], people["staff"], 50)
    earn(people["other_volunteer"], people["staff"], 50)
    with api_for(services, ADMIN_TOKEN) as api:
        yield World(api=api, services=services, community=here, **people)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The contract's one error shape, with the expected status and code."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


# --- Running ---------------------------------------------------------------------------------


@memory_only
def test_healthz_and_metrics(world: World) -> None:
    health = world.api.call("GET", "/healthz").json()
    assert health["status"] == "ok" and health["database"] == "up"
    world.api.ok("POST", "/v1/donations", world.volunteer["token"], {"to_account_id": world.beneficiary["id"], "amount": 1},
                 status=201)
    metrics = world.api.call("GET", "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'jindou_http_requests_total{method="POST",route="/v1/donations",status="201"}' in metrics.text
    assert 'jindou_http_request_duration_seconds_count{method="POST",route="/v1/donations"}' in metrics.text
    assert f"jindou_events_recorded {world.head()}" in metrics.text
    assert "jindou_read_model_lag_events 0" in metrics.text


@memory_only
def test_metrics_say_how_the_writer_spends_its_time(world: World) -> None:
    """Seconds on groups, and the writer thread's CPU within them (decision 0026). The second
    write's answer comes from a later group: the first group is counted by then."""
    def writer_seconds() -> tuple[float, float]:
        values = dict(line.split() for line in world.api.call("GET", "/metrics").text.splitlines()
                      if line.startswith("jindou_writer_") and "seconds" in line)
        return float(values["jindou_writer_seconds"]), float(values["jindou_writer_cpu_seconds"])

    before = writer_seconds()
    for _ in range(2):
        world.api.ok("POST", "/v1/donations", world.volunteer["token"],
                     {"to_account_id": world.beneficiary["id"], "amount": 1}, status=201)
    seconds, cpu = writer_seconds()
    assert seconds > before[0] and cpu > before[1]
    assert cpu - before[1] <= seconds - before[0]  # the thread's CPU lies within its time on groups


@memory_only
def test_unknown_routes_and_methods_answer_in_the_error_shape(world: World) -> None:
    assert_error(world.api.call("GET", "/v1/nothing-here", ADMIN_TOKEN), 404, "not_found")
    assert_error(world.api.call("DELETE", f"/v1/accounts/{world.volunteer['id']}", ADMIN_TOKEN), 405, "method_not_allowed")


# --- Communities and people --------------------------------------------------------------------


@memory_only
def test_register_community_with_defaults_and_with_choices(world: World) -> None:
    defaults = world.api.community(name="金沙社区")
    assert set(defaults) >= {"id", "name", "timezone", "rebate_rate_bps", "award_schedule"}
    assert (defaults["timezone"], defaults["rebate_rate_bps"]) == ("Asia/Shanghai", 1000)
    assert defaults["award_schedule"] == {"security": 5, "fire": 10, "dispute": 5, "sanitation": 2, "resident_need": 3}
    chosen = world.api.community(name="  翠湖社区 ", timezone="Asia/Urumqi", rebate_rate_bps=0, award_schedule={"fire": 20})
    assert (chosen["name"], chosen["timezone"], chosen["rebate_rate_bps"]) == ("翠湖社区", "Asia/Urumqi", 0)
    assert chosen["award_schedule"]["fire"] == 20 and chosen["award_schedule"]["security"] == 5


@memory_only
@pytest.mark.parametrize("fields", [
    {"timezone": "Mars/Olympus"}, {"timezone": ""}, {"timezone": 8}, {"timezone": "x" * 65},
    {"rebate_rate_bps": 10_001}, {"rebate_rate_bps": -1}, {"rebate_rate_bps": 10.5}, {"rebate_rate_bps": "1000"},
    {"rebate_rate_bps": True}, {"award_schedule": {"arson": 5}}, {"award_schedule": {"fire": -1}},
    {"award_schedule": {"fire": 1.5}}, {"award_schedule": {"fire": 10_001}}, {"award_schedule": ["fire"]},
    {"award_schedule": {"fire": 0}},  # every verified report earns something
    {"name": ""}, {"name": "   "}, {"name": "x" * 201}, {"name": None}, {"name": "名\x00字"},
])
def test_register_community_refuses_bad_fields(world: World, fields: dict[str, Any]) -> None:
    head = world.head()
    body = {"name": "金沙社区", **fields}
    assert_error(world.api.call("POST", "/v1/communities", ADMIN_TOKEN, body), 422, "validation_error")
    assert world.head() == head


@memory_only
def test_a_community_is_read_by_the_people_who_run_it_and_no_one_else(world: World) -> None:
    path = f"/v1/communities/{world.community['id']}"
    for role in ("admin", "staff", "auditor"):
        assert world.api.call("GET", path, world.token(role)).json()["name"] == world.community["name"]
    for role in ("foreign_staff", "volunteer", "merchant"):
        assert_error(world.api.call("GET", path, world.token(role)), 403, "forbidden")
    assert_error(world.api.call("GET", path, None), 401, "unauthorized")


@memory_only
def test_register_staff_gives_a_working_token_once(world: World) -> None:
    body = {"community_id": world.community["id"], "display_name": "网格员 小李", "role": "auditor"}
    key = new_key()
    created = world.api.ok("POST", "/v1/staff", ADMIN_TOKEN, body, key=key, status=201)
    assert {"id", "role", "token"} <= set(created) and created["role"] == "auditor"
    assert world.api.call("GET", f"/v1/accounts/{world.volunteer['id']}", created["token"]).status_code == 200
    replay = world.api.call("POST", "/v1/staff", ADMIN_TOKEN, body, key=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == created["id"] and replay.json()["token"] is None  # a secret is shown once


@memory_only
@pytest.mark.parametrize(("fields", "status"), [
    ({"role": "janitor"}, 422), ({"role": None}, 422), ({"display_name": ""}, 422), ({"display_name": "x" * 201}, 422),
    ({"community_id": UNKNOWN_ID}, 404), ({"community_id": "garbage"}, 404), ({"community_id": None}, 422),
    ({"account_id": UNKNOWN_ID}, 404), ({"account_id": "garbage"}, 404),
])
def test_register_staff_refuses_bad_fields(world: World, fields: dict[str, Any], status: int) -> None:
    body = {"community_id": world.community["id"], "display_name": "小李", "role": "staff", **fields}
    code = "not_found" if status == 404 else "validation_error"
    assert_error(world.api.call("POST", "/v1/staff", ADMIN_TOKEN, body), status, code)


@memory_only
def test_a_staff_member_linked_to_their_volunteer_account_cannot_verify_their_own_report(world: World) -> None:
    body = {"community_id": world.community["id"], "display_name": "王师傅", "role": "staff",
            "account_id": world.volunteer["id"]}
    same_person = world.api.ok("POST", "/v1/staff", ADMIN_TOKEN, body, status=201)
    report = world.report(world.volunteer)
    assert_error(world.api.call("POST", f"/v1/reports/{report['id']}/verify", same_person["token"], {}), 409, "same_person")
    for account_id in (world.beneficiary["id"], world.foreign_beneficiary["id"]):
        refused = world.api.call("POST", "/v1/staff", ADMIN_TOKEN, body | {"account_id": account_id})
        assert_error(refused, 422, "validation_error")


@memory_only
def test_open_account_by_admin_and_staff(world: World) -> None:
    body = {"community_id": world.community["id"], "kind": "merchant", "display_name": "水果摊",
            "merchant_categories": ["fruit", "meal", "fruit"]}
    for token in (ADMIN_TOKEN, world.staff["token"]):
        opened = world.api.ok("POST", "/v1/accounts", token, body, status=201)
        assert {k: opened[k] for k in ("kind", "community_id", "display_name", "status", "merchant_categories")} == {
            "kind": "merchant", "community_id": world.community["id"], "display_name": "水果摊", "status": "active",
            "merchant_categories": ["fruit", "meal"]}
        assert opened["id"] and opened["token"]
        assert world.api.ok("GET", f"/v1/accounts/{opened['id']}", opened["token"])["balances"] == {"bean": 0, "welfare": 0}


@memory_only
@pytest.mark.parametrize(("fields", "status"), [
    ({"kind": "dragon"}, 422), ({"kind": None}, 422), ({"display_name": ""}, 422), ({"display_name": "x" * 201}, 422),
    ({"display_name": "a\x00b"}, 422), ({"display_name": "换\n行"}, 422), ({"display_name": 7}, 422),
    ({"merchant_categories": ["meal"]}, 422),  # only merchants have categories
    ({"community_id": UNKNOWN_ID}, 404), ({"community_id": "garbage"}, 404), ({"community_id": 12}, 422),
])
def test_open_account_refuses_bad_fields(world: World, fields: dict[str, Any], status: int) -> None:
    head = world.head()
    body = {"community_id": world.community["id"], "kind": "volunteer", "display_name": "新人", **fields}
    assert_error(world.api.call("POST", "/v1/accounts", ADMIN_TOKEN, body), status,
                 "not_found" if status == 404 else "validation_error")
    assert world.head() == head


@memory_only
@pytest.mark.parametrize("categories", [["Meal"], ["meal;drop"], [""], ["x" * 33], [1], ["meal"] * 17, "meal"])
def test_merchant_categories_are_short_lower_case_words(world: World, categories: Any) -> None:
    body = {"community_id": world.community["id"], "kind": "merchant", "display_name": "小卖部",
            "merchant_categories": categories}
    assert_error(world.api.call("POST", "/v1/accounts", ADMIN_TOKEN, body), 422, "validation_error")


@memory_only
def test_get_account_shows_balances_that_include_every_acknowledged_write(world: World) -> None:
    account = world.api.ok("GET", f"/v1/accounts/{world.volunteer['id']}", world.volunteer["token"])
    expected = {"id": world.volunteer["id"], "kind": "volunteer", "community_id": world.community["id"],
                "display_name": "金豆哥 王师傅", "status": "active", "balances": {"bean": 50, "welfare": 0}}
    assert {k: account[k] for k in expected} == expected
    world.api.ok("POST", "/v1/donations", world.volunteer["token"], {"to_account_id": world.beneficiary["id"], "amount": 1},
                 status=201)
    assert world.api.balances(world.volunteer["id"], world.volunteer["token"])["bean"] == 49


@memory_only
@pytest.mark.parametrize("suffix", ["", "/entries"])
def test_unknown_and_garbage_account_ids_are_not_found(world: World, suffix: str) -> None:
    for account_id in (UNKNOWN_ID, world.community["id"], *GARBAGE_IDS):
        assert_error(world.api.call("GET", f"/v1/accounts/{account_id}{suffix}", ADMIN_TOKEN), 404, "not_found")
    for action in ("freeze", "unfreeze"):
        assert_error(world.api.call("POST", f"/v1/accounts/{UNKNOWN_ID}/{action}", ADMIN_TOKEN), 404, "not_found")
        assert_error(world.api.call("POST", f"/v1/accounts/garbage/{action}", ADMIN_TOKEN), 404, "not_found")


def test_entries_are_paged_newest_first_with_running_balances(world: World) -> None:
    api, volunteer = world.api, world.volunteer
    for amount in (1, 2, 3, 4):
        api.ok("POST", "/v1/donations", volunteer["token"], {"to_account_id": world.beneficiary["id"], "amount": amount},
               status=201)
    everything = api.ok("GET", f"/v1/accounts/{volunteer['id']}/entries?limit=500", volunteer["token"])
    assert everything["next_cursor"] is None
    expected = [("donation", -4, 40), ("donation", -3, 44), ("donation", -2, 47), ("donation", -1, 49),
                ("report_award", 50, 50)]
    assert [(e["type"], e["amount"], e["balance_after"]) for e in everything["items"]] == expected

    pages, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.ok("GET", f"/v1/accounts/{volunteer['id']}/entries?{query}", volunteer["token"])
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e for p in pages for e in p] == everything["items"]
    assert len({e["entry_id"] for e in everything["items"]}) == 5
    first = everything["items"][0]
    assert set(first) == {"entry_id", "transaction_id", "type", "asset", "amount", "balance_after", "counterparty_id",
                          "occurred_at", "counterparty_name", "report_category", "period"}  # the last three: decision 0010
    assert first["asset"] == "bean" and first["counterparty_id"] == world.beneficiary["id"]
    assert first["occurred_at"].endswith("+08:00")
    received = api.ok("GET", f"/v1/accounts/{world.beneficiary['id']}/entries", world.beneficiary["token"])["items"]
    assert [(e["amount"], e["balance_after"], e["counterparty_id"]) for e in received][0] == (4, 10, volunteer["id"])
    assert received[0]["transaction_id"] == first["transaction_id"]


@memory_only
@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1.5", "cursor=garbage",
                                   "cursor=" + "A" * 201, "cursor=W10", "cursor=WyJhIiwxXQ"])
def test_entries_refuse_bad_limits_and_cursors(world: World, query: str) -> None:
    response = world.api.call("GET", f"/v1/accounts/{world.volunteer['id']}/entries?{query}", ADMIN_TOKEN)
    assert_error(response, 422, "validation_error")


def test_freeze_and_unfreeze(world: World) -> None:
    api, account_id = world.api, world.volunteer["id"]
    frozen = api.ok("POST", f"/v1/accounts/{account_id}/freeze", world.staff["token"], {"reason": "核查中"}, status=200)
    assert frozen == {"id": account_id, "status": "frozen"}
    assert api.ok("GET", f"/v1/accounts/{account_id}", ADMIN_TOKEN)["status"] == "frozen"
    donation = {"to_account_id": world.beneficiary["id"], "amount": 1}
    assert_error(api.call("POST", "/v1/donations", world.volunteer["token"], donation), 409, "account_frozen")
    api.earn(world.volunteer, world.staff["token"], award=3)  # a frozen account can receive
    assert api.ok("POST", f"/v1/accounts/{account_id}/unfreeze", ADMIN_TOKEN, status=200) == {"id": account_id,
                                                                                             "status": "active"}
    api.ok("POST", "/v1/donations", world.volunteer["token"], donation, status=201)
    assert api.balances(account_id)["bean"] == 52
    assert_error(api.call("POST", f"/v1/accounts/{account_id}/freeze", ADMIN_TOKEN, {"reason": "x" * 501}), 422,
                 "validation_error")
    check_invariants(world.services)


# --- Earning -----------------------------------------------------------------------------------


@memory_only
def test_report_lifecycle_submit_read_verify(world: World) -> None:
    report = world.report(category="security")
    assert {k: report[k] for k in ("status", "reporter_id", "category")} == {
        "status": "submitted", "reporter_id": world.volunteer["id"], "category": "security"}
    for token in (world.volunteer["token"], world.staff["token"], world.auditor["token"], ADMIN_TOKEN):
        assert world.api.ok("GET", f"/v1/reports/{report['id']}", token)["status"] == "submitted"
    verified = world.api.ok("POST", f"/v1/reports/{report['id']}/verify", world.staff["token"], status=200)
    assert verified == {"id": report["id"], "status": "verified", "award": 5}
    assert world.api.balances(world.volunteer["id"])["bean"] == 55


def test_verify_twice_is_invalid_state_and_nothing_is_minted_twice(world: World) -> None:
    report = world.report()
    world.api.ok("POST", f"/v1/reports/{report['id']}/verify", world.staff["token"], {"award": 7}, status=200)
    head = world.head()
    for token in (world.staff["token"], ADMIN_TOKEN):
        again = world.api.call("POST", f"/v1/reports/{report['id']}/verify", token, {"award": 7})
        assert assert_error(again, 409, "invalid_state")["details"]["status"] == "verified"
    assert_error(world.api.call("POST", f"/v1/reports/{report['id']}/reject", ADMIN_TOKEN, {"reason": "迟了"}), 409,
                 "invalid_state")
    assert world.head() == head
    assert world.api.balances(world.volunteer["id"])["bean"] == 57
    check_invariants(world.services)


@memory_only
def test_verify_with_the_same_key_replays_and_with_another_award_conflicts(world: World) -> None:
    report, key = world.report(), new_key()
    path = f"/v1/reports/{report['id']}/verify"
    first = world.api.call("POST", path, world.staff["token"], {"award": 9}, key=key)
    again = world.api.call("POST", path, world.staff["token"], {"award": 9}, key=key)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert_error(world.api.call("POST", path, world.staff["token"], {"award": 8}, key=key), 409, "idempotency_conflict")
    assert world.api.balances(world.volunteer["id"])["bean"] == 59


@memory_only
def test_reject_dispatch_and_close(world: World) -> None:
    api, staff = world.api, world.staff["token"]
    rejected = world.report()
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "a\x00b"}):
        assert_error(api.call("POST", f"/v1/reports/{rejected['id']}/reject", staff, body), 422, "validation_error")
    assert api.ok("POST", f"/v1/reports/{rejected['id']}/reject", staff, {"reason": "重复上报"}, status=200)["status"] == "rejected"
    assert_error(api.call("POST", f"/v1/reports/{rejected['id']}/reject", staff, {"reason": "再次"}), 409, "invalid_state")

    report = world.report(category="dispute")
    handlers = [world.other_volunteer["id"], world.volunteer["id"]]
    dispatched = api.ok("POST", f"/v1/reports/{report['id']}/dispatch", staff, {"handler_ids": handlers}, status=200)
    assert dispatched["status"] == "dispatched"
    assert api.ok("GET", f"/v1/reports/{report['id']}", world.other_volunteer["token"])["status"] == "dispatched"
    awards = {world.other_volunteer["id"]: 6, world.volunteer["id"]: 4}
    closed = api.ok("POST", f"/v1/reports/{report['id']}/close", staff, {"handler_awards": awards}, status=200)
    assert closed["status"] == "closed"
    assert api.balances(world.other_volunteer["id"])["bean"] == 56 and api.balances(world.volunteer["id"])["bean"] == 54
    entries = api.ok("GET", f"/v1/accounts/{world.volunteer['id']}/entries", world.volunteer["token"])["items"]
    assert (entries[0]["type"], entries[0]["amount"]) == ("dispatch_award", 4)
    assert_error(api.call("POST", f"/v1/reports/{report['id']}/close", staff, {"handler_awards": awards}), 409, "invalid_state")
    check_invariants(world.services)


@memory_only
@pytest.mark.parametrize(("awards", "status", "code"), [
    ({"other": 0}, 422, "validation_error"), ({"other": -3}, 422, "validation_error"),
    ({"other": 2.5}, 422, "validation_error"), ({"other": "5"}, 422, "validation_error"),
    ({"other": True}, 422, "validation_error"), ({"other": 10_001}, 422, "validation_error"),
    ({"volunteer": 5}, 422, "validation_error"),  # not dispatched
    ({"garbage": 5}, 422, "validation_error"), ({UNKNOWN_ID: 5}, 422, "validation_error"),
])
def test_close_refuses_bad_awards_and_moves_nothing(world: World, awards: dict[str, Any], status: int, code: str) -> None:
    report = world.dispatched()
    names = {"other": world.other_volunteer["id"], "volunteer": world.volunteer["id"]}
    body = {"handler_awards": {names.get(k, k): v for k, v in awards.items()}}
    head = world.head()
    assert_error(world.api.call("POST", f"/v1/reports/{report['id']}/close", world.staff["token"], body), status, code)
    assert world.head() == head
    assert world.api.ok("GET", f"/v1/reports/{report['id']}", ADMIN_TOKEN)["status"] == "dispatched"


@memory_only
@pytest.mark.parametrize(("handler_ids", "status"), [
    ([], 422), (["garbage"], 404), ([UNKNOWN_ID], 404), ("not-a-list", 422), ([1], 422),
    (["beneficiary"], 422), (["foreign_beneficiary"], 422), (["other", "other"], 422),
])
def test_dispatch_refuses_bad_handlers(world: World, handler_ids: Any, status: int) -> None:
    report = world.report()
    names = {"other": world.other_volunteer["id"], "beneficiary": world.beneficiary["id"],
             "foreign_beneficiary": world.foreign_beneficiary["id"]}
    if isinstance(handler_ids, list):
        handler_ids = [names.get(h, h) if isinstance(h, str) else h for h in handler_ids]
    response = world.api.call("POST", f"/v1/reports/{report['id']}/dispatch", world.staff["token"], {"handler_ids": handler_ids})
    assert_error(response, status, "not_found" if status == 404 else "validation_error")


@memory_only
@pytest.mark.parametrize("body", [
    {"category": "arson", "description": "x"}, {"category": "FIRE", "description": "x"},
    {"category": "x" * 33, "description": "x"}, {"category": None, "description": "x"}, {"category": 3, "description": "x"},
    {"category": "fire", "description": ""}, {"category": "fire", "description": "   "},
    {"category": "fire", "description": "x" * 2_001}, {"category": "fire", "description": "a\x00b"},
    {"category": "fire"}, {"description": "x"},
])
def test_submit_report_refuses_bad_bodies(world: World, body: dict[str, Any]) -> None:
    head = world.head()
    assert_error(world.api.call("POST", "/v1/reports", world.volunteer["token"], body), 422, "validation_error")
    assert world.head() == head


@memory_only
@pytest.mark.parametrize("award", [0, -1, 1.5, "10", True, None, 10_001, 10**40, [1]])
def test_verify_refuses_bad_awards(world: World, award: Any) -> None:
    report = world.report()
    body = {"award": award}
    response = world.api.call("POST", f"/v1/reports/{report['id']}/verify", world.staff["token"], body)
    if award is None:  # an explicit null means "the schedule's award"
        assert response.status_code == 200 and response.json()["award"] == 10
        return
    assert_error(response, 422, "validation_error")
    assert world.api.ok("GET", f"/v1/reports/{report['id']}", ADMIN_TOKEN)["status"] == "submitted"


@memory_only
@pytest.mark.parametrize("action", ["verify", "reject", "dispatch", "close"])
def test_unknown_and_garbage_report_ids_are_not_found(world: World, action: str) -> None:
    body = {"reason": "x", "handler_ids": [world.other_volunteer["id"]], "handler_awards": {}}
    for report_id in (UNKNOWN_ID, world.volunteer["id"], *GARBAGE_IDS):
        response = world.api.call("POST", f"/v1/reports/{report_id}/{action}", world.staff["token"], body)
        assert_error(response, 404, "not_found")
    assert_error(world.api.call("GET", f"/v1/reports/{UNKNOWN_ID}", ADMIN_TOKEN), 404, "not_found")


# --- Donations ---------------------------------------------------------------------------------


def test_donation_moves_beans_and_is_idempotent(world: World) -> None:
    api, token = world.api, world.volunteer["token"]
    body, key = {"to_account_id": world.beneficiary["id"], "amount": 20}, new_key()
    donation = api.ok("POST", "/v1/donations", token, body, key=key, status=201)
    assert {k: donation[k] for k in ("from_account_id", "to_account_id", "amount")} == {
        "from_account_id": world.volunteer["id"], "to_account_id": world.beneficiary["id"], "amount": 20}
    assert donation["id"]
    head = world.head()
    for _ in range(2):
        replay = api.call("POST", "/v1/donations", token, body, key=key)
        assert replay.status_code == 201 and replay.json() == donation and replay.headers["Idempotent-Replayed"] == "true"
    assert_error(api.call("POST", "/v1/donations", token, body | {"amount": 21}, key=key), 409, "idempotency_conflict")
    elsewhere = body | {"to_account_id": world.merchant["id"]}
    assert_error(api.call("POST", "/v1/donations", token, elsewhere, key=key), 409, "idempotency_conflict")
    assert world.head() == head
    # The same key from another principal is that principal's own key.
    other = api.call("POST", "/v1/donations", world.other_volunteer["token"], body, key=key)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert api.balances(world.beneficiary["id"])["bean"] == 40
    assert api.balances(world.volunteer["id"])["bean"] == 30
    check_invariants(world.services)


@memory_only
@pytest.mark.parametrize("key", ["", " ", "has space", "x" * 201, "tab\tkey"])
def test_invalid_idempotency_keys_are_refused(world: World, key: str) -> None:
    body = {"to_account_id": world.beneficiary["id"], "amount": 1}
    response = world.api.call("POST", "/v1/donations", world.volunteer["token"], body, key=key)
    assert_error(response, 422, "validation_error")
    assert world.api.balances(world.volunteer["id"])["bean"] == 50


@memory_only
def test_a_non_ascii_idempotency_key_is_refused(world: World) -> None:
    headers = [(b"authorization", f"Bearer {world.volunteer['token']}".encode()), (b"idempotency-key", "金豆".encode()),
               (b"content-type", b"application/json")]
    body = json.dumps({"to_account_id": world.beneficiary["id"], "amount": 1}).encode()
    response = world.api.client.post("/v1/donations", content=body, headers=headers)
    assert_error(response, 422, "validation_error")


@memory_only
def test_the_longest_idempotency_key_is_accepted(world: World) -> None:
    body = {"to_account_id": world.beneficiary["id"], "amount": 1}
    world.api.ok("POST", "/v1/donations", world.volunteer["token"], body, key="~" * 200, status=201)


@memory_only
@pytest.mark.parametrize(("recipient", "status", "code"), [
    ("other_volunteer", 422, "validation_error"), ("merchant", 422, "validation_error"),
    ("foreign_beneficiary", 422, "validation_error"), ("volunteer", 422, "validation_error"),
    ("unknown", 404, "not_found"), ("garbage", 404, "not_found"), ("community", 404, "not_found"),
])
def test_donations_go_only_to_beneficiaries_of_the_same_community(world: World, recipient: str, status: int, code: str) -> None:
    targets = {"unknown": UNKNOWN_ID, "garbage": "garbage", "community": world.community["id"]}
    to_account_id = targets.get(recipient) or getattr(world, recipient)["id"]
    head = world.head()
    response = world.api.call("POST", "/v1/donations", world.volunteer["token"], {"to_account_id": to_account_id, "amount": 1})
    assert_error(response, status, code)
    assert world.head() == head


@memory_only
@pytest.mark.parametrize("amount", [0, -1, 1.5, 1.0, "5", True, False, None, [5], {"v": 5}, 1_000_001, 10**40, 1e3])
def test_donation_amounts_are_whole_positive_numbers(world: World, amount: Any) -> None:
    head = world.head()
    body = {"to_account_id": world.beneficiary["id"], "amount": amount}
    assert_error(world.api.call("POST", "/v1/donations", world.volunteer["token"], body), 422, "validation_error")
    assert world.head() == head


@memory_only
def test_donating_more_than_the_balance_is_insufficient_funds(world: World) -> None:
    body = {"to_account_id": world.beneficiary["id"], "amount": 51}
    error = assert_error(world.api.call("POST", "/v1/donations", world.volunteer["token"], body), 409, "insufficient_funds")
    assert error["details"]["balance"] == 50 and error["details"]["needed"] == 51
    world.api.ok("POST", "/v1/donations", world.volunteer["token"], body | {"amount": 50}, status=201)
    assert world.api.balances(world.volunteer["id"])["bean"] == 0


# --- the role matrix ----------------------------------------------------------------------------

ROLES = ("anonymous", "bad_token", "admin", "staff", "auditor", "foreign_staff", "volunteer", "other_volunteer",
         "beneficiary", "merchant")
RUNNERS = {"admin", "staff"}
READERS = {"admin", "staff", "auditor"}

Request = tuple[str, str, Any]


@dataclass(frozen=True)
class Endpoint:
    name: str
    allowed: frozenset[str]
    request: Callable[[World], Request]  # builds a fresh request that succeeds for an allowed role


ENDPOINTS = (
    Endpoint("register community", frozenset({"admin"}), lambda w: ("POST", "/v1/communities", {"name": "新社区"})),
    Endpoint("register staff", frozenset({"admin"}), lambda w: (
        "POST", "/v1/staff", {"community_id": w.community["id"], "display_name": "小李", "role": "staff"})),
    Endpoint("open account", frozenset(RUNNERS), lambda w: (
        "POST", "/v1/accounts", {"community_id": w.community["id"], "kind": "volunteer", "display_name": "新人"})),
    Endpoint("read account", frozenset(READERS | {"volunteer"}), lambda w: ("GET", f"/v1/accounts/{w.volunteer['id']}", None)),
    Endpoint("read entries", frozenset(READERS | {"volunteer"}), lambda w: (
        "GET", f"/v1/accounts/{w.volunteer['id']}/entries", None)),
    Endpoint("freeze", frozenset(RUNNERS), lambda w: ("POST", f"/v1/accounts/{w.beneficiary['id']}/freeze", {})),
    Endpoint("unfreeze", frozenset(RUNNERS), lambda w: ("POST", f"/v1/accounts/{w.beneficiary['id']}/unfreeze", None)),
    Endpoint("submit report", frozenset({"volunteer", "other_volunteer"}), lambda w: (
        "POST", "/v1/reports", {"category": "fire", "description": "烟"})),
    Endpoint("read report", frozenset(READERS | {"volunteer"}), lambda w: ("GET", f"/v1/reports/{w.report()['id']}", None)),
    Endpoint("verify", frozenset(RUNNERS), lambda w: ("POST", f"/v1/reports/{w.report()['id']}/verify", {})),
    Endpoint("reject", frozenset(RUNNERS), lambda w: ("POST", f"/v1/reports/{w.report()['id']}/reject", {"reason": "重复"})),
    Endpoint("dispatch", frozenset(RUNNERS), lambda w: (
        "POST", f"/v1/reports/{w.report()['id']}/dispatch", {"handler_ids": [w.other_volunteer["id"]]})),
    Endpoint("close", frozenset(RUNNERS), lambda w: (
        "POST", f"/v1/reports/{w.dispatched()['id']}/close", {"handler_awards": {w.other_volunteer["id"]: 2}})),
    Endpoint("donate", frozenset({"volunteer", "other_volunteer"}), lambda w: (
        "POST", "/v1/donations", {"to_account_id": w.beneficiary["id"], "amount": 1})),
)


@memory_only
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_role_matrix(world: World, endpoint: Endpoint) -> None:
    """401 without a valid token; 403 for a wrong role, someone else's account or another
    community's staff; success for everyone allowed."""
    outcomes = {}
    for role in ROLES:
        method, path, body = endpoint.request(world)
        head = world.head()
        response = world.api.call(method, path, world.token(role), body)
        outcomes[role] = response.status_code
        if role in ("anonymous", "bad_token"):
            assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == "Bearer"
        elif role in endpoint.allowed:
            assert response.status_code in (200, 201), (role, response.text)
        else:
            assert_error(response, 403, "forbidden")
            assert world.head() == head, f"a forbidden {endpoint.name} by {role} wrote something"
    assert {r for r, status in outcomes.items() if status < 300} == endpoint.allowed


@memory_only
@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token " + ADMIN_TOKEN,
                                           "Bearer " + "x" * 600, ADMIN_TOKEN])
def test_malformed_authorization_is_unauthorized(world: World, authorization: str) -> None:
    response = world.api.call("GET", f"/v1/accounts/{world.volunteer['id']}", headers={"Authorization": authorization})
    assert_error(response, 401, "unauthorized")


@memory_only
def test_a_community_admin_runs_only_their_own_community(world: World) -> None:
    local_admin = world.api.staff(world.community["id"], "admin")
    elsewhere = world.api.community(name="别处")
    allowed = world.api.call("POST", "/v1/staff", local_admin["token"],
                             {"community_id": world.community["id"], "display_name": "小王", "role": "staff"})
    assert allowed.status_code == 201
    refused = world.api.call("POST", "/v1/staff", local_admin["token"],
                             {"community_id": elsewhere["id"], "display_name": "小王", "role": "staff"})
    assert_error(refused, 403, "forbidden")
    assert_error(world.api.call("GET", f"/v1/accounts/{world.foreign_beneficiary['id']}", local_admin["token"]), 403, "forbidden")


# --- malformed input: 422, never 5xx, never a partial write -----------------------------------------

POST_PATHS = ("/v1/communities", "/v1/staff", "/v1/accounts", "/v1/reports", "/v1/donations",
              "/v1/reports/{report}/verify", "/v1/reports/{report}/reject", "/v1/reports/{report}/dispatch",
              "/v1/reports/{report}/close", "/v1/accounts/{account}/freeze")
TOKEN_FOR_PATH = {"/v1/reports": "volunteer", "/v1/donations": "volunteer"}


def _post_path(world: World, template: str) -> tuple[str, str | None]:
    report = world.report() if "{report}" in template else None
    path = template.format(report=report["id"] if report else "", account=world.beneficiary["id"])
    return path, world.token(TOKEN_FOR_PATH.get(template, "admin"))


MALFORMED_JSON = (b"{", b'{"amount": 1,}', b"{'a': 1}", b"\xff\xfe", b"[1, 2]", b'"text"', b"12", b"",
                  b"[" * 100_000 + b"]" * 100_000)


@memory_only
@pytest.mark.parametrize("template", POST_PATHS)
def test_malformed_json_is_a_validation_error(world: World, template: str) -> None:
    path, token = _post_path(world, template)
    head = world.head()
    optional_body = template.endswith(("/verify", "/freeze"))  # for these an empty body is no body: fine
    for raw in (r for r in MALFORMED_JSON if r or not optional_body):
        response = world.api.call("POST", path, token, content=raw, headers={"Content-Type": "application/json"})
        assert_error(response, 422, "validation_error")
    assert world.head() == head


@memory_only
def test_an_oversized_body_is_refused_before_it_is_read(world: World) -> None:
    body = json.dumps({"category": "fire", "description": "x" * 300_000})
    response = world.api.call("POST", "/v1/reports", world.volunteer["token"], content=body,
                              headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")


@memory_only
def test_an_oversized_body_without_a_length_is_refused_too(world: World) -> None:
    def chunks():  # a chunked upload declares no Content-Length
        yield b'{"category": "fire", "description": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    head = world.head()
    response = world.api.call("POST", "/v1/reports", world.volunteer["token"], content=chunks(),
                              headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large")
    assert world.head() == head


@memory_only
def test_a_chunked_body_within_the_limit_is_read_whole(world: World) -> None:
    def chunks():
        yield b'{"category": "fire", '
        yield '"description": "楼道有烟"}'.encode()

    response = world.api.call("POST", "/v1/reports", world.volunteer["token"], content=chunks(),
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["category"] == "fire" and response.json()["description"] == "楼道有烟"


@memory_only
def test_malformed_json_is_named_as_such(world: World) -> None:
    response = world.api.call("POST", "/v1/reports", world.volunteer["token"], content=b'{"category":',
                              headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error")
    assert response.json()["error"]["message"] == "the request body is not valid JSON"


json_values = st.deferred(
    lambda: st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.lists(json_values, max_size=4) | st.dictionaries(st.text(max_size=12), json_values, max_size=4)
)


@memory_only
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(template=st.sampled_from(POST_PATHS), body=st.dictionaries(
    st.sampled_from(["name", "community_id", "display_name", "role", "kind", "account_id", "merchant_categories",
                     "category", "description", "award", "reason", "handler_ids", "handler_awards", "to_account_id",
                     "amount", "timezone", "rebate_rate_bps", "award_schedule"]), json_values, max_size=5))
def test_no_body_whatever_gets_a_5xx(world: World, template: str, body: dict[str, Any]) -> None:
    path, token = _post_path(world, template)
    head = world.head()
    response = world.api.call("POST", path, token, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert world.head() == head, "a refused request wrote something"


@pytest.mark.parametrize(("name", "description"), [("名\x00字", "有\x00空字符"), ("\x1b[31mred", "\x1b[31mred"),
                                                 ("x" * 201, "x" * 2_001)])
def test_text_that_a_database_cannot_hold_is_refused_on_every_backend(world: World, name: str, description: str) -> None:
    """NUL cannot be stored in PostgreSQL text: once recorded, the read model would stop on it."""
    head = world.head()
    body = {"community_id": world.community["id"], "kind": "volunteer", "display_name": name}
    assert_error(world.api.call("POST", "/v1/accounts", ADMIN_TOKEN, body), 422, "validation_error")
    report = {"category": "fire", "description": description}
    assert_error(world.api.call("POST", "/v1/reports", world.volunteer["token"], report), 422, "validation_error")
    assert world.head() == head
    assert world.api.call("GET", "/healthz").status_code == 200
    assert world.api.balances(world.volunteer["id"])["bean"] == 50


def test_closing_a_report_with_no_awards_keeps_the_service_healthy(world: World) -> None:
    report = world.dispatched()
    closed = world.api.ok("POST", f"/v1/reports/{report['id']}/close", world.staff["token"], {"handler_awards": {}}, status=200)
    assert closed["status"] == "closed"
    world.api.ok("POST", "/v1/donations", world.volunteer["token"], {"to_account_id": world.beneficiary["id"], "amount": 5},
                 status=201)
    assert world.api.balances(world.beneficiary["id"])["bean"] == 5
    check_invariants(world.services)


@memory_only
def test_a_fresh_unknown_id_never_leaks_anything(world: World) -> None:
    fresh = str(uuid4())
    for method, path in (("GET", f"/v1/accounts/{fresh}"), ("GET", f"/v1/reports/{fresh}"),
                         ("POST", f"/v1/accounts/{fresh}/freeze")):
        error = assert_error(world.api.call(method, path, ADMIN_TOKEN), 404, "not_found")
        assert set(error["details"]) <= {"id"}
