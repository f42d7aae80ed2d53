"""The Merkle tree and its proofs (RFC 9162 section 2.1), against public test vectors and by property.

Known answers transcribed from transparency-dev/merkle (the Go library behind Trillian and the
CT logs), testonly/constants.go (leaf inputs, node and root hashes) and
testonly/reference_test.go (inclusion and consistency proofs), Apache-2.0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from infra.wiring import build_services, memory_read_store
from projections import transparency
from projections.chain import canonical_bytes
from projections.store import Cursor
from projections.transparency import Frontier, TransparencyProjection
from tests.audit_history import make_history
from tests.conftest import ADMIN_TOKEN
from tools.verify_jindou import EMPTY_ROOT_HEX, leaf_hash, node_hash, verify_consistency, verify_inclusion

LEAF_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
NODES = {  # (level, index) → hash of the perfect subtree
    (0, 0): "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    (0, 1): "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    (0, 2): "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    (0, 3): "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    (0, 4): "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    (0, 5): "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    (0, 6): "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    (0, 7): "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 1): "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (1, 3): "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (2, 1): "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    (3, 0): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (0, 2, [NODES[(0, 1)]]),
    (1, 2, [NODES[(0, 0)]]),
    (2, 3, [NODES[(1, 0)]]),
    (1, 5, [NODES[(0, 0)], NODES[(1, 1)], NODES[(0, 4)]]),
    (0, 8, [NODES[(0, 1)], NODES[(1, 1)], NODES[(2, 1)]]),
    (5, 8, [NODES[(0, 4)], NODES[(1, 3)], NODES[(2, 0)]]),
]
CONSISTENCY = [  # (first size, second size, proof)
    (1, 1, []),
    (1, 8, [NODES[(0, 1)], NODES[(1, 1)], NODES[(2, 1)]]),
    (2, 5, [NODES[(1, 1)], NODES[(0, 4)]]),
    (6, 8, [NODES[(1, 2)], NODES[(1, 3)], NODES[(2, 0)]]),
]
PROPERTY_TREE_SIZE_MAX = 70  # crosses 64, so proofs of seven levels and uneven right edges are covered


@contextmanager
def _stored_tree(leaf_hashes: Sequence[bytes]) -> Iterator[Cursor]:
    """The tables a projection would have written for these leaves, in an in-memory read store."""
    store = memory_read_store()
    store.create_tables(TransparencyProjection.tables)
    frontier = Frontier()
    with store.transaction(commit=True) as cursor:
        for index, hashed in enumerate(leaf_hashes):
            cursor.execute("INSERT INTO transparency_leaves VALUES (?, ?, ?)", (index, index + 1, "2026-01-01T00:00:00+00:00"))
            cursor.executemany("INSERT INTO transparency_nodes VALUES (?, ?, ?)",
                               [(level, node, h.hex()) for level, node, h in frontier.append(hashed)])
    try:
        with store.read() as cursor:
            yield cursor
    finally:
        store.close()


@pytest.fixture
def vector_tree() -> Iterator[Cursor]:
    with _stored_tree([leaf_hash(data) for data in LEAF_INPUTS]) as cursor:
        yield cursor


def test_leaf_and_node_hashes_are_the_published_ones(vector_tree: Cursor) -> None:
    stored = {(int(r["level"]), int(r["node_index"])): r["hash"] for r in vector_tree.all("SELECT * FROM transparency_nodes")}
    assert stored == NODES


def test_roots_of_every_size_are_the_published_ones(vector_tree: Cursor) -> None:
    assert EMPTY_ROOT_HEX == ROOTS[0]
    assert [transparency.root_hash(vector_tree, size) for size in range(len(ROOTS))] == ROOTS
    frontier = Frontier()
    assert frontier.root_hex() == ROOTS[0]
    for size, data in enumerate(LEAF_INPUTS, start=1):
        frontier.append(leaf_hash(data))
        assert frontier.root_hex() == ROOTS[size]


@settings(max_examples=200, deadline=None)
@given(before=st.integers(0, 70), runs=st.lists(st.integers(0, 40), max_size=4))
def test_extending_by_a_run_makes_the_nodes_appending_one_by_one_makes(before: int, runs: list[int]) -> None:
    """`extend` (verify's, a level at a time) against `append` (the projection's): the same nodes at
    the same indexes, the same frontier after every run, from any size (the published roots too)."""
    leaves = [leaf_hash(str(number).encode()) for number in range(before + sum(runs))]
    one_by_one, at_once = Frontier(), Frontier()
    for leaf in leaves[:before]:
        one_by_one.append(leaf)
        at_once.append(leaf)
    done = before
    for run in runs:
        completed = [node for leaf in leaves[done:done + run] for node in one_by_one.append(leaf)]
        made = at_once.extend(leaves[done:done + run])
        assert sorted(completed) == sorted((level, first + offset, hashed) for level, (first, hashes) in enumerate(made)
                                           for offset, hashed in enumerate(hashes))
        assert at_once == one_by_one and at_once.root_hex() == one_by_one.root_hex()
        done += run


@pytest.mark.parametrize("split", range(len(LEAF_INPUTS) + 1))
def test_extending_in_two_runs_makes_the_published_nodes_and_roots(split: int) -> None:
    frontier, nodes = Frontier(), {}
    for run in (LEAF_INPUTS[:split], LEAF_INPUTS[split:]):
        for level, (first, hashes) in enumerate(frontier.extend([leaf_hash(data) for data in run])):
            nodes.update({(level, first + offset): hashed.hex() for offset, hashed in enumerate(hashes)})
        assert frontier.root_hex() == ROOTS[frontier.size]
    assert nodes == NODES


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_are_the_published_ones(vector_tree: Cursor, index: int, size: int, path: list[str]) -> None:
    assert transparency.inclusion_proof(vector_tree, index, size) == path
    assert verify_inclusion(index, size, leaf_hash(LEAF_INPUTS[index]), [bytes.fromhex(h) for h in path],
                            bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_are_the_published_ones(vector_tree: Cursor, first: int, second: int, proof: list[str]) -> None:
    assert transparency.consistency_proof(vector_tree, first, second) == proof
    assert verify_consistency(first, second, bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second]),
                              [bytes.fromhex(h) for h in proof])


def test_verifiers_refuse_wrong_proofs() -> None:
    root8, root6 = bytes.fromhex(ROOTS[8]), bytes.fromhex(ROOTS[6])
    path = [bytes.fromhex(NODES[(0, 4)]), bytes.fromhex(NODES[(1, 3)]), bytes.fromhex(NODES[(2, 0)])]
    leaf5 = leaf_hash(LEAF_INPUTS[5])
    assert verify_inclusion(5, 8, leaf5, path, root8)
    assert not verify_inclusion(4, 8, leaf5, path, root8)  # another index
    assert not verify_inclusion(5, 6, leaf5, path, root8)  # another size
    assert not verify_inclusion(5, 8, leaf5, path[:2], root8)  # too short
    assert not verify_inclusion(5, 8, leaf5, [*path, path[0]], root8)  # too long
    assert not verify_inclusion(8, 8, leaf5, path, root8)  # outside the tree
    proof = [bytes.fromhex(h) for h in CONSISTENCY[3][2]]
    assert not verify_consistency(6, 8, root8, root8, proof)
    assert not verify_consistency(6, 8, root6, root8, proof[:2])
    assert not verify_consistency(6, 8, root6, root8, [])
    assert not verify_consistency(0, 8, root6, root8, proof)
    assert not verify_consistency(8, 6, root8, root6, proof)


def _reference_root(hashes: Sequence[bytes]) -> bytes:
    """RFC 9162's MTH written as the RFC writes it, to check the stored, folded roots against."""
    if len(hashes) == 1:
        return hashes[0]
    middle = transparency.split_point(len(hashes))
    return node_hash(_reference_root(hashes[:middle]), _reference_root(hashes[middle:]))


