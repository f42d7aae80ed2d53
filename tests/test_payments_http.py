"""Welfare allowances and paying at merchants through HTTP, exactly as the contract spells them:
shapes, status codes, roles, idempotency headers, QR codes, paging and the guessing limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest

from domain.errors import RateLimited
from infra.ratelimit import PAYMENT_CODE_FAILURES_MAX as CODE_FAILURES_PER_WINDOW_MAX
from infra.ratelimit import TABLES, FailureWindow
from infra.wiring import memory_read_store
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key, this_period

REDEMPTION_FIELDS = {"id", "merchant_id", "customer_id", "amount", "funded", "status", "occurred_at"}


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def code_for(api: Api, holder: dict[str, Any]) -> str:
    return api.ok("POST", f"/v1/accounts/{holder['id']}/payment-codes", holder["token"], status=201)["code"]


def redeem(api: Api, merchant: dict[str, Any], code: str, amount: int, key: str | None = None) -> Any:
    return api.call("POST", "/v1/redemptions", merchant["token"], {"payment_code": code, "amount": amount},
                    key=key or new_key())


class Town:
    """A community with a staff member, a canteen, a barber, a volunteer and a grandma."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.community = api.community()
        self.staff = api.staff(self.community["id"])
        self.canteen = api.account(self.community["id"], "merchant", "幸福食堂", merchant_categories=["meal"])
        self.barber = api.account(self.community["id"], "merchant", "老街理发", merchant_categories=["barber"])
        self.volunteer = api.account(self.community["id"], "volunteer", "金豆哥 王师傅")
        self.grandma = api.account(self.community["id"], "beneficiary", "李奶奶")

    def allowances(self, amount: int, key: str | None = None, **fields: Any) -> Any:
        body = {"community_id": self.community["id"], "period": this_period(), "amount_per_beneficiary": amount, **fields}
        return self.api.call("POST", "/v1/welfare/allowances", self.staff["token"], body, key=key)


@pytest.fixture
def town(services) -> Any:
    with api_for(services, ADMIN_TOKEN) as api:
        yield Town(api)


def test_a_month_of_lunches_for_grandma(town: Town, services) -> None:
    api = town.api
    grandpa = api.account(town.community["id"], "beneficiary", "张爷爷")
    key = new_key()
    issued = town.allowances(100, key=key)
    assert issued.status_code == 201
    assert issued.json()["issued"] == [{"account_id": town.grandma["id"], "amount": 100},
                                       {"account_id": grandpa["id"], "amount": 100}]
    assert issued.json()["total"] == 200 and issued.json()["period"] == this_period()
    replayed = town.allowances(100, key=key)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == issued.json()
    rerun = town.allowances(100, key=new_key()).json()
    assert rerun["issued"] == [] and rerun["total"] == 0 and len(rerun["skipped"]) == 2

    api.earn(town.volunteer, town.staff["token"], "fire")
    api.ok("POST", "/v1/donations", town.volunteer["token"], {"to_account_id": town.grandma["id"], "amount": 10}, key=new_key())

    lunch = redeem(api, town.canteen, code_for(api, town.grandma), 12)
    assert lunch.status_code == 201 and set(lunch.json()) >= REDEMPTION_FIELDS
    sale = lunch.json()
    assert sale["funded"] == {"welfare": 12, "bean": 0} and sale["status"] == "completed"
    assert sale["customer_id"] == town.grandma["id"] and sale["merchant_id"] == town.canteen["id"]
    assert datetime.fromisoformat(sale["occurred_at"]).utcoffset().total_seconds() == 8 * 3600

    haircut = redeem(api, town.barber, code_for(api, town.grandma), 15)
    assert haircut.status_code == 409 and error_code(haircut) == "welfare_not_accepted"
    haircut = redeem(api, town.barber, code_for(api, town.grandma), 10)
    assert haircut.status_code == 201 and haircut.json()["funded"] == {"welfare": 0, "bean": 10}

    assert api.balances(town.grandma["id"], town.grandma["token"]) == {"bean": 0, "welfare": 88}
    entries = api.ok("GET", f"/v1/accounts/{town.grandma['id']}/entries", town.grandma["token"])["items"]
    assert [(e["type"], e["asset"], e["amount"]) for e in entries] == [
        ("redemption", "bean", -10), ("redemption", "welfare", -12), ("donation", "bean", 10),
        ("welfare_allowance", "welfare", 100),
    ]
    reversal = api.call("POST", f"/v1/redemptions/{sale['id']}/reverse", town.canteen["token"])
    assert reversal.status_code == 200 and reversal.json()["status"] == "reversed" and reversal.json()["id"] == sale["id"]
    assert api.balances(town.grandma["id"]) == {"bean": 0, "welfare": 100}
    assert api.balances(town.canteen["id"]) == {"bean": 0, "welfare": 0}
    check_invariants(services)


