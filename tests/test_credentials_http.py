"""Credentials, sign-in codes, QR images and card sheets through HTTP, as the contract (v1.1)
spells them: shapes, status codes, every error path, and every QR decoded back."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pypdf
import pytest

from domain.community import Credential
from domain.credentialing import IssueAccountToken
from domain.credentials import SIGN_IN_CODE_DIGITS, hash_token
from domain.earning import VerifyReport
from infra.ratelimit import SIGN_IN_CODE_FAILURES_MAX
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.conftest import ADMIN_TOKEN
from tests.qr_images import decode_pdf_pages, decode_png, decode_svg
from tests.support import Api, api_for, check_invariants, new_key

UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"
SIGN_IN_URL = re.compile(r"^http://testserver/(wallet|merchant|staff)#sign-in=(\d{12})$")


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


class Town:
    """A community with staff, an auditor, a merchant, a volunteer and two beneficiaries."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.community = api.community()
        self.staff = api.staff(self.community["id"])
        self.auditor = api.staff(self.community["id"], "auditor")
        self.canteen = api.account(self.community["id"], "merchant", "幸福食堂", merchant_categories=["meal"])
        self.volunteer = api.account(self.community["id"], "volunteer", "小李")
        self.grandma = api.account(self.community["id"], "beneficiary", "张阿姨")
        self.grandpa = api.account(self.community["id"], "beneficiary", "王大爷")
        elsewhere = api.community(name="金星社区")
        self.other_staff = api.staff(elsewhere["id"])
        self.other_grandma = api.account(elsewhere["id"], "beneficiary", "李奶奶")