@settings(max_examples=25, deadline=None)
@given(leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=PROPERTY_TREE_SIZE_MAX), data=st.data())
def test_every_inclusion_and_consistency_proof_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    with _stored_tree(hashes) as cursor:
        second = data.draw(st.integers(1, len(leaves)), label="second")
        first = data.draw(st.integers(1, second), label="first")
        index = data.draw(st.integers(0, second - 1), label="index")
        second_root = transparency.root_hash(cursor, second)
        assert second_root == _reference_root(hashes[:second]).hex()
        path = [bytes.fromhex(h) for h in transparency.inclusion_proof(cursor, index, second)]
        assert verify_inclusion(index, second, hashes[index], path, bytes.fromhex(second_root))
        proof = [bytes.fromhex(h) for h in transparency.consistency_proof(cursor, first, second)]
        first_root = bytes.fromhex(transparency.root_hash(cursor, first))
        assert verify_consistency(first, second, first_root, bytes.fromhex(second_root), proof)


@settings(max_examples=25, deadline=None)
@given(leaves=st.lists(st.binary(min_size=1, max_size=8), min_size=2, max_size=PROPERTY_TREE_SIZE_MAX), data=st.data())
def test_any_changed_byte_breaks_inclusion_or_consistency(leaves: list[bytes], data: st.DataObject) -> None:
    """An earlier head (first) was published; then one byte of one of its events changed."""
    first = data.draw(st.integers(1, len(leaves)), label="first")
    second = data.draw(st.integers(first, len(leaves)), label="second")
    altered_index = data.draw(st.integers(0, first - 1), label="altered leaf")
    byte = data.draw(st.integers(0, len(leaves[altered_index]) - 1), label="byte")
    published_root = _reference_root([leaf_hash(leaf) for leaf in leaves[:first]])
    tampered = list(leaves)
    changed = bytearray(tampered[altered_index])
    changed[byte] ^= data.draw(st.integers(1, 255), label="xor")
    tampered[altered_index] = bytes(changed)
    hashes = [leaf_hash(leaf) for leaf in tampered]
    with _stored_tree(hashes) as cursor:  # the rewritten log, its tree rebuilt to match
        new_root = bytes.fromhex(transparency.root_hash(cursor, second))
        proof = [bytes.fromhex(h) for h in transparency.consistency_proof(cursor, first, second)]
        assert not verify_consistency(first, second, published_root, new_root, proof)
        # The holder recomputes the leaf from the event's bytes as the store now holds them.
        path = [bytes.fromhex(h) for h in transparency.inclusion_proof(cursor, altered_index, first)]
        assert not verify_inclusion(altered_index, first, hashes[altered_index], path, published_root)


