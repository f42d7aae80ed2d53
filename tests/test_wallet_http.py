"""What the wallet and the till need from the API beyond the contract's fields, on every backend:
statement lines that say what they were for, and refusals a till can put into words (a used code
is "已使用", not "无效"; a card over its daily limit says how much is left)."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as utc_timezone
from typing import Any

import pytest

from domain.periods import period_of
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key

COMMUNITY_TIMEZONE = "Asia/Shanghai"
WELFARE_PER_MONTH = 50
CARD_DAILY_LIMIT = 20


def this_period() -> str:
    return period_of(datetime.now(utc_timezone.utc), COMMUNITY_TIMEZONE)


def code_for(api: Api, holder: dict[str, Any]) -> str:
    return api.ok("POST", f"/v1/accounts/{holder['id']}/payment-codes", holder["token"], status=201)["code"]


def redeem(api: Api, merchant: dict[str, Any], code: str, amount: int) -> Any:
    return api.call("POST", "/v1/redemptions", merchant["token"], {"payment_code": code, "amount": amount}, key=new_key())


def entries_of(api: Api, holder: dict[str, Any]) -> list[dict[str, Any]]:
    return api.ok("GET", f"/v1/accounts/{holder['id']}/entries", holder["token"])["items"]


class Street:
    """A community with staff, a canteen, a volunteer and a grandma who holds welfare credits."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.community = api.community()
        self.staff = api.staff(self.community["id"])
        self.canteen = api.account(self.community["id"], "merchant", "幸福食堂", merchant_categories=["meal"])
        self.volunteer = api.account(self.community["id"], "volunteer", "王师傅")
        self.grandma = api.account(self.community["id"], "beneficiary", "李奶奶")
        body = {"community_id": self.community["id"], "period": this_period(), "amount_per_beneficiary": WELFARE_PER_MONTH}
        api.ok("POST", "/v1/welfare/allowances", self.staff["token"], body, key=new_key(), status=201)


@pytest.fixture
def street(services) -> Any:
    with api_for(services, ADMIN_TOKEN) as api:
        yield Street(api)


def test_each_statement_line_says_what_it_was_for(street: Street, services) -> None:
    api = street.api
    api.earn(street.volunteer, street.staff["token"], "fire")
    api.earn(street.volunteer, street.staff["token"], "sanitation")
    api.ok("POST", "/v1/donations", street.volunteer["token"], {"to_account_id": street.grandma["id"], "amount": 3},
           key=new_key(), status=201)
    assert redeem(api, street.canteen, code_for(api, street.volunteer), 4).status_code == 201
    assert redeem(api, street.canteen, code_for(api, street.grandma), 12).status_code == 201

    volunteer_lines = [(e["type"], e["amount"], e["counterparty_name"], e["report_category"], e["period"])
                       for e in entries_of(api, street.volunteer)]
    assert volunteer_lines == [
        ("redemption", -4, "幸福食堂", None, None),
        ("donation", -3, "李奶奶", None, None),
        ("report_award", 2, None, "sanitation", None),
        ("report_award", 10, None, "fire", None),
    ]
    grandma_lines = [(e["type"], e["amount"], e["counterparty_name"], e["period"]) for e in entries_of(api, street.grandma)]
    assert grandma_lines == [
        ("redemption", -12, "幸福食堂", None),
        ("donation", 3, "王师傅", None),
        ("welfare_allowance", WELFARE_PER_MONTH, None, this_period()),
    ]
    # The shop's statement never names its customers.
    merchant_lines = entries_of(api, street.canteen)
    assert [e["amount"] for e in merchant_lines] == [12, 4]
    assert all(e["counterparty_name"] is None and e["counterparty_id"] for e in merchant_lines)
    check_invariants(services)


def test_a_reversal_and_a_dispatch_award_carry_their_reasons(street: Street) -> None:
    api = street.api
    report = api.ok("POST", "/v1/reports", street.volunteer["token"], {"category": "dispute", "description": "邻里纠纷"},
                    status=201)
    other = api.account(street.community["id"], "volunteer", "赵阿姨")
    api.ok("POST", f"/v1/reports/{report['id']}/dispatch", street.staff["token"], {"handler_ids": [other["id"]]})
    api.ok("POST", f"/v1/reports/{report['id']}/close", street.staff["token"], {"handler_awards": {other["id"]: 6}})
    sale = redeem(api, street.canteen, code_for(api, other), 5).json()
    api.ok("POST", f"/v1/redemptions/{sale['id']}/reverse", street.canteen["token"])

    lines = [(e["type"], e["amount"], e["counterparty_name"], e["report_category"]) for e in entries_of(api, other)]
    assert lines == [
        ("reversal", 5, "幸福食堂", None),
        ("redemption", -5, "幸福食堂", None),
        ("dispatch_award", 6, None, "dispute"),
    ]


