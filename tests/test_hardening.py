"""The defects an outside attack found, each kept as a test on every backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from domain.paying import IssueAllowances
from domain.periods import months_after
from infra.wiring import Services
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, check_invariants, new_key, this_period


@pytest.fixture
def api(services: Services) -> Any:
    with api_for(services, ADMIN_TOKEN) as client:
        yield client


def error_of(response: Any) -> dict[str, Any]:
    return response.json()["error"]


class Town:
    def __init__(self, api: Api) -> None:
        self.community = api.community()
        self.staff = api.staff(self.community["id"])
        self.canteen = api.account(self.community["id"], "merchant", "幸福食堂", merchant_categories=["meal"])
        self.grandma = api.account(self.community["id"], "beneficiary", "李奶奶")


@pytest.fixture
def town(api: Api) -> Town:
    return Town(api)


def allowance(api: Api, town: Town, period: str, amount: int = 100) -> Any:
    body = {"community_id": town.community["id"], "period": period, "amount_per_beneficiary": amount}
    return api.call("POST", "/v1/welfare/allowances", town.staff["token"], body, key=new_key())


# D1 — a NUL in a string reached PostgreSQL before validation (500).
def test_a_nul_in_a_settlement_period_is_a_validation_error(api: Api, town: Town) -> None:
    for period in ("2026-1\x00", "\x00", "2026-\x001"):
        response = api.call("POST", "/v1/settlements", town.staff["token"],
                            {"community_id": town.community["id"], "period": period}, key=new_key())
        assert response.status_code == 422, response.text
        assert error_of(response)["details"]["field"] == "period"


# D4 — a community-bound admin created communities.
def test_only_a_deployment_wide_admin_creates_communities(api: Api, town: Town) -> None:
    bound_admin = api.staff(town.community["id"], role="admin")
    refused = api.call("POST", "/v1/communities", bound_admin["token"], {"name": "另一个社区"})
    assert refused.status_code == 403 and error_of(refused)["code"] == "forbidden"
    assert api.call("POST", "/v1/communities", ADMIN_TOKEN, {"name": "另一个社区"}).status_code == 201


# D5 — a declined redemption retried with the same key after a top-up moved money.
def test_a_declined_sale_is_replayed_under_its_key_even_after_a_top_up(api: Api, town: Town) -> None:
    code = api.ok("POST", f"/v1/accounts/{town.grandma['id']}/payment-codes", town.grandma["token"], status=201)["code"]
    key, body = new_key(), {"payment_code": code, "amount": 12}
    declined = api.call("POST", "/v1/redemptions", town.canteen["token"], body, key=key)
    assert declined.status_code == 409 and error_of(declined)["code"] == "insufficient_funds"
    assert "Idempotent-Replayed" not in declined.headers

    assert allowance(api, town, this_period()).status_code == 201
    again = api.call("POST", "/v1/redemptions", town.canteen["token"], body, key=key)
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == declined.json()
    assert api.balances(town.grandma["id"])["welfare"] == 100

    other_body = api.call("POST", "/v1/redemptions", town.canteen["token"], {**body, "amount": 11}, key=key)
    assert other_body.status_code == 409 and error_of(other_body)["code"] == "idempotency_conflict"
    assert api.call("POST", "/v1/redemptions", town.canteen["token"], body, key=new_key()).status_code == 201
    assert api.balances(town.grandma["id"])["welfare"] == 88


def test_a_validation_error_leaves_the_key_free(api: Api, town: Town) -> None:
    code = api.ok("POST", f"/v1/accounts/{town.grandma['id']}/payment-codes", town.grandma["token"], status=201)["code"]
    key = new_key()
    invalid = api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": code, "amount": 0}, key=key)
    assert invalid.status_code == 422
    allowance(api, town, this_period())
    paid = api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": code, "amount": 5}, key=key)
    assert paid.status_code == 201 and "Idempotent-Replayed" not in paid.headers


# D6 — allowances were accepted for any month from 2000-01 to 9998-12.
def test_allowances_only_for_the_current_month_and_the_next(api: Api, town: Town) -> None:
    now = this_period()
    last_month = f"{int(now[:4]) - (now[5:] == '01'):04d}-{(int(now[5:]) - 2) % 12 + 1:02d}"
    for period in ("2000-01", "9998-12", last_month, months_after(now, 2)):
        refused = allowance(api, town, period)
        assert refused.status_code == 422, period
        assert error_of(refused)["details"]["field"] == "period"
    assert allowance(api, town, now).status_code == 201
    assert allowance(api, town, months_after(now, 1)).status_code == 201
    assert api.balances(town.grandma["id"])["welfare"] == 200


@pytest.mark.backends("memory")
def test_the_welfare_window_is_configurable(tmp_path) -> None:
    from infra.settings import Settings
    from infra.wiring import build_services
    from tests.support import new_app_community

    settings = Settings.from_env({"JINDOU_DATABASE_URL": "memory://", "JINDOU_ADMIN_TOKEN": ADMIN_TOKEN,
                                  "JINDOU_WELFARE_MONTHS_AHEAD": "3"})
    services = build_services(settings)
    try:
        community = new_app_community(services)
        grandma = community.open("beneficiary")
        outcome = community.app.execute(IssueAllowances(community_id=community.id, period=months_after(this_period(), 3), amount_per_beneficiary=5, beneficiary_ids=tuple([grandma.account_id])), community.staff)
        assert outcome.result["total"] == 5
    finally:
        services.close()


# D7 — a replacement card started the day's limit afresh.
def test_the_card_limit_is_per_person_per_day_whatever_card(api: Api, town: Town, services: Services) -> None:
    allowance(api, town, this_period(), amount=500)
    cards = f"/v1/accounts/{town.grandma['id']}/cards"
    first = api.ok("POST", cards, town.staff["token"], {"daily_limit": 30}, status=201)["card_code"]

    def pay(card: str, amount: int) -> Any:
        return api.call("POST", "/v1/redemptions", town.canteen["token"], {"payment_code": card, "amount": amount},
                        key=new_key())

    assert pay(first, 20).status_code == 201
    second = api.ok("POST", cards, town.staff["token"], {"daily_limit": 30}, status=201)["card_code"]
    over = pay(second, 20)
    assert over.status_code == 409 and error_of(over)["code"] == "daily_limit_exceeded"
    assert error_of(over)["details"]["spent_today"] == 20
    sale = pay(second, 10)
    assert sale.status_code == 201
    # A sale on the replaced card, reversed, gives its share of the day back to the person.
    sales = api.ok("GET", f"/v1/merchants/{town.canteen['id']}/redemptions", town.canteen["token"])["items"]
    first_sale = next(sale for sale in sales if sale["amount"] == 20)
    api.ok("POST", f"/v1/redemptions/{first_sale['id']}/reverse", town.canteen["token"], key=new_key())
    assert pay(second, 20).status_code == 201
    assert pay(second, 1).status_code == 409

    tomorrow = services.app.now() + timedelta(days=1)
    services.app.now = lambda: tomorrow  # type: ignore[method-assign]
    assert pay(second, 30).status_code == 201
    check_invariants(services)


# D11 — the freeze reason took NUL and control characters.
def test_every_text_field_refuses_control_characters(api: Api, town: Town) -> None:
    freeze = f"/v1/accounts/{town.grandma['id']}/freeze"
    for reason in ("丢卡\x00", "a\x1bb", "\x7f"):
        refused = api.call("POST", freeze, town.staff["token"], {"reason": reason})
        assert refused.status_code == 422 and error_of(refused)["details"]["field"] == "reason", reason
    assert api.ok("POST", freeze, town.staff["token"], {"reason": "卡丢了\n家属来电"})["status"] == "frozen"
    for path, body in (
        ("/v1/communities", {"name": "金沙\x00"}),
        ("/v1/fund/donations", {"community_id": town.community["id"], "donor": "x\x01", "amount_fen": 1,
                                "received_on": "2026-01-01", "reference": ""}),
    ):
        response = api.call("POST", path, ADMIN_TOKEN, body)
        assert response.status_code == 422, (path, response.text)


# D3 — a 503 was sent for a write that had in fact committed.
def test_a_failure_during_commit_says_the_outcome_is_unknown_and_the_key_tells(
    api: Api, town: Town, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = services.app.save

    def save_then_lose_the_connection(*aggregates: Any, **kwargs: Any) -> Any:
        real_save(*aggregates, **kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services.app, "save", save_then_lose_the_connection)
    key, body = new_key(), {"community_id": town.community["id"], "kind": "volunteer", "display_name": "小王"}
    unknown = api.call("POST", "/v1/accounts", town.staff["token"], body, key=key)
    assert unknown.status_code == 503 and error_of(unknown)["code"] == "outcome_unknown"
    assert unknown.headers["Retry-After"]
    monkeypatch.undo()
    found = api.call("POST", "/v1/accounts", town.staff["token"], body, key=key)
    assert found.status_code == 201 and found.headers["Idempotent-Replayed"] == "true"


def test_a_committed_write_is_acknowledged_even_when_the_read_model_cannot_catch_up(
    api: Api, town: Town, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_gone(**_: Any) -> int:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services.projector, "catch_up", database_gone)
    body = {"community_id": town.community["id"], "kind": "volunteer", "display_name": "小李"}
    created = api.call("POST", "/v1/accounts", town.staff["token"], body, key=new_key())
    assert created.status_code == 201, created.text
    monkeypatch.undo()
    assert api.ok("GET", f"/v1/accounts/{created.json()['id']}", town.staff["token"])["display_name"] == "小李"


# D9 — a 405 lost its Allow header.
@pytest.mark.backends("memory")
def test_method_not_allowed_says_which_methods_are(api: Api) -> None:
    response = api.call("DELETE", "/v1/communities", ADMIN_TOKEN)
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


# D4 — community B's auditor and admin read all of community A's events.
def test_audit_events_are_scoped_to_the_readers_community(api: Api, services: Services) -> None:
    from tests.test_audit_http import all_events

    town_a = api.community(name="甲社区")
    api.account(town_a["id"], "volunteer", "甲社区的秘密名字")
    staff_a = api.staff(town_a["id"])
    report = api.ok("POST", "/v1/reports", api.account(town_a["id"], "volunteer")["token"],
                    {"category": "dispute", "description": "甲社区的私事"}, status=201)
    api.ok("POST", f"/v1/reports/{report['id']}/verify", staff_a["token"], {}, key=new_key())
    town_b = api.community(name="乙社区")
    own = api.account(town_b["id"], "beneficiary", "乙社区的居民")
    readers = [api.staff(town_b["id"], role="auditor"), api.staff(town_b["id"], role="admin")]

    everything = all_events(api, ADMIN_TOKEN, limit=7)
    for reader in readers:
        response = api.call("GET", "/v1/audit/events?limit=500", reader["token"])
        assert response.status_code == 200
        assert "甲社区" not in response.text and "idempotency" not in response.text.lower()
        seen = all_events(api, reader["token"], limit=3)
        assert seen and {item["aggregate_id"] for item in seen} >= {town_b["id"], own["id"]}
        assert {item["position"] for item in seen} < {item["position"] for item in everything}
        assert [i["position"] for i in seen] == sorted(i["position"] for i in seen)
    assert "甲社区的秘密名字" in str(everything)


# D9 — /openapi.json lacked the security scheme, the error responses and the key's pattern.
@pytest.mark.backends("memory")
def test_the_openapi_document_declares_auth_errors_keys_and_media_types(api: Api) -> None:
    document = api.ok("GET", "/openapi.json")
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"]}
    redeem = document["paths"]["/v1/redemptions"]["post"]
    assert redeem["security"] == [{"bearer": []}]
    for status in ("401", "403", "404", "409", "422", "429"):
        assert redeem["responses"][status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    key = next(p for p in redeem["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True and key["schema"]["pattern"] == "^[\\x21-\\x7e]{1,200}$"
    donate_key = next(p for p in document["paths"]["/v1/donations"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert donate_key["required"] is False
    assert redeem["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Redemption"}
    csv = document["paths"]["/v1/public/communities/{community_id}/fund-reports/{period}.csv"]["get"]
    assert "text/csv" in csv["responses"]["200"]["content"] and "security" not in csv
    assert "HTTPValidationError" not in document["components"]["schemas"]


# D2 — with the database away, requests waited for it; /healthz too.
@pytest.mark.backends("memory")
def test_while_the_database_is_known_away_the_api_answers_503_at_once(api: Api, services: Services) -> None:
    services.health.up, services.health.error = False, "connection refused"
    try:
        refused = api.call("GET", "/v1/communities/anything", ADMIN_TOKEN)
        assert refused.status_code == 503 and error_of(refused)["code"] == "unavailable"
        assert refused.headers["Retry-After"] == "1"
        health = api.call("GET", "/healthz")
        assert health.status_code == 503 and health.json()["database"] == "down" and health.headers["Retry-After"]
        assert api.call("GET", "/wallet").status_code == 200  # the pages still load, to say so
    finally:
        services.health.up = True
    assert api.call("GET", "/healthz").json()["status"] == "ok"


@pytest.mark.backends("postgres")
def test_served_statements_time_out_but_audit_statements_do_not(services: Services) -> None:
    from infra.audit import _open

    def statement_timeout(opened: Services) -> str:
        with opened.app.factory.datastore.get_connection() as connection:  # type: ignore[attr-defined]
            return str(connection.execute("SHOW statement_timeout").fetchone()["statement_timeout"])

    assert statement_timeout(services) == "5s"
    audit = _open(services.settings)
    try:
        assert statement_timeout(audit) == "0"
    finally:
        audit.close()


# An outage run failed now and then: after the database came back, the pool reconnected its lost
# slots only on its 1, 2, 4, 8 s back-off, and every write waited for a connection meanwhile.
def test_the_pool_refreshes_the_moment_the_database_answers_again() -> None:
    from infra.health import DatabaseHealth

    answers = iter([ConnectionError("refused"), None, None])
    refreshed: list[bool] = []

    def probe() -> None:
        failure = next(answers)
        if failure is not None:
            raise failure

    health = DatabaseHealth(probe, on_recovery=lambda: refreshed.append(True))
    health.check()
    assert not health.up and refreshed == []
    health.check()
    assert health.up and refreshed == [True]
    health.check()
    assert refreshed == [True], "only the return of the database refreshes the pool, not every probe"


@pytest.mark.backends("postgres")
def test_a_lost_pool_slot_is_given_up_within_a_second_not_backed_off_for_minutes(services: Services) -> None:
    from infra.persistence import RECONNECT_TIMEOUT_S

    pool = services.app.factory.datastore.pool  # type: ignore[attr-defined]
    assert pool.reconnect_timeout == RECONNECT_TIMEOUT_S <= 1.0
    assert services.health._on_recovery == pool.check


@pytest.mark.backends("postgres")
def test_a_pooled_connection_is_pinged_only_when_its_server_has_spoken(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No round trip to check a quiet connection; a connection whose backend was terminated
    while it sat in the pool is pinged, found dead and replaced, never handed out."""
    import time

    import psycopg
    from psycopg_pool import ConnectionPool

    from infra.persistence import check_unless_quiet

    shared = services.app.factory.datastore.pool  # type: ignore[attr-defined]
    assert shared._check is check_unless_quiet  # what every checkout of the service's pool runs
    pings: list[int] = []
    ping = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(lambda c: (pings.append(1), ping(c))[1]))
    conninfo = shared.conninfo
    with ConnectionPool(conninfo, min_size=1, max_size=1, check=check_unless_quiet, open=True) as pool:
        with pool.connection() as connection:
            first = connection.info.backend_pid
        with pool.connection() as connection:
            assert connection.info.backend_pid == first
        assert pings == [], "a quiet connection is handed out without a round trip"
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        time.sleep(0.2)  # the server's goodbye reaches the idle socket
        with pool.connection(timeout=5) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
            assert connection.info.backend_pid != first
        assert pings, "the terminated connection was pinged before it could be handed out"