def test_allowances_need_staff_and_a_valid_body(town: Town) -> None:
    api = town.api
    for token in (town.volunteer["token"], town.canteen["token"], api.staff(town.community["id"], "auditor")["token"]):
        body = {"community_id": town.community["id"], "period": this_period(), "amount_per_beneficiary": 5}
        assert api.call("POST", "/v1/welfare/allowances", token, body).status_code == 403
    for fields in ({"period": "2026-1"}, {"beneficiary_ids": []}, {"beneficiary_ids": [town.volunteer["id"]]},
                   {"beneficiary_ids": ["not-an-id"]}):
        response = town.allowances(5, **fields)
        assert response.status_code == 422 and error_code(response) == "validation_error", fields
    assert town.allowances("5").status_code == 422
    assert town.allowances(-5).status_code == 422
    assert town.api.balances(town.grandma["id"]) == {"bean": 0, "welfare": 0}


def test_only_the_holder_gets_a_code_and_its_qr(town: Town) -> None:
    api = town.api
    created = api.call("POST", f"/v1/accounts/{town.volunteer['id']}/payment-codes", town.volunteer["token"])
    assert created.status_code == 201 and set(created.json()) >= {"code", "expires_at"}
    code = created.json()["code"]
    assert code.isdigit() and len(code) >= 18
    assert datetime.fromisoformat(created.json()["expires_at"]).utcoffset().total_seconds() == 8 * 3600

    svg = api.call("GET", f"/v1/accounts/{town.volunteer['id']}/payment-codes/{code}.svg", town.volunteer["token"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text and svg.headers["cache-control"] == "no-store"
    for token in (town.grandma["token"], town.staff["token"]):
        assert api.call("GET", f"/v1/accounts/{town.volunteer['id']}/payment-codes/{code}.svg", token).status_code in (403, 404)
    assert api.call("GET", f"/v1/accounts/{town.volunteer['id']}/payment-codes/{code}.svg").status_code == 401
    for token in (town.grandma["token"], town.staff["token"], town.canteen["token"]):
        response = api.call("POST", f"/v1/accounts/{town.volunteer['id']}/payment-codes", token)
        assert response.status_code == 403 and error_code(response) == "forbidden"

    api.earn(town.volunteer, town.staff["token"], "fire")
    assert redeem(api, town.canteen, code, 1).status_code == 201
    used = api.call("GET", f"/v1/accounts/{town.volunteer['id']}/payment-codes/{code}.svg", town.volunteer["token"])
    assert used.status_code == 404
    forged = api.call("GET", f"/v1/accounts/{town.volunteer['id']}/payment-codes/<script>.svg", town.volunteer["token"])
    assert forged.status_code == 404


def test_a_redemption_needs_a_merchant_and_an_idempotency_key(town: Town) -> None:
    api = town.api
    api.earn(town.volunteer, town.staff["token"], "fire")
    code = code_for(api, town.volunteer)
    missing = api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": code, "amount": 5})
    assert missing.status_code == 422 and error_code(missing) == "validation_error"
    for token in (town.volunteer["token"], town.staff["token"], ADMIN_TOKEN):
        response = api.call("POST", "/v1/redemptions", token, {"payment_code": code, "amount": 5}, key=new_key())
        assert response.status_code == 403
    for body in ({"payment_code": int(code), "amount": 5}, {"payment_code": code, "amount": "5"},
                 {"payment_code": code, "amount": 0}, {"payment_code": code, "amount": 10**30}, {"amount": 5},
                 {"payment_code": code * 4, "amount": 5}):
        response = api.call("POST", "/v1/redemptions", town.canteen["token"], body, key=new_key())
        assert response.status_code == 422 and error_code(response) == "validation_error", body

    key = new_key()
    first = redeem(api, town.canteen, code, 5, key)
    again = redeem(api, town.canteen, code, 5, key)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    conflict = redeem(api, town.canteen, code, 6, key)
    assert conflict.status_code == 409 and error_code(conflict) == "idempotency_conflict"
    reused = redeem(api, town.barber, code, 5)
    assert reused.status_code == 409 and error_code(reused) == "invalid_payment_code"
    assert api.balances(town.volunteer["id"]) == {"bean": 5, "welfare": 0}


def test_printed_cards_over_http(town: Town) -> None:
    api = town.api
    town.allowances(100)
    path = f"/v1/accounts/{town.grandma['id']}/cards"
    for token in (town.grandma["token"], town.canteen["token"], api.staff(town.community["id"], "auditor")["token"]):
        assert api.call("POST", path, token, {"daily_limit": 20}).status_code == 403
    refused = api.call("POST", f"/v1/accounts/{town.volunteer['id']}/cards", town.staff["token"], {"daily_limit": 20})
    assert refused.status_code == 422
    card = api.ok("POST", path, town.staff["token"], {"daily_limit": 20}, status=201)
    assert card["daily_limit"] == 20 and card["card_code"].isdigit() and len(card["card_code"]) >= 18

    assert redeem(api, town.canteen, card["card_code"], 12).status_code == 201
    over = redeem(api, town.canteen, card["card_code"], 9)
    assert over.status_code == 409 and error_code(over) == "daily_limit_exceeded"
    svg = api.call("GET", f"/v1/accounts/{town.grandma['id']}/payment-codes/{card['card_code']}.svg", town.staff["token"])
    assert svg.status_code == 200 and "<svg" in svg.text

    replacement = api.ok("POST", path, town.staff["token"], {"daily_limit": 30}, status=201)
    dead = redeem(api, town.canteen, card["card_code"], 1)
    assert dead.status_code == 409 and error_code(dead) == "invalid_payment_code"
    assert redeem(api, town.canteen, replacement["card_code"], 12).status_code == 201

    api.ok("POST", f"/v1/accounts/{town.grandma['id']}/freeze", town.staff["token"], {"reason": "卡片遗失"})
    frozen = redeem(api, town.canteen, replacement["card_code"], 1)
    assert frozen.status_code == 409 and error_code(frozen) == "account_frozen"
    assert api.balances(town.grandma["id"]) == {"bean": 0, "welfare": 76}


def test_reversal_by_the_same_merchant_only(town: Town) -> None:
    api = town.api
    api.earn(town.volunteer, town.staff["token"], "fire")
    sale = redeem(api, town.canteen, code_for(api, town.volunteer), 7).json()
    path = f"/v1/redemptions/{sale['id']}/reverse"
    for token, status in ((town.barber["token"], 403), (town.staff["token"], 403), (town.volunteer["token"], 403), (None, 401)):
        assert api.call("POST", path, token).status_code == status
    assert api.call("POST", "/v1/redemptions/nonsense/reverse", town.canteen["token"]).status_code == 404
    key = new_key()
    assert api.call("POST", path, town.canteen["token"], key=key).status_code == 200
    replay = api.call("POST", path, town.canteen["token"], key=key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    twice = api.call("POST", path, town.canteen["token"])
    assert twice.status_code == 409 and error_code(twice) == "already_reversed"
    assert api.balances(town.volunteer["id"]) == {"bean": 10, "welfare": 0}

    for token in (town.canteen["token"], town.volunteer["token"], town.staff["token"]):
        assert api.ok("GET", f"/v1/redemptions/{sale['id']}", token)["status"] == "reversed"
    assert api.call("GET", f"/v1/redemptions/{sale['id']}", town.barber["token"]).status_code == 403


def test_a_merchants_redemptions_by_period_with_paging(town: Town, services) -> None:
    api = town.api
    api.earn(town.volunteer, town.staff["token"], "fire")
    sales = [redeem(api, town.canteen, code_for(api, town.volunteer), amount).json() for amount in (1, 2, 3)]
    redeem(api, town.barber, code_for(api, town.volunteer), 1)
    api.ok("POST", f"/v1/redemptions/{sales[1]['id']}/reverse", town.canteen["token"])
    period = sales[0]["occurred_at"][:7]
    path = f"/v1/merchants/{town.canteen['id']}/redemptions"

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"?period={period}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.ok("GET", path + query, town.canteen["token"])
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s["id"] for s in seen] == [s["id"] for s in sales]
    assert [s["status"] for s in seen] == ["completed", "reversed", "completed"]
    assert all(set(s) >= REDEMPTION_FIELDS for s in seen)
    assert {k: seen[0][k] for k in sales[0]} == sales[0]
    assert api.ok("GET", path, town.canteen["token"])["items"] == seen  # this month when no period is given

    auditor = api.staff(town.community["id"], "auditor")
    for token in (auditor["token"], town.staff["token"], ADMIN_TOKEN):
        assert len(api.ok("GET", f"{path}?period={period}", token)["items"]) == 3
    assert api.ok("GET", f"{path}?period=2001-01", town.canteen["token"])["items"] == []
    for token, status in ((town.barber["token"], 403), (town.volunteer["token"], 403), (None, 401)):
        assert api.call("GET", f"{path}?period={period}", token).status_code == status
    assert api.call("GET", f"{path}?period=2026-13", town.canteen["token"]).status_code == 422
    assert api.call("GET", f"{path}?cursor=bad", town.canteen["token"]).status_code == 422
    assert api.call("GET", f"/v1/merchants/{town.volunteer['id']}/redemptions", ADMIN_TOKEN).status_code == 404
    check_invariants(services)


@pytest.mark.backends("memory")
def test_guessing_codes_is_rate_limited_per_merchant(town: Town) -> None:
    api = town.api
    api.earn(town.volunteer, town.staff["token"], "fire")
    for guess in range(CODE_FAILURES_PER_WINDOW_MAX):
        response = redeem(api, town.barber, str(guess).zfill(20), 1)
        assert response.status_code == 409 and error_code(response) == "invalid_payment_code"
    code = code_for(api, town.volunteer)
    limited = redeem(api, town.barber, code, 1)
    assert limited.status_code == 429 and error_code(limited) == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 600  # the contract's 10-minute window
    assert redeem(api, town.canteen, code, 1).status_code == 201  # other merchants are not affected
    assert api.balances(town.barber["id"]) == {"bean": 0, "welfare": 0}


def test_a_till_scanning_a_used_code_again_is_refused_but_not_taken_for_guessing(town: Town) -> None:
    api = town.api
    api.earn(town.volunteer, town.staff["token"], "fire")
    used = code_for(api, town.volunteer)
    assert redeem(api, town.canteen, used, 1).status_code == 201
    for _ in range(CODE_FAILURES_PER_WINDOW_MAX + 2):  # the shopkeeper's phone keeps re-scanning the receipt
        again = redeem(api, town.canteen, used, 1)
        assert again.status_code == 409 and error_code(again) == "invalid_payment_code"
    assert redeem(api, town.canteen, code_for(api, town.volunteer), 1).status_code == 201


def test_the_failure_window_slides() -> None:
    now = [1000.0]
    store = memory_read_store()
    store.create_tables(TABLES)
    window = FailureWindow(store, "payment_code", failures_max=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        window.check("shop")
        window.record_failure("shop")
        now[0] += 10
    with pytest.raises(RateLimited) as refused:
        window.check("shop")
    assert refused.value.details["retry_after_seconds"] == 30
    window.check("another shop")
    now[0] = 1060.0  # the first failure has left the window
    window.check("shop")
    window.record_failure("shop")
    with pytest.raises(RateLimited):
        window.check("shop")


def test_the_failure_window_answers_for_a_whole_group_of_clients_at_once() -> None:
    """The writer asks once per group: every client over the limit, each with its own wait."""
    now = [1000.0]
    store = memory_read_store()
    store.create_tables(TABLES)
    window = FailureWindow(store, "payment_code", failures_max=2, window_seconds=100, clock=lambda: now[0])
    for client, failures in (("shop", 2), ("stall", 1), ("canteen", 3)):
        for _ in range(failures):
            window.record_failure(client)
            now[0] += 10
    refusals = window.refusals(["shop", "stall", "canteen", "barber", "shop"])
    assert sorted(refusals) == ["canteen", "shop"]
    assert now[0] == 1060 and refusals["shop"].details["retry_after_seconds"] == 1000 + 100 - 1060
    assert refusals["canteen"].details["retry_after_seconds"] == 1030 + 100 - 1060
    assert window.refusals([]) == {}
    other_scope = FailureWindow(store, "sign_in_code", failures_max=1, window_seconds=60, clock=lambda: now[0])
    assert other_scope.refusals(["shop", "canteen"]) == {}


def test_merchants_guessing_at_once_are_each_refused_once_over_the_limit(town: Town) -> None:
    """Concurrent redemptions are decided in groups, where the limit is asked once for the group:
    a merchant over it gets 429 on every request, another merchant in the same groups does not."""
    api = town.api
    api.earn(town.volunteer, town.staff["token"], "fire")
    for guess in range(CODE_FAILURES_PER_WINDOW_MAX):
        assert redeem(api, town.barber, str(guess).zfill(20), 1).status_code == 409
    codes = [code_for(api, town.volunteer) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        guessing = [pool.submit(redeem, api, town.barber, str(99 + i).zfill(20), 1) for i in range(8)]
        paying = [pool.submit(redeem, api, town.canteen, code, 1) for code in codes]
        refused = [future.result() for future in guessing]
        paid = [future.result() for future in paying]
    assert {(r.status_code, error_code(r)) for r in refused} == {(429, "rate_limited")}
    assert len({r.json()["error"]["message"] for r in refused}) == 1
    assert [r.status_code for r in paid] == [201] * 4


def test_malformed_input_never_gets_a_5xx(town: Town) -> None:
    api = town.api
    weird = ["\x00", "not-an-id", "1" * 100, "１２３", "' OR 1=1 --"]
    for value in weird:
        body = {"community_id": value, "period": this_period(), "amount_per_beneficiary": 5}
        assert api.call("POST", "/v1/welfare/allowances", town.staff["token"], body).status_code in (404, 422)
        response = api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": value, "amount": 1},
                            key=new_key())
        assert response.status_code in (409, 422) and response.status_code < 500
        assert api.call("GET", f"/v1/merchants/{town.canteen['id']}/redemptions?period={quote(value[:7])}",
                        town.canteen["token"]).status_code == 422
    unknown = api.call("POST", "/v1/welfare/allowances", town.staff["token"],
                       {"community_id": "00000000-0000-0000-0000-000000000000", "period": this_period(),
                        "amount_per_beneficiary": 5})
    assert unknown.status_code == 404 and error_code(unknown) == "not_found"