@pytest.fixture
def api(services: Services):
    with api_for(services, ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
def town(api: Api) -> Town:
    return Town(api)


def sign_in_code(api: Api, path: str, token: str) -> dict[str, Any]:
    issued = api.ok("POST", path, token, status=201)
    assert set(issued) >= {"code", "expires_at", "url"}
    assert issued["code"].isdigit() and len(issued["code"]) == SIGN_IN_CODE_DIGITS
    return issued


def test_a_new_account_token_retires_the_old_ones(town: Town) -> None:
    api = town.api
    path = f"/v1/accounts/{town.volunteer['id']}/token"
    response = api.call("POST", path, town.staff["token"])
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    token = response.json()["token"]
    old = api.call("GET", f"/v1/accounts/{town.volunteer['id']}", town.volunteer["token"])
    assert old.status_code == 401 and error_code(old) == "unauthorized"
    assert api.ok("GET", f"/v1/accounts/{town.volunteer['id']}", token)["id"] == town.volunteer["id"]
    for who, status, code in ((None, 401, "unauthorized"), ("nonsense", 401, "unauthorized"),
                              (token, 403, "forbidden"), (town.auditor["token"], 403, "forbidden"),
                              (town.other_staff["token"], 403, "forbidden")):
        refused = api.call("POST", path, who)
        assert refused.status_code == status and error_code(refused) == code, (who, refused.text)
    for missing in (UNKNOWN_ID, "garbage"):
        refused = api.call("POST", f"/v1/accounts/{missing}/token", town.staff["token"])
        assert refused.status_code == 404 and error_code(refused) == "not_found"
    assert api.call("POST", path, ADMIN_TOKEN).status_code == 201
    assert api.call("GET", f"/v1/accounts/{town.volunteer['id']}", token).status_code == 401


def test_staff_tokens_and_revocation(town: Town) -> None:
    api = town.api
    staff_path = f"/v1/staff/{town.staff['id']}"
    own = api.ok("POST", f"{staff_path}/token", town.staff["token"], status=201)["token"]  # for itself
    assert api.call("POST", "/v1/accounts/" + town.volunteer["id"] + "/freeze", town.staff["token"]).status_code == 401
    assert api.call("POST", f"{staff_path}/token", town.auditor["token"]).status_code == 403
    assert api.call("POST", f"{staff_path}/token", town.other_staff["token"]).status_code == 403
    assert api.call("POST", f"{staff_path}/revoke", own).status_code == 403  # only admins revoke
    assert api.call("POST", f"/v1/staff/{UNKNOWN_ID}/revoke", ADMIN_TOKEN).status_code == 404
    assert api.call("POST", "/v1/staff/garbage/token", ADMIN_TOKEN).status_code == 404
    assert api.call("POST", f"{staff_path}/revoke").status_code == 401
    revoked = api.ok("POST", f"{staff_path}/revoke", ADMIN_TOKEN)
    assert revoked == {"id": town.staff["id"], "revoked": 1}
    gone = api.call("POST", f"/v1/accounts/{town.volunteer['id']}/freeze", own)
    assert gone.status_code == 401 and error_code(gone) == "unauthorized"
    fresh = api.ok("POST", f"{staff_path}/token", ADMIN_TOKEN, status=201)["token"]
    assert api.ok("POST", f"/v1/accounts/{town.volunteer['id']}/freeze", fresh)["status"] == "frozen"


def test_the_bootstrap_admin_token_is_retired_by_rotation(town: Town) -> None:
    api = town.api
    merchant = api.ok("POST", "/v1/auth/rotate", town.canteen["token"], status=201)["token"]
    assert api.call("GET", f"/v1/accounts/{town.canteen['id']}", town.canteen["token"]).status_code == 401
    assert api.ok("GET", f"/v1/accounts/{town.canteen['id']}", merchant)["kind"] == "merchant"
    assert api.call("POST", "/v1/auth/rotate").status_code == 401
    assert api.call("POST", "/v1/auth/rotate", town.canteen["token"]).status_code == 401
    admin = api.ok("POST", "/v1/auth/rotate", ADMIN_TOKEN, status=201)["token"]
    refused = api.call("POST", "/v1/communities", ADMIN_TOKEN, {"name": "新社区"})
    assert refused.status_code == 401 and error_code(refused) == "unauthorized"
    assert api.ok("POST", "/v1/communities", admin, {"name": "新社区"}, status=201)["card_daily_limit"] == 100


def test_sign_in_codes_open_the_right_page_once(town: Town) -> None:
    api = town.api
    issued = sign_in_code(api, f"/v1/accounts/{town.grandma['id']}/sign-in-codes", town.staff["token"])
    assert SIGN_IN_URL.match(issued["url"]).groups() == ("wallet", issued["code"])  # type: ignore[union-attr]
    assert issued["expires_at"].endswith("+08:00")
    merchant = sign_in_code(api, f"/v1/accounts/{town.canteen['id']}/sign-in-codes", ADMIN_TOKEN)
    assert merchant["url"] == f"http://testserver/merchant#sign-in={merchant['code']}"
    staff = sign_in_code(api, f"/v1/staff/{town.auditor['id']}/sign-in-codes", town.auditor["token"])
    assert staff["url"] == f"http://testserver/staff#sign-in={staff['code']}"

    signed_in = api.call("POST", "/v1/auth/sign-in", json={"code": issued["code"]})
    assert signed_in.status_code == 200 and signed_in.headers["Cache-Control"] == "no-store"
    body = signed_in.json()
    assert body == {"token": body["token"], "account_id": town.grandma["id"], "kind": "beneficiary"}
    assert api.ok("GET", f"/v1/accounts/{town.grandma['id']}", body["token"])["id"] == town.grandma["id"]
    assert api.ok("GET", f"/v1/accounts/{town.grandma['id']}", town.grandma["token"])  # earlier tokens live on
    again = api.call("POST", "/v1/auth/sign-in", json={"code": issued["code"]})
    assert again.status_code == 409 and error_code(again) == "invalid_sign_in_code"
    staff_body = api.ok("POST", "/v1/auth/sign-in", json={"code": staff["code"]})
    assert staff_body == {"token": staff_body["token"], "staff_id": town.auditor["id"], "role": "auditor",
                          "community_id": town.community["id"], "kind": "staff"}

    for who, path, status in (
        (town.volunteer["token"], f"/v1/accounts/{town.grandma['id']}/sign-in-codes", 403),
        (town.auditor["token"], f"/v1/accounts/{town.grandma['id']}/sign-in-codes", 403),
        (town.other_staff["token"], f"/v1/accounts/{town.grandma['id']}/sign-in-codes", 403),
        (None, f"/v1/accounts/{town.grandma['id']}/sign-in-codes", 401),
        (town.staff["token"], f"/v1/accounts/{UNKNOWN_ID}/sign-in-codes", 404),
        (town.staff["token"], f"/v1/staff/{town.auditor['id']}/sign-in-codes", 403),
        (town.grandma["token"], f"/v1/staff/{town.auditor['id']}/sign-in-codes", 403),
        (ADMIN_TOKEN, f"/v1/staff/{UNKNOWN_ID}/sign-in-codes", 404),
    ):
        assert api.call("POST", path, who).status_code == status, (path, who)
    for body in ({}, {"code": 123456789012}, {"code": "1" * 65}, None):
        refused = api.call("POST", "/v1/auth/sign-in", json=body)
        assert refused.status_code == 422 and error_code(refused) == "validation_error", body


def test_sign_in_urls_use_the_public_url_when_set(database_url: str) -> None:
    settings = Settings(database_url=database_url, admin_token=ADMIN_TOKEN, public_url="https://jindou.example.org")
    services = build_services(settings)
    try:
        with api_for(services, ADMIN_TOKEN) as api:
            community = api.community()
            grandma = api.account(community["id"], "beneficiary", "张阿姨")
            issued = sign_in_code(api, f"/v1/accounts/{grandma['id']}/sign-in-codes", ADMIN_TOKEN)
            assert issued["url"] == f"https://jindou.example.org/wallet#sign-in={issued['code']}"
            image = api.call("GET", f"/v1/accounts/{grandma['id']}/sign-in-codes/{issued['code']}.png", ADMIN_TOKEN)
            assert decode_png(image.content) == [issued["url"]]
    finally:
        services.close()


def test_guessing_sign_in_codes_is_rate_limited_per_client(town: Town) -> None:
    api = town.api
    valid = sign_in_code(api, f"/v1/accounts/{town.grandma['id']}/sign-in-codes", town.staff["token"])["code"]
    for guess in range(SIGN_IN_CODE_FAILURES_MAX):
        wrong = api.call("POST", "/v1/auth/sign-in", json={"code": str(guess).zfill(SIGN_IN_CODE_DIGITS)})
        assert wrong.status_code == 409 and error_code(wrong) == "invalid_sign_in_code"
    limited = api.call("POST", "/v1/auth/sign-in", json={"code": valid})
    assert limited.status_code == 429 and error_code(limited) == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 600
    spoofed = api.call("POST", "/v1/auth/sign-in", json={"code": valid}, headers={"X-Forwarded-For": "198.51.100.9"})
    assert spoofed.status_code == 429  # the client's address, not what its headers claim


def test_every_qr_is_a_standard_qr_code_decoding_to_its_digits_or_url(town: Town) -> None:
    api = town.api
    api.ok("POST", "/v1/welfare/allowances", town.staff["token"],
           {"community_id": town.community["id"], "period": _this_month(api, town), "amount_per_beneficiary": 30,
            "beneficiary_ids": [town.grandma["id"]]}, key=new_key(), status=201)
    payment = api.ok("POST", f"/v1/accounts/{town.grandma['id']}/payment-codes", town.grandma["token"], status=201)
    card = api.ok("POST", f"/v1/accounts/{town.grandma['id']}/cards", town.staff["token"], {"daily_limit": 20}, status=201)
    sign_in = sign_in_code(api, f"/v1/accounts/{town.grandma['id']}/sign-in-codes", town.staff["token"])
    staff_sign_in = sign_in_code(api, f"/v1/staff/{town.staff['id']}/sign-in-codes", ADMIN_TOKEN)
    images = (
        (f"/v1/accounts/{town.grandma['id']}/payment-codes/{payment['code']}", town.grandma["token"], payment["code"]),
        (f"/v1/accounts/{town.grandma['id']}/payment-codes/{card['card_code']}", town.staff["token"], card["card_code"]),
        (f"/v1/accounts/{town.grandma['id']}/sign-in-codes/{sign_in['code']}", town.staff["token"], sign_in["url"]),
        (f"/v1/staff/{town.staff['id']}/sign-in-codes/{staff_sign_in['code']}", town.staff["token"], staff_sign_in["url"]),
    )
    for path, token, content in images:
        svg = api.call("GET", f"{path}.svg", token)
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml", svg.text
        assert decode_svg(svg.content) == [content]
        png = api.call("GET", f"{path}.png", token)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.headers["Cache-Control"] == "no-store"
        assert decode_png(png.content) == [content]
    sign_in_path = f"/v1/accounts/{town.grandma['id']}/sign-in-codes"
    for path, token, status in (
        (f"{sign_in_path}/{sign_in['code']}.png", town.grandma["token"], 403),
        (f"{sign_in_path}/{sign_in['code']}.png", town.other_staff["token"], 403),
        (f"{sign_in_path}/{sign_in['code']}.svg", None, 401),
        (f"{sign_in_path}/000000000000.svg", town.staff["token"], 404),
        (f"{sign_in_path}/garbage.png", town.staff["token"], 404),
        (f"/v1/accounts/{town.grandpa['id']}/sign-in-codes/{sign_in['code']}.png", town.staff["token"], 404),
        (f"/v1/accounts/{UNKNOWN_ID}/sign-in-codes/{sign_in['code']}.png", town.staff["token"], 404),
        (f"/v1/staff/{town.staff['id']}/sign-in-codes/{staff_sign_in['code']}.png", town.auditor["token"], 403),
        (f"/v1/accounts/{town.grandma['id']}/payment-codes/{payment['code']}.png", town.volunteer["token"], 403),
        (f"{sign_in_path}/{sign_in['code']}.gif", town.staff["token"], 404),
    ):
        response = api.call("GET", path, token)
        assert response.status_code == status and response.status_code < 500, (path, response.text)
    api.ok("POST", "/v1/auth/sign-in", json={"code": sign_in["code"]})
    assert api.call("GET", f"{sign_in_path}/{sign_in['code']}.png", town.staff["token"]).status_code == 404


def _this_month(api: Api, town: Town) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(town.community["timezone"])).strftime("%Y-%m")


