"""Public fund reports as a reader meets them: an index of months, each month's page with its
neighbours, 404s outside the community's months (JSON for the API, a Chinese page for `.html`),
the running-month mark, and a CSV a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from api.fund_report_formats import SUMMARY_FIELDS, ReportPlace, to_csv, to_html
from api.spreadsheet import UTF8_BOM, cell, csv_document
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, new_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOSTILE_MERCHANT = '=HYPERLINK("http://x")'
HTML_LINK = re.compile(r'href="([^"]+)"')


def _months_ago(count: int) -> tuple[str, str]:
    """A day in the month `count` months before this one, and that month."""
    day = datetime.now(SHANGHAI).date().replace(day=1)
    for _ in range(count):
        day = (day - timedelta(days=1)).replace(day=1)
    return day.isoformat(), day.strftime("%Y-%m")


def _shift(period: str, months: int) -> str:
    year, month = divmod(int(period[:4]) * 12 + int(period[5:]) - 1 + months, 12)
    return f"{year:04d}-{month + 1:02d}"


def _paid_month(api: Api) -> dict[str, Any]:
    """A community whose hostile-named merchant was paid this month, with a cheque received two
    months ago and entered late (so the community's first report month is two months back)."""
    community = api.community(name="金沙社区")
    cid = community["id"]
    staff, admin = api.staff(cid)["token"], api.staff(cid, "admin")["token"]
    volunteer = api.account(cid, "volunteer", "志愿者王小明")
    merchant = api.account(cid, "merchant", HOSTILE_MERCHANT)
    received_on, first_period = _months_ago(2)
    api.ok("POST", "/v1/fund/donations", staff, {"community_id": cid, "donor": "退休教师协会", "amount_fen": 100_000,
                                                 "received_on": received_on, "reference": "cheque 0042"}, key=new_key())
    api.earn(volunteer, staff, award=30)
    code = api.ok("POST", f"/v1/accounts/{volunteer['id']}/payment-codes", volunteer["token"], status=201)["code"]
    api.ok("POST", "/v1/redemptions", merchant["token"], {"payment_code": code, "amount": 12}, key=new_key())
    this_period = datetime.now(SHANGHAI).strftime("%Y-%m")
    settlement = api.ok("POST", "/v1/settlements", staff, {"community_id": cid, "period": this_period}, key=new_key())
    api.ok("POST", f"/v1/settlements/{settlement['id']}/approve", admin)
    api.ok("POST", f"/v1/settlements/{settlement['id']}/pay", staff, {"bank_reference": "BOC-1"}, key=new_key())
    base = f"/v1/public/communities/{cid}/fund-reports"
    return {"id": cid, "base": base, "first": first_period, "this": this_period, "volunteer": volunteer}


def test_the_index_lists_every_month_from_the_first_to_the_current_one(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _paid_month(api)
        index = api.ok("GET", world["base"])
        periods = [item["period"] for item in index["items"]]
        assert periods == [world["this"], _shift(world["this"], -1), world["first"]]  # newest first
        assert index["name"] == "金沙社区" and index["community_id"] == world["id"]
        assert [item["running"] for item in index["items"]] == [True, False, False]
        for item in index["items"]:
            assert item["url"] == f"{world['base']}/{item['period']}"
            assert api.ok("GET", item["url"])["period"] == item["period"]
            assert api.call("GET", item["csv_url"]).status_code == 200
            assert api.call("GET", item["html_url"]).status_code == 200
        page = api.call("GET", world["base"] + ".html")
        assert page.status_code == 200 and "基金公示 · 全部月份" in page.text and "金沙社区" in page.text
        links = HTML_LINK.findall(page.text)
        for period in periods:
            assert f"{world['base']}/{period}.html?lang=zh" in links
        assert "本月（未结束）" in page.text
        assert "Fund reports · all months" in api.call("GET", world["base"] + ".html", params={"lang": "en"}).text
        assert api.call("GET", "/v1/public/communities/nope/fund-reports").status_code == 404


def test_months_outside_the_community_are_404_json_for_the_api_and_a_chinese_page_for_people(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _paid_month(api)
        for period in (_shift(world["first"], -1), _shift(world["this"], 1), "2000-01"):
            for suffix in ("", ".csv"):
                response = api.call("GET", f"{world['base']}/{period}{suffix}")
                assert response.status_code == 404, (period, suffix)
                assert response.json()["error"]["code"] == "not_found"
            page = api.call("GET", f"{world['base']}/{period}.html")
            assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
            assert "没有这个月份的公示" in page.text and f'href="{world["base"]}.html?lang=zh"' in page.text
            english = api.call("GET", f"{world['base']}/{period}.html", params={"lang": "en"})
            assert english.status_code == 404 and "No report for this month" in english.text
        unknown = api.call("GET", f"/v1/public/communities/nope/fund-reports/{world['this']}.html")
        assert unknown.status_code == 404 and "没有找到这个社区" in unknown.text
        malformed = api.call("GET", f"{world['base']}/2025-13.html")
        assert malformed.status_code == 422 and "地址有误" in malformed.text
        assert api.call("GET", f"{world['base']}/2025-13").json()["error"]["code"] == "validation_error"


def test_pages_link_their_neighbours_and_mark_the_running_month(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _paid_month(api)
        base, first, this = world["base"], world["first"], world["this"]
        middle = _shift(this, -1)

        current = api.call("GET", f"{base}/{this}.html").text
        assert f'href="{base}/{middle}.html?lang=zh" rel="prev"' in current
        assert 'rel="next"' not in current and f'href="{base}.html?lang=zh" rel="index"' in current
        running = re.search(r"截至 (\d{4}-\d{2}-\d{2} \d{2}:\d{2})（本月未结束）", current)
        assert running, current
        shown = datetime.strptime(running.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
        assert abs(datetime.now(SHANGHAI) - shown) < timedelta(minutes=2)

        oldest = api.call("GET", f"{base}/{first}.html").text
        assert 'rel="prev"' not in oldest and f'href="{base}/{middle}.html?lang=zh" rel="next"' in oldest
        assert "本月未结束" not in oldest
        between = api.call("GET", f"{base}/{middle}.html", params={"lang": "en"}).text
        assert f'href="{base}/{first}.html?lang=en" rel="prev"' in between
        assert f'href="{base}/{this}.html?lang=en" rel="next"' in between

        # As the books stood in the middle of last month, that month was still running then.
        as_of = f"{middle}-15T12:00:00+08:00"
        then = api.call("GET", f"{base}/{middle}.html", params={"as_of": as_of}).text
        assert "截至 " + f"{middle}-15 12:00（本月未结束）" in then and 'rel="next"' not in then
        for page in (current, oldest, between):
            assert "资金覆盖率 = 期末余额 ÷ 待兑付负债" in page or "Coverage = closing balance" in page
            assert "jindou audit verify --published" in page
            assert world["volunteer"]["display_name"] not in page


def test_the_csv_opens_in_spreadsheets_in_two_sections_with_formulas_neutralised(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _paid_month(api)
        report = api.ok("GET", f"{world['base']}/{world['this']}")
        response = api.call("GET", f"{world['base']}/{world['this']}.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(UTF8_BOM.encode("utf-8"))
    text = response.content.decode("utf-8-sig")
    summary_block, merchants_block = text.split("\n\n")
    summary = list(csv.reader(io.StringIO(summary_block)))
    assert summary[0] == ["field", "value"] and [row[0] for row in summary[1:1 + len(SUMMARY_FIELDS)]] == list(SUMMARY_FIELDS)
    fields = dict(summary[1:])
    assert int(fields["reimbursements_fen"]) == report["reimbursements_fen"] == 1_200
    merchants = list(csv.reader(io.StringIO(merchants_block)))
    assert merchants[0] == ["merchant_id", "display_name", "redeemed", "reimbursement_fen", "rebate_fen"]
    assert merchants[1][1] == "'" + HOSTILE_MERCHANT and report["merchants"][0]["display_name"] == HOSTILE_MERCHANT
    assert merchants[1][2:] == ["12", "1200", "120"]
    for row in summary + merchants:
        for value in row:
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value
            assert not value.startswith("-") or re.fullmatch(r"-\d+", value), value


def test_every_csv_cell_is_neutralised_but_numbers_stay_numbers() -> None:
    for hostile in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert cell(hostile) == "'" + hostile
    assert (cell(-500), cell(0), cell(0.25), cell(None), cell("金豆"), cell("a=b")) == (-500, 0, 0.25, "", "金豆", "a=b")
    document = csv_document((("name", "amount_fen"), [("-5", -5), ("=x", 7)]), (("k",), []))
    assert document == UTF8_BOM + "name,amount_fen\n'-5,-5\n'=x,7\n\nk\n"


def test_the_landing_page_leads_to_every_page_and_every_community_report_without_naming_people(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _paid_month(api)
        other = api.community(name="金星社区")
        page = api.call("GET", "/")
        english = api.call("GET", "/", params={"lang": "en"}).text
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text and "金豆 · 社区积分" in page.text
    links = HTML_LINK.findall(page.text)
    for path in ("/wallet", "/merchant", "/staff", "/docs", "/?lang=en"):
        assert path in links, path
    for community_id in (world["id"], other["id"]):
        assert f"/v1/public/communities/{community_id}/fund-reports.html?lang=zh" in links
        assert f"/v1/public/communities/{community_id}/fund-reports/{world['this']}.html?lang=zh" in links
    assert "金沙社区" in page.text and "金星社区" in page.text
    assert world["volunteer"]["display_name"] not in page.text and HOSTILE_MERCHANT not in page.text
    assert all(link.startswith(("/", "data:")) for link in links), links
    assert "Jindou · community points" in english and "Merchant till" in english


def test_a_signed_tree_head_is_shown_and_kept_whole_when_a_report_carries_one() -> None:
    report = {field: 0 for field in SUMMARY_FIELDS} | {"period": "2026-06", "chain_head": "ab" * 32, "coverage_ratio": None,
                                                      "merchants": []}
    head = {"tree_size": 7, "root_hash": "cd" * 32, "timestamp": "2026-06-30T16:00:00Z", "key_id": "k1",
            "signature": "c2lnbmF0dXJl"}
    place = ReportPlace("金沙社区", "/v1/public/communities/x/fund-reports", None, None, None)
    without = to_html(report, [], place=place, lang="zh", base_path="/r").body
    with_head = to_html(report | {"tree_head": head}, [], place=place, lang="zh", base_path="/r").body
    assert "签名树头" not in without and "签名树头" in with_head and head["signature"] in with_head
    rows = dict(list(csv.reader(io.StringIO(to_csv(report | {"tree_head": head}).lstrip(UTF8_BOM))))[1:2 + len(SUMMARY_FIELDS)])
    assert json.loads(rows["tree_head"]) == head