def test_a_used_code_says_used_and_an_unknown_one_gives_no_reason(street: Street) -> None:
    api = street.api
    code = code_for(api, street.grandma)
    assert redeem(api, street.canteen, code, 5).status_code == 201
    again = redeem(api, street.canteen, code, 5)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_payment_code"
    assert again.json()["error"]["details"] == {"reason": "used"}

    never_issued = redeem(api, street.canteen, "1" * len(code), 5)
    assert never_issued.status_code == 409 and never_issued.json()["error"]["code"] == "invalid_payment_code"
    assert never_issued.json()["error"]["details"] == {}

    # Another community's shop learns nothing about this community's codes, used or not.
    elsewhere = api.community(name="别的社区")
    far_shop = api.account(elsewhere["id"], "merchant", "远方小卖部", merchant_categories=["grocery"])
    foreign = redeem(api, far_shop, code, 5)
    assert foreign.status_code == 409 and foreign.json()["error"]["details"] == {}


def test_a_replaced_card_says_so_and_a_card_over_its_limit_says_what_is_left(street: Street) -> None:
    api = street.api
    path = f"/v1/accounts/{street.grandma['id']}/cards"
    first = api.ok("POST", path, street.staff["token"], {"daily_limit": CARD_DAILY_LIMIT}, status=201)
    card = api.ok("POST", path, street.staff["token"], {"daily_limit": CARD_DAILY_LIMIT}, status=201)
    replaced = redeem(api, street.canteen, first["card_code"], 1)
    assert replaced.status_code == 409 and replaced.json()["error"]["details"] == {"reason": "replaced"}

    assert redeem(api, street.canteen, card["card_code"], 12).status_code == 201
    over = redeem(api, street.canteen, card["card_code"], 9)
    assert over.status_code == 409 and over.json()["error"]["code"] == "daily_limit_exceeded"
    assert over.json()["error"]["details"]["remaining"] == CARD_DAILY_LIMIT - 12

    api.ok("POST", f"/v1/accounts/{street.grandma['id']}/freeze", street.staff["token"], {"reason": "卡片遗失"})
    api.ok("POST", f"/v1/accounts/{street.grandma['id']}/unfreeze", street.staff["token"])
    dead = redeem(api, street.canteen, card["card_code"], 1)
    assert dead.status_code == 409 and dead.json()["error"]["details"] == {"reason": "frozen"}


def test_a_merchants_month_counts_kept_sales_and_the_expected_repayment_with_rebate(street: Street, services) -> None:
    api = street.api
    api.earn(street.volunteer, street.staff["token"], "fire")
    assert redeem(api, street.canteen, code_for(api, street.grandma), 13).status_code == 201
    assert redeem(api, street.canteen, code_for(api, street.volunteer), 2).status_code == 201
    kept_back = redeem(api, street.canteen, code_for(api, street.volunteer), 3).json()
    api.ok("POST", f"/v1/redemptions/{kept_back['id']}/reverse", street.canteen["token"])

    path = f"/v1/merchants/{street.canteen['id']}/months/{this_period()}"
    month = api.ok("GET", path, street.canteen["token"])
    redeemed = 13 + 2
    assert month == {
        "merchant_id": street.canteen["id"], "period": this_period(), "sales": 2, "reversed": 1,
        "redeemed": redeemed, "funded": {"welfare": 13, "bean": 2}, "rebate_rate_bps": 1000,
        "reimbursement_fen": redeemed * 100, "rebate_fen": 150, "total_fen": redeemed * 100 + 150,
    }
    assert api.ok("GET", path, street.staff["token"]) == month
    empty = api.ok("GET", f"/v1/merchants/{street.canteen['id']}/months/2001-01", street.canteen["token"])
    assert (empty["sales"], empty["redeemed"], empty["total_fen"]) == (0, 0, 0)

    other_shop = api.account(street.community["id"], "merchant", "老街理发", merchant_categories=["barber"])
    assert api.call("GET", path, other_shop["token"]).status_code == 403
    assert api.call("GET", path, street.volunteer["token"]).status_code == 403
    for bad in ("2026-13", "26-01", "x" * 50):
        refused = api.call("GET", f"/v1/merchants/{street.canteen['id']}/months/{bad}", street.canteen["token"])
        assert refused.status_code == 422 and refused.json()["error"]["details"]["field"] == "period"
    assert api.call("GET", f"/v1/merchants/{street.volunteer['id']}/months/{this_period()}", ADMIN_TOKEN).status_code == 404
