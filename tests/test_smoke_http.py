"""One narrative through the HTTP API on every backend: a fire report, a donation, a refusal."""

from __future__ import annotations

from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, check_invariants, new_key


def test_fire_report_earns_ten_beans_and_donation_moves_them(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        staff = api.staff(community["id"])
        volunteer = api.account(community["id"], "volunteer", "金豆哥 王师傅")
        grandma = api.account(community["id"], "beneficiary", "李奶奶")

        verified = api.earn(volunteer, staff["token"], "fire")
        assert verified["status"] == "verified" and verified["award"] == 10
        balances = api.balances(volunteer["id"], volunteer["token"])
        assert balances == {"bean": 10, "welfare": 0}

        key = new_key()
        donation = api.ok("POST", "/v1/donations", volunteer["token"], {"to_account_id": grandma["id"], "amount": 4}, key=key, status=201)
        assert donation["amount"] == 4
        again = api.call("POST", "/v1/donations", volunteer["token"], {"to_account_id": grandma["id"], "amount": 4}, key=key)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.json() == donation
        conflict = api.call("POST", "/v1/donations", volunteer["token"], {"to_account_id": grandma["id"], "amount": 5}, key=key)
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"

        too_much = api.call("POST", "/v1/donations", volunteer["token"], {"to_account_id": grandma["id"], "amount": 7})
        assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "insufficient_funds"

        assert api.balances(volunteer["id"]) == {"bean": 6, "welfare": 0}
        assert api.balances(grandma["id"]) == {"bean": 4, "welfare": 0}
        entries = api.ok("GET", f"/v1/accounts/{volunteer['id']}/entries", volunteer["token"])["items"]
        assert [(e["type"], e["amount"], e["balance_after"]) for e in entries] == [("donation", -4, 6), ("report_award", 10, 10)]
        assert entries[0]["counterparty_id"] == grandma["id"]
        assert entries[0]["occurred_at"].endswith("+08:00")
    check_invariants(services)
