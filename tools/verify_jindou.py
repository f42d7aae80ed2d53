#!/usr/bin/env python3
"""Check a Jindou deployment's transparency log from the outside, without installing Jindou.

Needs Python 3.11+ and the `cryptography` package (for Ed25519), nothing else:

    python verify_jindou.py https://jindou.example.org --save head.json
        fetches the signing key and the current signed tree head, checks the signature, and
        (with --save) keeps the head so a later run can prove that nothing before it changed;
    python verify_jindou.py https://jindou.example.org --published head.json report.json ...
        also checks each kept head (a saved head, or a saved public fund report whose
        `tree_head` it reads): its signature, and the log's consistency proof from it to now,
        so a log that rewrote anything those heads covered fails;
    python verify_jindou.py URL --token TOKEN --account ID --entry ENTRY_ID
        also fetches the inclusion proof of one of your statement entries, recomputes its leaf
        hash from the event's bytes and checks it against the signed head.

Exit code 0 when everything verifies, 1 when anything does not (it says what), 2 on bad usage
or when the server cannot be reached. The Merkle tree is RFC 9162 section 2.1; the signed text
is `jindou-tree-head-v1\\n{tree_size}\\n{root_hash}\\n{timestamp}`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

TREE_HEAD_TAG = "jindou-tree-head-v1"
EMPTY_ROOT_HEX = hashlib.sha256(b"").hexdigest()
HTTP_TIMEOUT_S = 30


# ---------------------------------------------------------------------------------------------
# RFC 9162 section 2.1: hashes and the two proof verifications.


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= leaf_index < tree_size:
        return False
    index, last, hashed = leaf_index, tree_size - 1, leaf
    for sibling in path:
        if last == 0:
            return False
        if index & 1 or index == last:
            hashed = node_hash(sibling, hashed)
            while not index & 1 and index != 0:
                index, last = index >> 1, last >> 1
        else:
            hashed = node_hash(hashed, sibling)
        index, last = index >> 1, last >> 1
    return last == 0 and hashed == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2 (equal sizes: an empty proof and equal roots)."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a node of the second
        path.insert(0, first_root)
    index, last = first - 1, second - 1
    while index & 1:
        index, last = index >> 1, last >> 1
    first_hash = second_hash = path[0]
    for node in path[1:]:
        if last == 0:
            return False
        if index & 1 or index == last:
            first_hash, second_hash = node_hash(node, first_hash), node_hash(node, second_hash)
            while not index & 1 and index != 0:
                index, last = index >> 1, last >> 1
        else:
            second_hash = node_hash(second_hash, node)
        index, last = index >> 1, last >> 1
    return first_hash == first_root and second_hash == second_root and last == 0


# ---------------------------------------------------------------------------------------------
# Signed tree heads.


def tree_head_message(tree_size: int, root_hash: str, timestamp: str) -> bytes:
    return f"{TREE_HEAD_TAG}\n{tree_size}\n{root_hash}\n{timestamp}".encode()


def key_id_of(public_key: bytes) -> str:
    """A key's id: the SHA-256 of its raw 32 bytes, in hex."""
    return hashlib.sha256(public_key).hexdigest()


def public_keys_of(key_answer: Mapping[str, Any]) -> dict[str, bytes]:
    """Key id → raw key, from GET /v1/public/transparency/key (the current key and retired ones)."""
    keys = {}
    for entry in [key_answer, *key_answer.get("retired", [])]:
        if entry.get("algorithm") != "ed25519":
            continue
        raw = base64.b64decode(entry["public_key"])
        if key_id_of(raw) == entry.get("key_id"):
            keys[entry["key_id"]] = raw
    return keys