def test_communities_carry_a_card_daily_limit(api: Api) -> None:
    assert api.community()["card_daily_limit"] == 100
    assert api.community(card_daily_limit=40)["card_daily_limit"] == 40
    for wrong in (0, -1, 10_001, "50", 2.5):
        refused = api.call("POST", "/v1/communities", ADMIN_TOKEN, {"name": "社区", "card_daily_limit": wrong})
        assert refused.status_code == 422 and error_code(refused) == "validation_error", wrong
        assert "card_daily_limit" in refused.text


def test_the_card_sheet_prints_every_card_with_its_sign_in_code(services: Services, town: Town) -> None:
    api = town.api
    kept = api.ok("POST", f"/v1/accounts/{town.grandma['id']}/cards", town.staff["token"], {"daily_limit": 30}, status=201)
    path = f"/v1/communities/{town.community['id']}/cards.pdf?account_ids={town.grandma['id']},{town.grandpa['id']}"
    response = api.call("GET", path, town.staff["token"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["Jindou-Cards-Issued"] == "1"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    text = reader.pages[0].extract_text()
    for expected in ("张阿姨", "王大爷", "每日限额 30 元", "每日限额 100 元", "付款码", "登录码", "付款时请商户扫左侧付款码"):
        assert expected in text, (expected, text)
    grouped = " ".join(kept["card_code"][i:i + 4] for i in range(0, 24, 4))
    assert grouped in text  # the card it already had is printed again, not replaced
    printed_digits = re.findall(r"(?:\d{4} ){5}\d{4}", text)
    assert len(printed_digits) == 2
    decoded = decode_pdf_pages(response.content)[0]
    card_codes = [d.replace(" ", "") for d in printed_digits]
    assert sorted(q for q in decoded if q.isdigit()) == sorted(card_codes)
    urls = [q for q in decoded if not q.isdigit()]
    assert len(urls) == 2 and all(SIGN_IN_URL.match(url) for url in urls)

    new_card = next(code for code in card_codes if code != kept["card_code"])
    signed_in = {api.ok("POST", "/v1/auth/sign-in", json={"code": url.rsplit("=", 1)[1]})["account_id"] for url in urls}
    assert signed_in == {town.grandma["id"], town.grandpa["id"]}
    api.ok("POST", "/v1/welfare/allowances", town.staff["token"],
           {"community_id": town.community["id"], "period": _this_month(api, town), "amount_per_beneficiary": 120,
            "beneficiary_ids": [town.grandpa["id"]]}, key=new_key(), status=201)
    sale = api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": new_card, "amount": 100}, key=new_key())
    assert sale.status_code == 201 and sale.json()["customer_id"] == town.grandpa["id"]
    over = api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": new_card, "amount": 1}, key=new_key())
    assert over.status_code == 409 and error_code(over) == "daily_limit_exceeded"  # the community's default, 100

    again = api.call("GET", path, ADMIN_TOKEN)
    assert again.status_code == 200 and again.headers["Jindou-Cards-Issued"] == "0"
    api.ok("POST", f"/v1/accounts/{town.grandpa['id']}/freeze", town.staff["token"])
    after_freeze = api.call("GET", path, town.staff["token"])
    assert after_freeze.headers["Jindou-Cards-Issued"] == "1"  # the freeze killed the card: a new one is printed
    check_invariants(services)


def test_the_card_sheet_refuses_what_it_cannot_print(town: Town) -> None:
    api = town.api
    base = f"/v1/communities/{town.community['id']}/cards.pdf"
    strangers = [town.volunteer["id"], town.other_grandma["id"], UNKNOWN_ID, "garbage"]
    refused = api.call("GET", f"{base}?account_ids={town.grandma['id']},{','.join(strangers)}", town.staff["token"])
    assert refused.status_code == 422 and error_code(refused) == "validation_error"
    assert refused.json()["error"]["details"] == {"field": "account_ids", "account_ids": strangers}
    one = f"?account_ids={town.grandma['id']}"
    for path, token, status, code in (
        (f"{base}{one}", None, 401, "unauthorized"),
        (f"{base}{one}", town.auditor["token"], 403, "forbidden"),
        (f"{base}{one}", town.grandma["token"], 403, "forbidden"),
        (f"{base}{one}", town.other_staff["token"], 403, "forbidden"),
        (f"/v1/communities/{UNKNOWN_ID}/cards.pdf{one}", town.staff["token"], 404, "not_found"),
        (f"/v1/communities/garbage/cards.pdf{one}", town.staff["token"], 404, "not_found"),
        (base, town.staff["token"], 422, "validation_error"),
        (f"{base}?account_ids=,,", town.staff["token"], 422, "validation_error"),
        (f"{base}?account_ids=" + ",".join([town.grandma["id"]] * 2 + ["x"] * 100), town.staff["token"], 422,
         "validation_error"),
    ):
        response = api.call("GET", path, token)
        assert response.status_code == status and error_code(response) == code, (path, response.text)


def test_a_long_card_sheet_takes_several_pages_with_the_communitys_limit(api: Api) -> None:
    community = api.community(card_daily_limit=25)
    staff = api.staff(community["id"])
    people = [api.account(community["id"], "beneficiary", f"居民{i}") for i in range(9)]
    response = api.call("GET", f"/v1/communities/{community['id']}/cards.pdf?account_ids="
                        + ",".join(p["id"] for p in people), staff["token"])
    assert response.status_code == 200 and response.headers["Jindou-Cards-Issued"] == "9"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2
    text = "".join(page.extract_text() for page in reader.pages)
    assert text.count("每日限额 25 元") == 9 and all(f"居民{i}" in text for i in range(9))
    assert [len(found) for found in decode_pdf_pages(response.content)] == [16, 2]


@contextmanager
def served_beside_another_process(database_url: str) -> Iterator[tuple[Api, Services, Services]]:
    """This process's API over `database_url`, and another server process's services on the
    same database (what it does is seen here only through the database)."""
    here = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    there = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    try:
        with api_for(here, ADMIN_TOKEN) as api:
            yield api, here, there
    finally:
        here.close()
        there.close()


@pytest.mark.backends("sqlite", "postgres")
def test_a_token_another_process_revoked_writes_nothing_though_this_one_knew_it_live(database_url: str) -> None:
    """A write route takes a credential this process knows live from memory, reading nothing;
    the writer checks it again as it decides, after its own look at the log, so a revocation
    made by another server process still refuses the command (401) and nothing is recorded."""
    with served_beside_another_process(database_url) as (api, here, there):
        community = api.community()
        volunteer = api.account(community["id"], "volunteer", "小李")
        report = {"category": "fire", "description": "楼道有烟"}
        api.ok("POST", "/v1/reports", volunteer["token"], report, status=201)
        assert here.app.authenticate_known(volunteer["token"]) is not None  # held live here
        staff_there = there.app.authenticate(ADMIN_TOKEN)
        assert staff_there is not None
        there.app.execute(IssueAccountToken(account_id=UUID(volunteer["id"])), staff_there)  # revokes the old one
        assert here.app.authenticate_known(volunteer["token"]) is not None  # nothing read here since
        head = here.projector.head()
        refused = api.call("POST", "/v1/reports", volunteer["token"], report)
        assert refused.status_code == 401 and error_code(refused) == "unauthorized", refused.text
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert here.projector.head() == head
        again = api.call("POST", "/v1/reports", volunteer["token"], report)  # now known revoked here too
        assert again.status_code == 401 and here.app.authenticate_known(volunteer["token"]) is None


def test_a_write_with_a_token_this_process_has_not_seen_yet_is_looked_up(api: Api) -> None:
    """A credential that is not in memory (made by another process, or evicted) is read from the
    database, as for a read, before the command is accepted."""
    community = api.community()
    volunteer = api.account(community["id"], "volunteer", "小李")
    services: Services = api.client.app.state.services  # type: ignore[attr-defined]
    services.app.cache.evict([Credential.id_for(hash_token(volunteer["token"]))])
    assert services.app.authenticate_known(volunteer["token"]) is None
    api.ok("POST", "/v1/reports", volunteer["token"], {"category": "fire", "description": "楼道有烟"}, status=201)
    assert services.app.authenticate_known(volunteer["token"]) is not None
    assert api.call("POST", "/v1/reports", "jd_" + "x" * 43, {"category": "fire", "description": "x"}).status_code == 401


@pytest.mark.backends("sqlite", "postgres")
def test_an_authenticated_read_sees_another_process_write_and_asks_for_the_head_once(database_url: str) -> None:
    """A read's authentication looks at the log's head; the read model is brought up to that
    same head (one look, not two) and so holds what another process acknowledged before."""
    with served_beside_another_process(database_url) as (api, here, there):
        community = api.community()
        volunteer = api.account(community["id"], "volunteer", "小李")
        staff = api.staff(community["id"])
        report = api.ok("POST", "/v1/reports", volunteer["token"], {"category": "fire", "description": "楼道有烟"})
        admin_there = there.app.authenticate(staff["token"])
        assert admin_there is not None
        there.app.execute(VerifyReport(report_id=UUID(report["id"]), award=7), admin_there)  # acknowledged there
        looks = []
        recorder = here.app.recorder
        original = recorder.max_notification_id
        recorder.max_notification_id = lambda: looks.append(1) or original()  # type: ignore[method-assign]
        try:
            assert api.balances(volunteer["id"], volunteer["token"])["bean"] == 7
        finally:
            recorder.max_notification_id = original  # type: ignore[method-assign]
        assert len(looks) == 1
