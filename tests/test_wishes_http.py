"""The wish wall over HTTP, as an outside client sees it: the contract's shapes, roles, error
codes and idempotency; fulfilment in the merchant's sales and the month's settlement; the public
wall (JSON and page) without names; the fund report's count and link."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key

VOLUNTEER_NAME = "志愿者陈小红"
BENEFICIARY_NAME = "独居老人刘爷爷"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ITEM_FIELDS = {"id", "title", "target", "pledged", "pledgers", "status"}


def code(response: Any) -> str:
    return response.json()["error"]["code"]


class Wall:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.community = api.community(rebate_rate_bps=1_000)
        self.cid = self.community["id"]
        self.staff = api.staff(self.cid)["token"]
        self.volunteers = [api.account(self.cid, "volunteer", f"{VOLUNTEER_NAME}{i}") for i in range(2)]
        for volunteer in self.volunteers:
            api.earn(volunteer, self.staff, award=50)
        self.beneficiary = api.account(self.cid, "beneficiary", BENEFICIARY_NAME)
        self.merchant = api.account(self.cid, "merchant", "便民五金店")

    def wish(self, target: int, **fields: Any) -> dict[str, Any]:
        body = {"community_id": self.cid, "title": "给刘爷爷装一个扶手", "story": "卫生间没有扶手，\n老人起身困难。",
                "target": target, "beneficiary_id": self.beneficiary["id"], **fields}
        return self.api.ok("POST", "/v1/wishes", self.staff, body, status=201)

    def pledge(self, wish_id: str, volunteer: dict[str, Any], amount: int, key: str | None = None) -> Any:
        return self.api.call("POST", f"/v1/wishes/{wish_id}/pledges", volunteer["token"], {"amount": amount}, key=key)


@pytest.fixture
def wall(services) -> Any:
    with api_for(services, ADMIN_TOKEN) as api:
        yield Wall(api)


def test_a_wish_is_pledged_funded_and_fulfilled_through_a_settled_sale(wall: Wall, services) -> None:
    api = wall.api
    wish = wall.wish(60, merchant_id=wall.merchant["id"])
    assert (wish["status"], wish["target"], wish["pledged"], wish["pledgers"]) == ("open", 60, 0, 0)

    first = wall.pledge(wish["id"], wall.volunteers[0], 40, key=new_key())
    assert first.status_code == 201
    assert {k: first.json()[k] for k in ("wish_id", "amount", "pledged", "status")} == {
        "wish_id": wish["id"], "amount": 40, "pledged": 40, "status": "open"}
    over = wall.pledge(wish["id"], wall.volunteers[1], 21)
    assert (over.status_code, code(over)) == (409, "over_pledged")
    assert over.json()["error"]["details"]["still_needed"] == 20
    poor = wall.pledge(wish["id"], wall.volunteers[1], 20)
    assert poor.json()["status"] == "funded"
    assert api.balances(wall.volunteers[1]["id"])["bean"] == 30
    after_funded = wall.pledge(wish["id"], wall.volunteers[1], 1)
    assert (after_funded.status_code, code(after_funded)) == (409, "over_pledged")

    fulfilled = api.ok("POST", f"/v1/wishes/{wish['id']}/fulfil", wall.staff, key=new_key())
    assert (fulfilled["status"], fulfilled["merchant_id"]) == ("fulfilled", wall.merchant["id"])
    again = api.call("POST", f"/v1/wishes/{wish['id']}/fulfil", wall.staff)
    assert (again.status_code, code(again)) == (409, "invalid_state")
    cancelled = api.call("POST", f"/v1/wishes/{wish['id']}/cancel", wall.staff)
    assert (cancelled.status_code, code(cancelled)) == (409, "invalid_state")

    period = datetime.now(SHANGHAI).strftime("%Y-%m")
    sales = api.ok("GET", f"/v1/merchants/{wall.merchant['id']}/redemptions?period={period}", wall.merchant["token"])
    (sale,) = sales["items"]
    assert (sale["amount"], sale["funded"], sale["method"], sale["status"]) == (60, {"welfare": 0, "bean": 60}, "wish", "completed")
    reverse = api.call("POST", f"/v1/redemptions/{sale['id']}/reverse", wall.merchant["token"])
    assert (reverse.status_code, code(reverse)) == (409, "invalid_state")
    settlement = api.ok("POST", "/v1/settlements", wall.staff, {"community_id": wall.cid, "period": period}, status=201)
    assert settlement["lines"][0]["merchant_id"] == wall.merchant["id"]
    assert {k: settlement["lines"][0][k] for k in ("redeemed", "reimbursement_fen", "rebate_fen", "total_fen")} == {
        "redeemed": 60, "reimbursement_fen": 6_000, "rebate_fen": 600, "total_fen": 6_600}

    report = api.ok("GET", f"/v1/public/communities/{wall.cid}/fund-reports/{period}")
    assert report["wishes_fulfilled"] == 1
    page = api.call("GET", f"/v1/public/communities/{wall.cid}/fund-reports/{period}.html")
    assert f'/v1/public/communities/{wall.cid}/wishes.html?lang=zh">本月实现微心愿 1 个' in page.text
    as_csv = api.call("GET", f"/v1/public/communities/{wall.cid}/fund-reports/{period}.csv").text
    assert "\nwishes_fulfilled,1\n" in as_csv
    check_invariants(services)


def test_pledges_replay_under_their_key_and_refuse_what_cannot_move(wall: Wall) -> None:
    api = wall.api
    wish = wall.wish(30)
    volunteer = wall.volunteers[0]
    key = new_key()
    first = wall.pledge(wish["id"], volunteer, 10, key=key)
    replay = wall.pledge(wish["id"], volunteer, 10, key=key)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    conflict = wall.pledge(wish["id"], volunteer, 11, key=key)
    assert (conflict.status_code, code(conflict)) == (409, "idempotency_conflict")
    assert api.balances(volunteer["id"])["bean"] == 40

    rich_wish = wall.wish(1_000)
    broke = wall.pledge(rich_wish["id"], volunteer, 41)
    assert (broke.status_code, code(broke)) == (409, "insufficient_funds")
    for amount in (0, -3, 1.5, "5", None):
        refused = wall.pledge(wish["id"], volunteer, amount)  # type: ignore[arg-type]
        assert refused.status_code == 422, amount
    by_staff = api.call("POST", f"/v1/wishes/{wish['id']}/pledges", wall.staff, {"amount": 1})
    by_merchant = api.call("POST", f"/v1/wishes/{wish['id']}/pledges", wall.merchant["token"], {"amount": 1})
    anonymous = api.call("POST", f"/v1/wishes/{wish['id']}/pledges", None, {"amount": 1})
    assert [r.status_code for r in (by_staff, by_merchant, anonymous)] == [403, 403, 401]
    unknown = api.call("POST", "/v1/wishes/not-a-wish/pledges", volunteer["token"], {"amount": 1})
    assert (unknown.status_code, code(unknown)) == (404, "not_found")
    unfulfillable = api.call("POST", f"/v1/wishes/{wish['id']}/fulfil", wall.staff, {"merchant_id": wall.merchant["id"]})
    assert (unfulfillable.status_code, code(unfulfillable)) == (409, "invalid_state")
    assert api.ok("GET", f"/v1/wishes/{wish['id']}", volunteer["token"])["pledged"] == 10


def test_creation_roles_and_fields(wall: Wall) -> None:
    api = wall.api
    body = {"community_id": wall.cid, "title": "一台电风扇", "story": "夏天太热", "target": 10}
    assert api.call("POST", "/v1/wishes", wall.volunteers[0]["token"], body).status_code == 403
    assert api.call("POST", "/v1/wishes", None, body).status_code == 401
    other = api.community()
    other_staff = api.staff(other["id"])["token"]
    assert api.call("POST", "/v1/wishes", other_staff, body).status_code == 403
    for change, field in (({"target": 0}, "target"), ({"title": ""}, "title"), ({"merchant_id": "nope"}, "merchant_id"),
                          ({"merchant_id": wall.volunteers[0]["id"]}, "merchant_id"), ({"story": "a\u0007"}, "story")):
        refused = api.call("POST", "/v1/wishes", wall.staff, body | change)
        assert (refused.status_code, code(refused)) == (422, "validation_error"), change
        assert refused.json()["error"]["details"]["field"] == field, change
    missing = api.call("POST", "/v1/wishes", wall.staff, {k: v for k, v in body.items() if k != "target"})
    assert missing.status_code == 422 and "target" in missing.text


def test_cancelling_refunds_every_pledger(wall: Wall, services) -> None:
    api = wall.api
    wish = wall.wish(100)
    wall.pledge(wish["id"], wall.volunteers[0], 15)
    wall.pledge(wish["id"], wall.volunteers[1], 25)
    assert api.ok("POST", f"/v1/wishes/{wish['id']}/cancel", wall.staff, key=new_key())["status"] == "cancelled"
    assert [api.balances(v["id"])["bean"] for v in wall.volunteers] == [50, 50]
    late = wall.pledge(wish["id"], wall.volunteers[0], 1)
    assert (late.status_code, code(late)) == (409, "invalid_state")
    entries = api.ok("GET", f"/v1/accounts/{wall.volunteers[1]['id']}/entries", wall.volunteers[1]["token"])["items"]
    assert [(e["type"], e["amount"]) for e in entries[:2]] == [("wish_refund", 25), ("wish_pledge", -25)]
    check_invariants(services)


def test_the_community_lists_its_wishes(wall: Wall) -> None:
    api = wall.api
    made = [wall.wish(10 + i) for i in range(3)]
    wall.pledge(made[0]["id"], wall.volunteers[0], 10)
    newest_first = [w["id"] for w in reversed(made)]
    for token in (wall.staff, wall.volunteers[0]["token"], wall.merchant["token"], wall.beneficiary["token"]):
        listed = api.ok("GET", f"/v1/wishes?community_id={wall.cid}", token)
        assert [w["id"] for w in listed["items"]] == newest_first
        assert all(set(item) == ITEM_FIELDS for item in listed["items"])
    own = api.ok("GET", "/v1/wishes", wall.volunteers[0]["token"])  # a holder's own community by default
    assert [w["id"] for w in own["items"]] == newest_first
    funded = api.ok("GET", f"/v1/wishes?community_id={wall.cid}&status=funded", wall.staff)["items"]
    assert [(w["id"], w["pledged"], w["pledgers"], w["status"]) for w in funded] == [(made[0]["id"], 10, 1, "funded")]

    first = api.ok("GET", f"/v1/wishes?community_id={wall.cid}&limit=2", wall.staff)
    second = api.ok("GET", f"/v1/wishes?community_id={wall.cid}&limit=2&cursor={first['next_cursor']}", wall.staff)
    assert [w["id"] for w in first["items"] + second["items"]] == newest_first and second["next_cursor"] is None

    bad_status = api.call("GET", f"/v1/wishes?community_id={wall.cid}&status=granted", wall.staff)
    assert (bad_status.status_code, bad_status.json()["error"]["details"]["field"]) == (422, "status")
    bad_cursor = api.call("GET", f"/v1/wishes?community_id={wall.cid}&cursor=xyz", wall.staff)
    assert bad_cursor.status_code == 422
    other = api.community()
    assert api.call("GET", f"/v1/wishes?community_id={other['id']}", wall.staff).status_code == 403
    assert api.call("GET", f"/v1/wishes?community_id={other['id']}", wall.volunteers[0]["token"]).status_code == 403
    assert api.call("GET", f"/v1/wishes/{made[0]['id']}", api.staff(other["id"])["token"]).status_code == 403
    assert api.ok("GET", f"/v1/wishes?community_id={other['id']}", ADMIN_TOKEN)["items"] == []
    no_community = api.call("GET", "/v1/wishes", ADMIN_TOKEN)
    assert (no_community.status_code, no_community.json()["error"]["details"]["field"]) == (422, "community_id")
    assert api.call("GET", "/v1/wishes", None).status_code == 401
    assert api.call("GET", "/v1/wishes/00000000-0000-0000-0000-000000000000", wall.staff).status_code == 404


def test_the_public_wall_names_nobody(wall: Wall) -> None:
    api = wall.api
    wish = wall.wish(20)
    wall.pledge(wish["id"], wall.volunteers[0], 5)
    listed = api.ok("GET", f"/v1/public/communities/{wall.cid}/wishes")
    assert listed["items"] == [{"id": wish["id"], "title": "给刘爷爷装一个扶手", "target": 20, "pledged": 5,
                                "pledgers": 1, "status": "open"}]
    page = api.call("GET", f"/v1/public/communities/{wall.cid}/wishes.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "微心愿墙" in page.text and "给刘爷爷装一个扶手" in page.text and "已认领 5 / 20 金豆 · 1 人" in page.text
    assert "<script" not in page.text and "http://" not in page.text.replace("http://www.w3.org", "")
    english = api.call("GET", f"/v1/public/communities/{wall.cid}/wishes.html?lang=en")
    assert "Wish wall" in english.text and "5 of 20 beans" in english.text
    for text in (str(listed), page.text, english.text):
        assert VOLUNTEER_NAME not in text and BENEFICIARY_NAME not in text and "卫生间没有扶手" not in text
    assert api.call("GET", "/v1/public/communities/00000000-0000-0000-0000-000000000000/wishes").status_code == 404
    assert api.call("GET", "/v1/public/communities/nonsense/wishes.html").status_code == 404
    assert api.call("GET", f"/v1/public/communities/{wall.cid}/wishes?status=x").status_code == 422


# --- every role against every endpoint, and bodies no one should send ---------------------------

ROLES = ("anonymous", "admin", "staff", "auditor", "foreign_staff", "volunteer", "beneficiary", "merchant")


def _tokens(wall: Wall) -> dict[str, str | None]:
    other = wall.api.community()
    return {
        "anonymous": None, "admin": ADMIN_TOKEN, "staff": wall.staff, "auditor": wall.api.staff(wall.cid, "auditor")["token"],
        "foreign_staff": wall.api.staff(other["id"])["token"], "volunteer": wall.volunteers[0]["token"],
        "beneficiary": wall.beneficiary["token"], "merchant": wall.merchant["token"],
    }


def _funded(wall: Wall) -> str:
    wish = wall.wish(1)
    wall.pledge(wish["id"], wall.volunteers[1], 1)
    return wish["id"]


ENDPOINTS: dict[str, tuple[set[str], Any]] = {
    "create": ({"admin", "staff"}, lambda w: ("POST", "/v1/wishes", {"community_id": w.cid, "title": "t", "story": "s",
                                                                     "target": 5})),
    "pledge": ({"volunteer"}, lambda w: ("POST", f"/v1/wishes/{w.wish(5)['id']}/pledges", {"amount": 1})),
    "fulfil": ({"admin", "staff"}, lambda w: ("POST", f"/v1/wishes/{_funded(w)}/fulfil", {"merchant_id": w.merchant["id"]})),
    "cancel": ({"admin", "staff"}, lambda w: ("POST", f"/v1/wishes/{w.wish(5)['id']}/cancel", None)),
    "list": ({"admin", "staff", "auditor", "volunteer", "beneficiary", "merchant"},
             lambda w: ("GET", f"/v1/wishes?community_id={w.cid}", None)),
    "read": ({"admin", "staff", "auditor", "volunteer", "beneficiary", "merchant"},
             lambda w: ("GET", f"/v1/wishes/{w.wish(5)['id']}", None)),
}


@pytest.mark.backends("memory")
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_role_matrix(wall: Wall, name: str) -> None:
    allowed, build = ENDPOINTS[name]
    tokens = _tokens(wall)
    succeeded = set()
    for role in ROLES:
        method, path, body = build(wall)
        response = wall.api.call(method, path, tokens[role], body)
        if response.status_code < 300:
            succeeded.add(role)
        elif role == "anonymous":
            assert (response.status_code, code(response)) == (401, "unauthorized")
        else:
            assert (response.status_code, code(response)) == (403, "forbidden"), (role, response.text)
    assert succeeded == allowed


json_values = st.deferred(
    lambda: st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.lists(json_values, max_size=3) | st.dictionaries(st.text(max_size=12), json_values, max_size=3)
)


@pytest.mark.backends("memory")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(action=st.sampled_from(["", "/pledges", "/fulfil", "/cancel"]), body=st.dictionaries(
    st.sampled_from(["community_id", "title", "story", "target", "beneficiary_id", "merchant_id", "amount"]),
    json_values | st.just("00000000-0000-0000-0000-000000000000"), max_size=5))
def test_no_body_whatever_gets_a_5xx(wall: Wall, action: str, body: dict[str, Any]) -> None:
    path, token = ("/v1/wishes", wall.staff) if not action else (f"/v1/wishes/{wall.wish(3)['id']}{action}", wall.staff)
    if action == "/pledges":
        token = wall.volunteers[0]["token"]
    response = wall.api.call("POST", path, token, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