def head_problem(head: Mapping[str, Any], public_keys: Mapping[str, bytes]) -> str | None:
    """None when the head is well formed and signed by one of the keys; otherwise what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        tree_size, root_hash, timestamp = head["tree_size"], head["root_hash"], head["timestamp"]
        key = public_keys.get(head["key_id"])
        signature = base64.b64decode(head["signature"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        return f"not a tree head ({exc!r})"
    if type(tree_size) is not int or tree_size < 0 or not _is_hash_hex(root_hash) or not isinstance(timestamp, str):
        return "not a tree head (tree_size, root_hash or timestamp malformed)"
    if key is None:
        return f"signed by key {head['key_id']!r}, which the log does not list"
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, tree_head_message(tree_size, root_hash, timestamp))
    except InvalidSignature:
        return "the signature does not verify"
    return None


def _is_hash_hex(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def kept_head(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """A saved tree head, or the `tree_head` of a saved public fund report."""
    return document.get("tree_head", document)


# ---------------------------------------------------------------------------------------------
# Talking to a server.


class Unreachable(Exception):
    pass


def fetch(base_url: str, path: str, query: Mapping[str, Any] | None = None, token: str | None = None) -> Any:
    url = base_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 (the URL the user gave)
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"{url}: HTTP {exc.code} {exc.read()[:300]!r}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unreachable(f"{url}: {exc}") from exc


def check_consistent(base_url: str, older: Mapping[str, Any], newer: Mapping[str, Any]) -> str | None:
    first, second = older["tree_size"], newer["tree_size"]
    if first == 0:
        return None  # the empty tree is a prefix of every tree
    if first > second:
        return f"a kept head has {first} events, more than the log's {second} now: events were removed"
    answer = fetch(base_url, "/v1/public/transparency/consistency", {"first": first, "second": second})
    proof = [bytes.fromhex(h) for h in answer["proof"]]
    if not verify_consistency(first, second, bytes.fromhex(older["root_hash"]), bytes.fromhex(newer["root_hash"]), proof):
        return (f"the log of {second} events is not an extension of the kept head of {first} events: "
                "history that head covered was rewritten")
    return None


def check_entry(base_url: str, head: Mapping[str, Any], token: str, account_id: str, entry_id: str) -> str | None:
    path = f"/v1/accounts/{urllib.parse.quote(account_id)}/entries/{urllib.parse.quote(entry_id)}/proof"
    proof = fetch(base_url, path, {"tree_size": head["tree_size"]}, token)
    canonical = base64.b64decode(proof["canonical_base64"])
    leaf = leaf_hash(canonical)
    if leaf.hex() != proof["leaf_hash"]:
        return "the event's bytes do not hash to the leaf the log proves"
    path_hashes = [bytes.fromhex(h) for h in proof["audit_path"]]
    if not verify_inclusion(proof["leaf_index"], head["tree_size"], leaf, path_hashes, bytes.fromhex(head["root_hash"])):
        return f"entry {entry_id} is not in the signed tree of {head['tree_size']} events"
    return None


def run(args: argparse.Namespace, out: Any) -> int:
    keys = public_keys_of(fetch(args.url, "/v1/public/transparency/key"))
    head = fetch(args.url, "/v1/public/transparency/tree-head")
    problems = []
    if problem := head_problem(head, keys):
        problems.append(f"current head: {problem}")
    for name in args.published:
        with open(name, encoding="utf-8") as file:
            kept = kept_head(json.load(file))
        if problem := head_problem(kept, keys) or check_consistent(args.url, kept, head):
            problems.append(f"{name}: {problem}")
    if args.entry and not problems:
        if problem := check_entry(args.url, head, args.token, args.account, args.entry):
            problems.append(f"entry {args.entry}: {problem}")
    for problem in problems:
        out.write(f"FAILED {problem}\n")
    if problems:
        return 1
    out.write(f"OK: signed tree head of {head['tree_size']} events, root {head['root_hash']} at {head['timestamp']}\n")
    if args.published:
        out.write(f"OK: the log is consistent with {len(args.published)} kept head(s)\n")
    if args.entry:
        out.write(f"OK: entry {args.entry} is in the log\n")
    if args.save:
        with open(args.save, "w", encoding="utf-8") as file:
            json.dump(head, file, indent=2)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Jindou transparency log (RFC 9162 Merkle tree, Ed25519 heads).")
    parser.add_argument("url", help="the deployment's address, e.g. https://jindou.example.org")
    parser.add_argument("--published", nargs="+", default=[], metavar="FILE",
                        help="tree heads or public fund reports kept earlier: the log must extend each")
    parser.add_argument("--save", metavar="FILE", help="keep the verified current head in this file")
    parser.add_argument("--token", help="your wallet token (for --entry)")
    parser.add_argument("--account", help="your account id (for --entry)")
    parser.add_argument("--entry", help="an entry_id from your statement: prove it is in the log")
    args = parser.parse_args(argv)
    if args.entry and not (args.token and args.account):
        parser.error("--entry needs --token and --account")
    try:
        return run(args, sys.stdout)
    except (Unreachable, OSError, KeyError, ValueError) as exc:
        sys.stderr.write(f"verify_jindou: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
