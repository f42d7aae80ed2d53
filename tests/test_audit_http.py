"""GET /v1/audit/chain and /v1/audit/events: who may read them, paging, and that an outsider can
recompute every hash from what the API returns."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any
from uuid import UUID

import pytest

from infra.wiring import Services
from tests.audit_history import RawDatabase, make_history
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for


def all_events(api: Api, token: str, limit: int) -> list[dict[str, Any]]:
    items, after, pages = [], 0, 0
    while after is not None:
        page = api.ok("GET", f"/v1/audit/events?after={after}&limit={limit}", token)
        assert len(page["items"]) <= limit
        items += page["items"]
        after, pages = page["next_cursor"], pages + 1
        assert pages < 1_000
    return items


def rehash(prev_hex: str, item: dict[str, Any]) -> str:
    """The documented canonical bytes (docs/decisions/0005), built from the response alone."""
    def field(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    canonical = b"".join((
        field(b"jindou-chain-v1"), struct.pack(">q", item["position"]), field(item["aggregate_id"].encode()),
        struct.pack(">q", item["version"]), field(item["topic"].encode()), field(base64.b64decode(item["state_base64"])),
    ))
    return hashlib.sha256(bytes.fromhex(prev_hex) + canonical).hexdigest()


def test_only_auditors_and_admins_read_the_audit_trail(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        history = make_history(services, seed=11, steps=2)
        forbidden = [history["staff"]["token"], history["volunteers"][0]["token"], history["beneficiaries"][0]["token"]]
        for path in ("/v1/audit/chain", "/v1/audit/events"):
            assert api.call("GET", path).status_code == 401
            assert api.call("GET", path, "not-a-token").status_code == 401
            for token in forbidden:
                response = api.call("GET", path, token)
                assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
            assert api.call("GET", path, history["auditor"]["token"]).status_code == 200
            assert api.call("GET", path, ADMIN_TOKEN).status_code == 200


def test_events_page_through_the_whole_chain_and_rehash_to_its_head(services: Services) -> None:
    make_history(services, seed=12, steps=8)
    with api_for(services, ADMIN_TOKEN) as api:
        chain = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)
        items = all_events(api, ADMIN_TOKEN, limit=7)
    stored = services.app.recorder.select_notifications(start=1, limit=10_000)
    assert chain["events_count"] == len(stored) == len(items)
    assert [i["position"] for i in items] == [n.id for n in stored]
    prev = "0" * 64
    for item in items:
        assert item["hash"] == rehash(prev, item)
        prev = item["hash"]
    assert prev == chain["head"]


def test_an_event_reads_as_its_type_aggregate_version_time_and_data(services: Services) -> None:
    history = make_history(services, seed=13, steps=10)
    with api_for(services, ADMIN_TOKEN) as api:
        items = all_events(api, history["auditor"]["token"], limit=500)
    donations = [i for i in items if i["type"] == "Donation.Made"]
    assert donations, "the history donated at least once"
    donation = donations[0]
    assert donation["topic"] == "domain.donations:Donation.Made" and donation["version"] == 1
    UUID(donation["aggregate_id"])
    assert donation["occurred_at"].endswith("+00:00")
    assert isinstance(donation["data"]["amount"], int) and donation["data"]["amount"] > 0
    assert donation["data"]["to_account_id"] in {b["id"] for b in history["beneficiaries"]}
    assert sum(p["amount"] for p in donation["data"]["postings"]) == 0


def test_after_and_limit_are_bounded_and_the_last_page_has_no_cursor(services: Services) -> None:
    make_history(services, seed=14, steps=1)
    with api_for(services, ADMIN_TOKEN) as api:
        for query in ("limit=0", "limit=501", "after=-1", "after=x", "limit=1.5"):
            response = api.call("GET", f"/v1/audit/events?{query}", ADMIN_TOKEN)
            assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", query
        count = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)["events_count"]
        everything = api.ok("GET", "/v1/audit/events?limit=500", ADMIN_TOKEN)
        assert len(everything["items"]) == count and everything["next_cursor"] is None
        default = api.ok("GET", "/v1/audit/events", ADMIN_TOKEN)
        assert len(default["items"]) == min(50, count)
        last = everything["items"][-1]["position"]
        assert api.ok("GET", f"/v1/audit/events?after={last}", ADMIN_TOKEN) == {"items": [], "next_cursor": None}
        exact = api.ok("GET", f"/v1/audit/events?after={everything['items'][-3]['position']}&limit=2", ADMIN_TOKEN)
        assert [i["position"] for i in exact["items"]] == [i["position"] for i in everything["items"][-2:]]
        assert exact["next_cursor"] is None


def test_the_chain_grows_with_every_write(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        before = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)
        api.community()
        after = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)
    assert after["events_count"] > before["events_count"] and after["head"] != before["head"]


@pytest.mark.backends("sqlite", "postgres")
def test_an_event_tampered_past_decoding_is_still_listed(services: Services) -> None:
    make_history(services, seed=15, steps=3)
    raw = RawDatabase(services)
    position = raw.positions_of("Report.Verified")[0]
    raw.execute(f"UPDATE {raw.events_table} SET state = ? WHERE {raw.position_column} = ?", (b"garbage", position))
    with api_for(services, ADMIN_TOKEN) as api:
        items = api.ok("GET", f"/v1/audit/events?after={position - 2}&limit=2", ADMIN_TOKEN)["items"]
    before, tampered = items
    assert tampered["position"] == position and tampered["data"] is None and tampered["occurred_at"] is None
    assert base64.b64decode(tampered["state_base64"]) == b"garbage"
    assert tampered["hash"] != rehash(before["hash"], tampered)  # the chain still says what it was
