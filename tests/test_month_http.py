"""A month through the HTTP API, checked the way an outside client would: donations, sales,
reversals, two settlements, then every fen of the settlements and the public report against
arithmetic done here from the contract alone."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key

RATE_BPS = 1_250
SHANGHAI = ZoneInfo("Asia/Shanghai")
VOLUNTEER_NAME = "志愿者王小明"
BENEFICIARY_NAME = "受助人李奶奶"


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


class Month:
    """A community with people and merchants, and the arithmetic a client keeps for itself."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.community = api.community(rebate_rate_bps=RATE_BPS)
        cid = self.community["id"]
        self.staff = api.staff(cid)["token"]
        self.admin_1 = api.staff(cid, "admin")["token"]
        self.admin_2 = api.staff(cid, "admin")["token"]
        self.auditor = api.staff(cid, "auditor")["token"]
        self.volunteer = api.account(cid, "volunteer", VOLUNTEER_NAME)
        self.beneficiary = api.account(cid, "beneficiary", BENEFICIARY_NAME)
        self.canteen = api.account(cid, "merchant", "幸福食堂", merchant_categories=["meal"])
        self.hardware = api.account(cid, "merchant", "五金店")
        self.period = datetime.now(SHANGHAI).strftime("%Y-%m")
        self.today = datetime.now(SHANGHAI).date().isoformat()
        self.donated_fen = 0

    def donate(self, amount_fen: int, donor: str = "爱心企业 金沙建材") -> dict[str, Any]:
        body = {"community_id": self.community["id"], "donor": donor, "amount_fen": amount_fen,
                "received_on": self.today, "reference": f"BOC-{new_key()}"}
        donation = self.api.ok("POST", "/v1/fund/donations", self.staff, body, key=new_key(), status=201)
        self.donated_fen += amount_fen
        return donation

    def redeem(self, customer: dict[str, Any], merchant: dict[str, Any], amount: int) -> dict[str, Any]:
        code = self.api.ok("POST", f"/v1/accounts/{customer['id']}/payment-codes", customer["token"], status=201)
        body = {"payment_code": code["code"], "amount": amount}
        return self.api.ok("POST", "/v1/redemptions", merchant["token"], body, key=new_key(), status=201)

    def reverse(self, merchant: dict[str, Any], redemption: dict[str, Any]) -> Any:
        return self.api.call("POST", f"/v1/redemptions/{redemption['id']}/reverse", merchant["token"], key=new_key())

    def propose(self, token: str) -> Any:
        body = {"community_id": self.community["id"], "period": self.period}
        return self.api.call("POST", "/v1/settlements", token, body, key=new_key())

    def expected_lines(self, sales: list[dict[str, Any]]) -> list[dict[str, Any]]:
        redeemed: dict[str, int] = defaultdict(int)
        for sale in sales:
            redeemed[sale["merchant_id"]] += sale["funded"]["welfare"] + sale["funded"]["bean"]
        return [
            {"merchant_id": m, "redeemed": n, "reimbursement_fen": n * 100,
             "rebate_fen": half_up(Fraction(n * 100 * RATE_BPS, 10_000)),
             "total_fen": n * 100 + half_up(Fraction(n * 100 * RATE_BPS, 10_000))}
            for m, n in sorted(redeemed.items())
        ]


