"""The transparency log over HTTP, on memory, SQLite and PostgreSQL: the key, signed tree heads,
consistency and inclusion proofs, and the head every public fund report carries."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.audit import replay_and_compare
from infra.wiring import Services
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, api_for, new_key
from tools.verify_jindou import (
    head_problem,
    leaf_hash,
    public_keys_of,
    verify_consistency,
    verify_inclusion,
)

COMMUNITY_TIMEZONE = "Asia/Shanghai"


def _world(api: Api) -> dict[str, Any]:
    community = api.community()
    staff = api.staff(community["id"])
    auditor = api.staff(community["id"], role="auditor")
    volunteer = api.account(community["id"], "volunteer")
    other = api.account(community["id"], "volunteer")
    beneficiary = api.account(community["id"], "beneficiary")
    api.earn(volunteer, staff["token"], "fire")
    api.earn(other, staff["token"], "security")
    api.ok("POST", "/v1/donations", volunteer["token"], {"to_account_id": beneficiary["id"], "amount": 3}, key=new_key(),
           status=201)
    return {"community": community, "staff": staff, "auditor": auditor, "volunteer": volunteer, "other": other,
            "beneficiary": beneficiary}


def _keys(api: Api) -> dict[str, bytes]:
    return public_keys_of(api.ok("GET", "/v1/public/transparency/key"))


def _proved(api: Api, path: str, token: str, head: dict[str, Any]) -> dict[str, Any]:
    proof = api.ok("GET", f"{path}?tree_size={head['tree_size']}", token)
    canonical = base64.b64decode(proof["canonical_base64"])
    assert leaf_hash(canonical).hex() == proof["leaf_hash"]
    assert verify_inclusion(proof["leaf_index"], head["tree_size"], leaf_hash(canonical),
                            [bytes.fromhex(h) for h in proof["audit_path"]], bytes.fromhex(head["root_hash"]))
    return proof


def test_key_and_heads_are_signed_and_every_size_has_one_head(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        _world(api)
        key = api.ok("GET", "/v1/public/transparency/key")
        raw = base64.b64decode(key["public_key"])
        assert key["algorithm"] == "ed25519" and len(raw) == 32
        assert key["key_id"] == hashlib.sha256(raw).hexdigest() and key["retired"] == []
        head = api.ok("GET", "/v1/public/transparency/tree-head")
        chain = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)
        assert head["tree_size"] == chain["events_count"] > 0
        assert head_problem(head, _keys(api)) is None
        assert head["key_id"] == key["key_id"]
        datetime.fromisoformat(head["timestamp"])  # RFC 3339
        assert api.ok("GET", f"/v1/public/transparency/tree-head?tree_size={head['tree_size']}") == head
        empty = api.ok("GET", "/v1/public/transparency/tree-head?tree_size=0")
        assert empty["root_hash"] == hashlib.sha256(b"").hexdigest() and head_problem(empty, _keys(api)) is None
        forged = head | {"root_hash": empty["root_hash"]}
        assert head_problem(forged, _keys(api)) == "the signature does not verify"

        sizes = range(1, head["tree_size"] + 1)
        heads = {size: api.ok("GET", f"/v1/public/transparency/tree-head?tree_size={size}") for size in sizes}
        for first in sizes:
            for second in (first, head["tree_size"], (first + head["tree_size"]) // 2):
                answer = api.ok("GET", f"/v1/public/transparency/consistency?first={first}&second={second}")
                assert (answer["first"], answer["second"]) == (first, second)
                assert verify_consistency(first, second, bytes.fromhex(heads[first]["root_hash"]),
                                          bytes.fromhex(heads[second]["root_hash"]),
                                          [bytes.fromhex(h) for h in answer["proof"]])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tree-head?tree_size=-1", "tree_size"), ("tree-head?tree_size=abc", "tree_size"),
        ("tree-head?tree_size=100000", "tree_size"), ("tree-head?tree_size=99999999999999999999", "tree_size"),
        ("consistency?first=0&second=3", "first"), ("consistency?first=3&second=2", "first"),
        ("consistency?first=1&second=100000", "second"), ("consistency?second=3", "first"),
        ("consistency?first=1.5&second=3", "first"),
    ],
)
@pytest.mark.backends("memory")
def test_bad_sizes_are_named_422s(services: Services, query: str, field: str) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        api.community()
        response = api.call("GET", f"/v1/public/transparency/{query}")
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in json.dumps(error["details"])


def test_a_holder_proves_each_entry_is_in_the_signed_log_and_sees_its_own_amount(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _world(api)
        volunteer = world["volunteer"]
        entries = api.ok("GET", f"/v1/accounts/{volunteer['id']}/entries", volunteer["token"])["items"]
        assert len(entries) == 2
        head = api.ok("GET", "/v1/public/transparency/tree-head")
        for entry in entries:
            path = f"/v1/accounts/{volunteer['id']}/entries/{entry['entry_id']}/proof"
            proof = _proved(api, path, volunteer["token"], head)
            assert proof["entry_id"] == entry["entry_id"] and proof["tree_size"] == head["tree_size"]
            assert proof["position"] == int(entry["entry_id"].split(".")[0])
            canonical = base64.b64decode(proof["canonical_base64"])
            assert b"jindou-chain-v1" in canonical
            assert volunteer["id"].encode() in canonical and str(abs(entry["amount"])).encode() in canonical
            for reader in (world["staff"]["token"], world["auditor"]["token"], ADMIN_TOKEN):
                assert api.ok("GET", f"{path}?tree_size={head['tree_size']}", reader)["audit_path"] == proof["audit_path"]
            # Proved again in a later, larger tree: the same leaf, a path to the new root.
            api.earn(world["other"], world["staff"]["token"])
            later = api.ok("GET", "/v1/public/transparency/tree-head")
            assert _proved(api, path, volunteer["token"], later)["leaf_hash"] == proof["leaf_hash"]
            # Default: the tree as it is now.
            assert api.ok("GET", path, volunteer["token"])["tree_size"] == later["tree_size"]
            too_early = api.call("GET", f"{path}?tree_size={proof['leaf_index']}", volunteer["token"])
            assert too_early.status_code == 422 and too_early.json()["error"]["details"]["field"] == "tree_size"


def test_entry_proofs_are_read_like_the_entries(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _world(api)
        volunteer, other = world["volunteer"], world["other"]
        entry_id = api.ok("GET", f"/v1/accounts/{volunteer['id']}/entries", volunteer["token"])["items"][0]["entry_id"]
        other_entry = api.ok("GET", f"/v1/accounts/{other['id']}/entries", other["token"])["items"][0]["entry_id"]
        path = f"/v1/accounts/{volunteer['id']}/entries"
        assert api.call("GET", f"{path}/{entry_id}/proof").status_code == 401
        assert api.call("GET", f"{path}/{entry_id}/proof", other["token"]).status_code == 403
        elsewhere = api.staff(api.community(name="别的社区")["id"])
        assert api.call("GET", f"{path}/{entry_id}/proof", elsewhere["token"]).status_code == 403
        for unknown in (other_entry, "999999.0", "1.999", "x.y", "1", "1.2.3", "9" * 30 + ".0"):
            response = api.call("GET", f"{path}/{unknown}/proof", volunteer["token"])
            assert response.status_code == 404, (unknown, response.text)
            assert response.json()["error"]["code"] == "not_found"
        assert api.call("GET", f"/v1/accounts/nope/entries/{entry_id}/proof", ADMIN_TOKEN).status_code == 404


def test_every_public_fund_report_carries_the_signed_head_at_its_cut_off(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        world = _world(api)
        community_id = world["community"]["id"]
        period = datetime.now(ZoneInfo(COMMUNITY_TIMEZONE)).strftime("%Y-%m")
        base = f"/v1/public/communities/{community_id}/fund-reports/{period}"
        report = api.ok("GET", base)
        head = report["tree_head"]
        assert set(head) == {"tree_size", "root_hash", "timestamp", "key_id", "signature"}
        assert head["tree_size"] == report["events_count"] and head_problem(head, _keys(api)) is None
        assert head == api.ok("GET", f"/v1/public/transparency/tree-head?tree_size={head['tree_size']}")
        assert api.ok("GET", base)["tree_head"] == head  # the same signed statement every time
        rows = list(csv.reader(io.StringIO(api.call("GET", base + ".csv").text)))
        assert json.loads(dict(row for row in rows if len(row) == 2)["tree_head"]) == head
        page = api.call("GET", base + ".html").text
        assert head["root_hash"] in page and head["signature"] in page and "默克尔树" in page
        assert "Merkle tree" in api.call("GET", base + ".html?lang=en").text


def test_replay_rebuilds_the_same_tree(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        _world(api)
    report = replay_and_compare(services.app, services.store)
    assert report.ok, [t for t in report.tables if t.count]
    assert {"transparency_leaves", "transparency_nodes"} <= {t.table for t in report.tables}
