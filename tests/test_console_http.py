"""What the staff console reads besides the contract's endpoints: who a token belongs to
(GET /v1/me), a welfare run's dry run (POST /v1/welfare/allowances/preview) and the month's
dashboard (GET /v1/communities/{id}/dashboard), on every backend."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from infra.wiring import memory_read_store
from projections import dashboard
from projections.projector import Projector
from projections.registry import all_projections
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
WELFARE_PER_MONTH = 40


def this_month() -> str:
    return datetime.now(timezone.utc).astimezone(SHANGHAI).strftime("%Y-%m")


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def test_me_names_the_role_community_and_id_of_any_token(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        staff = api.staff(community["id"], "admin")
        volunteer = api.account(community["id"], "volunteer", "王师傅")
        me = api.ok("GET", "/v1/me", staff["token"])
        assert me["kind"] == "staff" and me["role"] == "admin"
        assert me["staff_id"] == staff["id"] and me["community_id"] == community["id"]
        assert me["display_name"].startswith("admin-")
        deployment = api.ok("GET", "/v1/me", ADMIN_TOKEN)
        assert deployment["kind"] == "staff" and deployment["role"] == "admin" and deployment["community_id"] is None
        holder = api.ok("GET", "/v1/me", volunteer["token"])
        assert holder == {"kind": "volunteer", "role": "volunteer", "account_id": volunteer["id"],
                          "community_id": community["id"], "display_name": "王师傅"}
        assert api.call("GET", "/v1/me").status_code == 401
        assert api.call("GET", "/v1/me", "not-a-token").status_code == 401


def test_a_welfare_preview_says_who_gets_what_and_who_is_skipped_and_records_nothing(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        staff = api.staff(community["id"])
        first, second = (api.account(community["id"], "beneficiary") for _ in range(2))
        body = {"community_id": community["id"], "period": this_month(), "amount_per_beneficiary": WELFARE_PER_MONTH}
        api.ok("POST", "/v1/welfare/allowances", staff["token"], {**body, "beneficiary_ids": [first["id"]]},
               key=new_key(), status=201)
        services.projector.catch_up()
        events_before = services.projector.head()

        preview = api.ok("POST", "/v1/welfare/allowances/preview", staff["token"], body, status=200)
        assert preview["issued"] == [{"account_id": second["id"], "amount": WELFARE_PER_MONTH}]
        assert preview["skipped"] == [{"account_id": first["id"], "amount": WELFARE_PER_MONTH}]
        assert preview["total"] == WELFARE_PER_MONTH and preview["period"] == this_month()
        assert services.projector.head() == events_before  # a dry run records nothing
        assert api.balances(second["id"]) == {"bean": 0, "welfare": 0}

        run = api.ok("POST", "/v1/welfare/allowances", staff["token"], body, key=new_key(), status=201)
        assert run["issued"] == preview["issued"] and run["skipped"] == preview["skipped"]
        again = api.ok("POST", "/v1/welfare/allowances/preview", staff["token"], body, status=200)
        assert again["issued"] == [] and again["total"] == 0 and len(again["skipped"]) == 2
        check_invariants(services)


def test_a_welfare_preview_refuses_as_the_run_does(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        community, other = api.community(), api.community()
        staff = api.staff(community["id"])
        volunteer = api.account(community["id"], "volunteer")
        body = {"community_id": community["id"], "period": this_month(), "amount_per_beneficiary": 10}
        path = "/v1/welfare/allowances/preview"
        assert api.call("POST", path, None, body).status_code == 401
        assert api.call("POST", path, volunteer["token"], body).status_code == 403
        assert api.call("POST", path, staff["token"], {**body, "community_id": other["id"]}).status_code == 403
        assert api.call("POST", path, staff["token"], {**body, "community_id": "nope"}).status_code == 404
        for wrong in ({"period": "2025-13"}, {"amount_per_beneficiary": 0}, {"beneficiary_ids": [volunteer["id"]]}):
            response = api.call("POST", path, staff["token"], {**body, **wrong})
            assert response.status_code == 422 and error_code(response) == "validation_error", wrong


def month_of_activity(api: Api, services) -> dict[str, Any]:
    """Three reports (verified, rejected, dispatched and closed), beans donated, welfare issued,
    sales at two shops (one reversed)."""
    community = api.community()
    staff = api.staff(community["id"])
    volunteer = api.account(community["id"], "volunteer", "王师傅")
    helper = api.account(community["id"], "volunteer", "小李")
    idle = api.account(community["id"], "volunteer", "没来的人")
    grandma = api.account(community["id"], "beneficiary", "李奶奶")
    grocer = api.account(community["id"], "merchant", "老王杂货店", merchant_categories=["grocery"])
    barber = api.account(community["id"], "merchant", "张师傅理发", merchant_categories=["haircut"])
    api.earn(volunteer, staff["token"], "fire")  # 10 beans
    rejected = api.ok("POST", "/v1/reports", volunteer["token"], {"category": "dispute", "description": "吵架"}, status=201)
    api.ok("POST", f"/v1/reports/{rejected['id']}/reject", staff["token"], {"reason": "重复上报"}, key=new_key())
    handled = api.ok("POST", "/v1/reports", volunteer["token"], {"category": "fire", "description": "电动车起火"}, status=201)
    api.ok("POST", f"/v1/reports/{handled['id']}/dispatch", staff["token"], {"handler_ids": [helper["id"]]}, key=new_key())
    api.ok("POST", f"/v1/reports/{handled['id']}/close", staff["token"], {"handler_awards": {helper["id"]: 6}}, key=new_key())
    api.ok("POST", "/v1/donations", volunteer["token"], {"to_account_id": grandma["id"], "amount": 3}, key=new_key(), status=201)
    api.ok("POST", "/v1/welfare/allowances", staff["token"], {
        "community_id": community["id"], "period": this_month(), "amount_per_beneficiary": WELFARE_PER_MONTH,
    }, key=new_key(), status=201)

    def sale(customer: dict[str, Any], merchant: dict[str, Any], amount: int) -> dict[str, Any]:
        code = api.ok("POST", f"/v1/accounts/{customer['id']}/payment-codes", customer["token"], status=201)["code"]
        return api.ok("POST", "/v1/redemptions", merchant["token"], {"payment_code": code, "amount": amount},
                      key=new_key(), status=201)

    sale(grandma, grocer, 42)  # 40 welfare + 2 beans
    sale(volunteer, barber, 4)
    reversed_sale = sale(helper, barber, 5)
    api.ok("POST", f"/v1/redemptions/{reversed_sale['id']}/reverse", barber["token"], key=new_key())
    return {"community": community, "staff": staff, "volunteer": volunteer, "helper": helper, "idle": idle,
            "grocer": grocer, "barber": barber}


def test_the_dashboard_adds_up_the_month(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = month_of_activity(api, services)
        community = month["community"]
        board = api.ok("GET", f"/v1/communities/{community['id']}/dashboard?period={this_month()}", month["staff"]["token"])
        assert board["community_id"] == community["id"] and board["period"] == this_month()
        assert board["reports"] == {"by_category": {"fire": {"verified": 1, "closed": 1}, "dispute": {"rejected": 1}},
                                    "total": 3}
        assert board["beans"] == {"minted": 10 + 6, "redeemed": 2 + 4, "donated": 3}
        assert board["welfare"] == {"issued": WELFARE_PER_MONTH, "redeemed": WELFARE_PER_MONTH}
        assert board["sales"] == 2
        assert board["active_volunteers"] == 2  # the reporter and the handler; the idle one is not
        assert board["top_merchants"] == [
            {"merchant_id": month["grocer"]["id"], "display_name": "老王杂货店", "sales": 1, "redeemed": 42},
            {"merchant_id": month["barber"]["id"], "display_name": "张师傅理发", "sales": 1, "redeemed": 4},
        ]
        # Without a period: this month. An auditor reads it too; another month is empty.
        auditor = api.staff(community["id"], "auditor")
        assert api.ok("GET", f"/v1/communities/{community['id']}/dashboard", auditor["token"]) == board
        empty = api.ok("GET", f"/v1/communities/{community['id']}/dashboard?period=2001-01", ADMIN_TOKEN)
        assert empty["reports"] == {"by_category": {}, "total": 0} and empty["top_merchants"] == []
        assert empty["beans"] == {"minted": 0, "redeemed": 0, "donated": 0} and empty["active_volunteers"] == 0

        # The read model rebuilt from event 1 says the same.
        scratch = Projector(services.app, memory_read_store(), all_projections())
        scratch.create_tables()
        scratch.catch_up()
        with scratch.store.read() as cursor:
            assert {"community_id": community["id"]} | dashboard.month(cursor, community["id"], this_month()) == board
        scratch.store.close()
        check_invariants(services)


def test_the_dashboard_is_scoped_and_refuses_bad_input(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        community, other = api.community(), api.community()
        staff = api.staff(community["id"])
        volunteer = api.account(community["id"], "volunteer")
        path = f"/v1/communities/{community['id']}/dashboard"
        assert api.call("GET", path).status_code == 401
        assert api.call("GET", path, volunteer["token"]).status_code == 403
        assert api.call("GET", f"/v1/communities/{other['id']}/dashboard", staff["token"]).status_code == 403
        assert api.call("GET", "/v1/communities/nope/dashboard", staff["token"]).status_code == 404
        for period in ("2025-13", "25-01", "x" * 8, "1999-12"):
            response = api.call("GET", f"{path}?period={period}", staff["token"])
            assert response.status_code == 422 and error_code(response) == "validation_error", period