def contract_lines(settlement: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("merchant_id", "redeemed", "reimbursement_fen", "rebate_fen", "total_fen")
    return [{k: line[k] for k in keys} for line in settlement["lines"]]


def test_a_month_settles_to_the_fen_and_the_public_report_adds_up(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        api.earn(month.volunteer, month.staff, award=40)
        allowance = {"community_id": month.community["id"], "period": month.period, "amount_per_beneficiary": 30}
        api.ok("POST", "/v1/welfare/allowances", month.staff, allowance, key=new_key(), status=201)
        before_sales = datetime.now(timezone.utc)
        month.donate(50_000)
        month.donate(7_77)

        # Sales: welfare first at the canteen, beans at the hardware shop; one is reversed.
        first = [
            month.redeem(month.beneficiary, month.canteen, 7),
            month.redeem(month.volunteer, month.hardware, 3),
            month.redeem(month.volunteer, month.canteen, 5),
        ]
        reversed_sale = month.redeem(month.beneficiary, month.canteen, 2)
        assert month.reverse(month.canteen, reversed_sale).status_code == 200

        # Settlement 1, proposed by one admin: the proposer cannot approve it, another admin can.
        proposed = month.propose(month.admin_1)
        assert proposed.status_code == 201, proposed.text
        settlement_1 = proposed.json()
        assert settlement_1["status"] == "proposed" and settlement_1["period"] == month.period
        assert contract_lines(settlement_1) == month.expected_lines(first)
        assert settlement_1["total_fen"] == sum(line["total_fen"] for line in month.expected_lines(first))
        sid = settlement_1["id"]
        paying_early = api.call("POST", f"/v1/settlements/{sid}/pay", month.staff, {"bank_reference": "X"})
        assert paying_early.status_code == 409 and error_code(paying_early) == "invalid_state"
        same = api.call("POST", f"/v1/settlements/{sid}/approve", month.admin_1)
        assert same.status_code == 409 and error_code(same) == "same_person"
        assert api.call("POST", f"/v1/settlements/{sid}/approve", month.staff).status_code == 403
        assert api.ok("POST", f"/v1/settlements/{sid}/approve", month.admin_2)["status"] == "approved"
        twice = api.call("POST", f"/v1/settlements/{sid}/approve", ADMIN_TOKEN)
        assert twice.status_code == 409 and error_code(twice) == "invalid_state"

        # A claimed sale can no longer be reversed.
        refused = month.reverse(month.hardware, first[1])
        assert refused.status_code == 409 and error_code(refused) == "already_settled"

        key = new_key()
        paid = api.ok("POST", f"/v1/settlements/{sid}/pay", month.staff, {"bank_reference": "BOC-20250630-01"}, key=key)
        assert paid["status"] == "paid"
        replay = api.call("POST", f"/v1/settlements/{sid}/pay", month.staff, {"bank_reference": "BOC-20250630-01"}, key=key)
        assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true" and replay.json() == paid
        again = api.call("POST", f"/v1/settlements/{sid}/pay", month.staff, {"bank_reference": "BOC-2"}, key=new_key())
        assert again.status_code == 409 and error_code(again) == "invalid_state"
        assert api.balances(month.hardware["id"]) == {"bean": 0, "welfare": 0}  # retired

        # Settlement 2 takes only what came after the first.
        nothing = month.propose(month.staff)
        assert nothing.status_code == 409 and error_code(nothing) == "invalid_state"
        second = [month.redeem(month.volunteer, month.hardware, 9), month.redeem(month.beneficiary, month.canteen, 4)]
        settlement_2 = month.propose(month.staff).json()
        assert contract_lines(settlement_2) == month.expected_lines(second)
        api.ok("POST", f"/v1/settlements/{settlement_2['id']}/approve", month.admin_1)
        api.ok("POST", f"/v1/settlements/{settlement_2['id']}/pay", month.staff, {"bank_reference": "BOC-2"}, key=new_key())
        got = api.ok("GET", f"/v1/settlements/{settlement_2['id']}", month.auditor)
        assert got["status"] == "paid" and got["bank_reference"] == "BOC-2"
        unsettled = month.redeem(month.volunteer, month.canteen, 6)  # still at the merchant, still owed

        report = api.ok("GET", f"/v1/public/communities/{month.community['id']}/fund-reports/{month.period}")
        check_report(api, month, report, [settlement_1, settlement_2], unsettled)
        check_csv_and_html(api, month, report)

        # Point in time: before the sales, the volunteer held all 40 beans and the fund nothing.
        as_of = before_sales.isoformat()
        then = api.client.get(
            f"/v1/accounts/{month.volunteer['id']}", params={"as_of": as_of},
            headers={"Authorization": f"Bearer {month.staff}"},
        ).json()
        assert then["balances"] == {"bean": 40, "welfare": 0} and then["as_of"].endswith("+08:00")
        fund_then = api.client.get(
            f"/v1/fund/communities/{month.community['id']}/balance", params={"as_of": as_of},
            headers={"Authorization": f"Bearer {month.auditor}"},
        ).json()
        assert fund_then["balance_fen"] == 0 and fund_then["beans_outstanding"] == 40
        assert fund_then["welfare_outstanding"] == 30
        report_then = api.client.get(
            f"/v1/public/communities/{month.community['id']}/fund-reports/{month.period}", params={"as_of": as_of}
        ).json()
        assert (report_then["donations_fen"], report_then["merchants"], report_then["beans_outstanding"]) == (0, [], 40)
        assert report_then["events_count"] == fund_then["events_count"] < report["events_count"]
        assert report_then["chain_head"] == fund_then["chain_head"] != report["chain_head"]
        fund_now = api.ok("GET", f"/v1/fund/communities/{month.community['id']}/balance", month.auditor)
        assert fund_now["balance_fen"] == report["closing_balance_fen"]
    check_invariants(services)


def check_report(api: Api, month: Month, report: dict[str, Any], settlements: list[dict[str, Any]],
                 unsettled: dict[str, Any]) -> None:
    assert set(report) == {
        "period", "opening_balance_fen", "donations_fen", "reimbursements_fen", "rebates_fen", "closing_balance_fen",
        "beans_outstanding", "welfare_outstanding", "liability_fen", "coverage_ratio", "merchants", "chain_head",
        "events_count", "tree_head",  # v1.1: the signed head of the transparency log at the cut-off
        "wishes_fulfilled",
    }
    assert report["wishes_fulfilled"] == 0
    lines = [line for s in settlements for line in s["lines"]]
    reimbursements = sum(line["reimbursement_fen"] for line in lines)
    rebates = sum(line["rebate_fen"] for line in lines)
    assert report["period"] == month.period and report["opening_balance_fen"] == 0
    assert report["donations_fen"] == month.donated_fen == 50_777
    assert report["reimbursements_fen"] == reimbursements and report["rebates_fen"] == rebates
    assert report["closing_balance_fen"] == month.donated_fen - reimbursements - rebates
    holders = [month.volunteer, month.beneficiary, month.canteen, month.hardware]
    held = [api.balances(h["id"]) for h in holders]
    assert report["beans_outstanding"] == sum(b["bean"] for b in held)
    assert report["welfare_outstanding"] == sum(b["welfare"] for b in held)
    assert api.balances(month.canteen["id"]) == unsettled["funded"]  # only the unsettled sale remains
    outstanding = report["beans_outstanding"] + report["welfare_outstanding"]
    assert report["liability_fen"] == half_up(Fraction(outstanding * 100 * (10_000 + RATE_BPS), 10_000))
    assert report["coverage_ratio"] == pytest.approx(report["closing_balance_fen"] / report["liability_fen"])
    by_merchant: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in lines:
        totals = by_merchant[line["merchant_id"]]
        totals[0] += line["redeemed"]
        totals[1] += line["reimbursement_fen"]
        totals[2] += line["rebate_fen"]
    assert {m["merchant_id"]: [m["redeemed"], m["reimbursement_fen"], m["rebate_fen"]] for m in report["merchants"]} == by_merchant
    assert {m["display_name"] for m in report["merchants"]} == {"幸福食堂", "五金店"}
    chain = api.ok("GET", "/v1/audit/chain", month.auditor)
    assert (report["chain_head"], report["events_count"]) == (chain["head"], chain["events_count"])


def check_csv_and_html(api: Api, month: Month, report: dict[str, Any]) -> None:
    path = f"/v1/public/communities/{month.community['id']}/fund-reports/{month.period}"
    as_csv = api.call("GET", path + ".csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    summary, merchants = as_csv.text.split("\n\n")
    fields = dict(list(csv.reader(io.StringIO(summary)))[1:])
    assert int(fields["closing_balance_fen"]) == report["closing_balance_fen"]
    assert fields["chain_head"] == report["chain_head"] and float(fields["coverage_ratio"]) == report["coverage_ratio"]
    rows = list(csv.DictReader(io.StringIO(merchants)))
    assert [(r["merchant_id"], int(r["rebate_fen"])) for r in rows] == [
        (m["merchant_id"], m["rebate_fen"]) for m in report["merchants"]
    ]
    page = api.call("GET", path + ".html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "金豆基金公示" in page.text and report["chain_head"] in page.text and "<svg" in page.text
    assert "lang=en" in page.text and "http" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    english = api.call("GET", path + ".html", params={"lang": "en"})
    assert "Golden Bean Fund report" in english.text
    for text in (as_csv.text, page.text, english.text, str(report)):
        assert VOLUNTEER_NAME not in text and BENEFICIARY_NAME not in text


def test_fund_donations_validate_and_replay(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        body = {"community_id": month.community["id"], "donor": "金沙商会", "amount_fen": 12_345,
                "received_on": month.today, "reference": "ICBC-778"}
        key = new_key()
        donation = api.ok("POST", "/v1/fund/donations", month.staff, body, key=key, status=201)
        assert {k: donation[k] for k in body} == body and donation["id"]
        replay = api.call("POST", "/v1/fund/donations", month.staff, body, key=key)
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == donation
        conflict = api.call("POST", "/v1/fund/donations", month.staff, body | {"amount_fen": 1}, key=key)
        assert conflict.status_code == 409 and error_code(conflict) == "idempotency_conflict"
        tomorrow = (datetime.now(SHANGHAI).date() + timedelta(days=1)).isoformat()
        for bad in ({"amount_fen": 0}, {"amount_fen": -5}, {"amount_fen": 1.5}, {"received_on": tomorrow},
                    {"received_on": "2025-13-01"}, {"donor": ""}, {"community_id": "nope"}):
            response = api.call("POST", "/v1/fund/donations", month.staff, body | bad)
            assert response.status_code in (404, 422), (bad, response.text)
        forbidden = api.call("POST", "/v1/fund/donations", month.volunteer["token"], body)
        assert forbidden.status_code == 403
        report = api.ok("GET", f"/v1/public/communities/{month.community['id']}/fund-reports/{month.period}")
        assert report["donations_fen"] == 12_345 and report["coverage_ratio"] is None and report["merchants"] == []


def test_a_late_entered_donation_counts_in_the_month_it_was_received(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        last_month_day = datetime.now(SHANGHAI).date().replace(day=1) - timedelta(days=1)
        body = {"community_id": month.community["id"], "donor": "退休教师协会", "amount_fen": 30_000,
                "received_on": last_month_day.isoformat(), "reference": "cheque 0042"}
        api.ok("POST", "/v1/fund/donations", month.staff, body, status=201)
        month.donate(1_000)
        base = f"/v1/public/communities/{month.community['id']}/fund-reports"
        earlier = api.ok("GET", f"{base}/{last_month_day.strftime('%Y-%m')}")
        assert (earlier["donations_fen"], earlier["closing_balance_fen"]) == (30_000, 30_000)
        current = api.ok("GET", f"{base}/{month.period}")
        assert (current["opening_balance_fen"], current["donations_fen"], current["closing_balance_fen"]) == (
            30_000, 1_000, 31_000)
        assert earlier["events_count"] < current["events_count"]


def test_paying_needs_the_cash_in_the_fund(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        api.earn(month.volunteer, month.staff, award=20)
        month.redeem(month.volunteer, month.hardware, 20)
        settlement = month.propose(month.staff).json()
        api.ok("POST", f"/v1/settlements/{settlement['id']}/approve", month.admin_1)
        month.donate(settlement["total_fen"] - 1)
        short = api.call("POST", f"/v1/settlements/{settlement['id']}/pay", month.staff, {"bank_reference": "B-1"})
        assert short.status_code == 409 and error_code(short) == "insufficient_funds"
        month.donate(1)
        api.ok("POST", f"/v1/settlements/{settlement['id']}/pay", month.staff, {"bank_reference": "B-1"})
        fund = api.ok("GET", f"/v1/fund/communities/{month.community['id']}/balance", month.staff)
        assert fund["balance_fen"] == 0 and fund["paid_out_fen"] == settlement["total_fen"]
    check_invariants(services)


def test_a_settlement_rejected_before_payment_frees_its_sales(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        api.earn(month.volunteer, month.staff, award=20)
        sale = month.redeem(month.volunteer, month.hardware, 20)
        settlement = month.propose(month.staff).json()
        path = f"/v1/settlements/{settlement['id']}"
        assert api.call("POST", path + "/reject", month.staff, {"reason": "x"}).status_code == 403
        refused = api.call("POST", path + "/reject", month.admin_1, {"reason": ""})
        assert refused.status_code == 422
        rejected = api.ok("POST", path + "/reject", month.admin_1, {"reason": "金额有误，重新核对"})
        assert rejected["status"] == "rejected" and api.ok("GET", path, month.auditor)["status"] == "rejected"
        again = api.call("POST", path + "/approve", month.admin_2)
        assert again.status_code == 409 and error_code(again) == "invalid_state"
        reversed_sale = api.ok("POST", f"/v1/redemptions/{sale['id']}/reverse", month.hardware["token"])
        assert reversed_sale["status"] == "reversed"
    check_invariants(services)


def test_a_proposal_retried_under_its_key_is_the_same_request_though_more_sales_wait(services) -> None:
    """The route reads the waiting sales from the read model; they are not what the client sent,
    so a retry after another sale replays the first answer, and another period under the key is
    a conflict."""
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        api.earn(month.volunteer, month.staff, award=20)
        first_sale = month.redeem(month.volunteer, month.hardware, 3)
        body, key = {"community_id": month.community["id"], "period": month.period}, new_key()
        proposed = api.ok("POST", "/v1/settlements", month.staff, body, key=key, status=201)
        month.redeem(month.volunteer, month.canteen, 4)
        replay = api.call("POST", "/v1/settlements", month.staff, body, key=key)
        assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json() == proposed and proposed["redemption_ids"] == [first_sale["id"]]
        other = api.call("POST", "/v1/settlements", month.staff, body | {"period": "2020-01"}, key=key)
        assert other.status_code == 409 and error_code(other) == "idempotency_conflict"


def test_reports_and_points_in_time_refuse_what_they_cannot_answer(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        month = Month(api)
        base = f"/v1/public/communities/{month.community['id']}/fund-reports"
        next_year = f"{int(month.period[:4]) + 1}{month.period[4:]}"
        assert api.call("GET", f"{base}/{next_year}").status_code == 404
        assert api.call("GET", f"{base}/2025-13").status_code == 422
        assert api.call("GET", f"{base}/2025-13.csv").status_code == 422
        for edge in ("0000-01", "0001-01", "1999-12", "9999-12"):
            assert api.call("GET", f"{base}/{edge}.html").status_code == 422
        assert api.call("GET", f"/v1/public/communities/nope/fund-reports/{month.period}").status_code == 404
        for bad in ("yesterday", "2025-06-01T00:00:00", "0001-01-01T00:00:00+01:00", "x" * 65):
            response = api.client.get(f"/v1/accounts/{month.volunteer['id']}", params={"as_of": bad},
                                      headers={"Authorization": f"Bearer {month.staff}"})
            assert response.status_code == 422, (bad, response.text)
            assert api.client.get(base + f"/{month.period}", params={"as_of": bad}).status_code == 422
        unencoded = api.call("GET", f"{base}/{month.period}?as_of=2100-01-01T00:00:00+08:00")
        assert unencoded.status_code == 200
        assert api.call("GET", f"/v1/fund/communities/{month.community['id']}/balance", month.volunteer["token"]).status_code == 403
        other = api.community()
        other_staff = api.staff(other["id"])["token"]
        assert api.call("GET", f"/v1/fund/communities/{month.community['id']}/balance", other_staff).status_code == 403