@pytest.fixture(scope="module")
def recorded_events() -> Iterator[list[bytes]]:
    """The canonical bytes of a real history's events (a community, people, beans earned and given)."""
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        make_history(services, seed=11, steps=8)
        yield [canonical_bytes(n) for n in services.app.recorder.select_notifications(start=1, limit=10_000)]
    finally:
        services.close()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_changed_byte_of_any_recorded_event_breaks_the_published_head(recorded_events: list[bytes],
                                                                         data: st.DataObject) -> None:
    """Real events: a head published after `first` of them; any one byte of any of those events
    changed and the tree rebuilt to match: neither its consistency proof nor the event's inclusion
    proof verifies against the published root."""
    first = data.draw(st.integers(1, len(recorded_events)), label="published size")
    altered = data.draw(st.integers(0, first - 1), label="event")
    byte = data.draw(st.integers(0, len(recorded_events[altered]) - 1), label="byte")
    published_root = _reference_root([leaf_hash(e) for e in recorded_events[:first]])
    tampered = list(recorded_events)
    changed = bytearray(tampered[altered])
    changed[byte] ^= data.draw(st.integers(1, 255), label="xor")
    tampered[altered] = bytes(changed)
    hashes = [leaf_hash(e) for e in tampered]
    with _stored_tree(hashes) as cursor:
        second = len(hashes)
        proof = [bytes.fromhex(h) for h in transparency.consistency_proof(cursor, first, second)]
        assert not verify_consistency(first, second, published_root,
                                      bytes.fromhex(transparency.root_hash(cursor, second)), proof)
        path = [bytes.fromhex(h) for h in transparency.inclusion_proof(cursor, altered, first)]
        assert not verify_inclusion(altered, first, hashes[altered], path, published_root)
