"""The hash chain: what is hashed, and that no change to history goes unnoticed downstream."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

from eventsourcing.persistence import Notification
from hypothesis import given
from hypothesis import strategies as st

from infra.wiring import Services, memory_read_store
from projections.chain import (
    GENESIS_HEX,
    ChainProjection,
    canonical_bytes,
    chain_head_at,
    chain_summary,
    link,
)
from projections.projector import Projector
from tests.audit_history import make_history

notifications = st.builds(
    Notification,
    id=st.integers(min_value=1, max_value=2**62),
    originator_id=st.uuids(),
    originator_version=st.integers(min_value=1, max_value=2**62),
    topic=st.text(min_size=1, max_size=40),
    state=st.binary(max_size=200),
)


def chain_of(events: list[Notification]) -> list[str]:
    hashes, prev = [], bytes(32)
    for event in events:
        prev = link(prev, event)
        hashes.append(prev.hex())
    return hashes


def test_a_link_is_sha256_of_the_previous_hash_and_the_canonical_bytes() -> None:
    event = Notification(id=7, originator_id=uuid4(), originator_version=3, topic="domain.donations:Donation.Made",
                         state=b'{"amount":4}')
    prev = hashlib.sha256(b"earlier").digest()
    assert link(prev, event) == hashlib.sha256(prev + canonical_bytes(event)).digest()
    assert canonical_bytes(event).startswith(b"\x00\x00\x00\x0fjindou-chain-v1")


def test_backends_spelling_of_an_originator_id_does_not_matter() -> None:
    originator = uuid4()
    as_uuid = Notification(id=1, originator_id=originator, originator_version=1, topic="t", state=b"{}")
    as_hex = Notification(id=1, originator_id=originator.hex, originator_version=1, topic="t", state=memoryview(b"{}"))  # type: ignore[arg-type]
    assert canonical_bytes(as_uuid) == canonical_bytes(as_hex)


def test_fields_cannot_bleed_into_each_other() -> None:
    originator = UUID(int=1)
    one = Notification(id=1, originator_id=originator, originator_version=1, topic="ab", state=b"c")
    other = Notification(id=1, originator_id=originator, originator_version=1, topic="a", state=b"bc")
    assert canonical_bytes(one) != canonical_bytes(other)


@given(st.lists(notifications, min_size=1, max_size=8), st.data())
def test_changing_any_field_of_any_event_changes_its_hash_and_every_later_one(events, data) -> None:
    before = chain_of(events)
    assert chain_of(events) == before  # deterministic
    index = data.draw(st.integers(min_value=0, max_value=len(events) - 1))
    original = events[index]
    field = data.draw(st.sampled_from(["id", "originator_id", "originator_version", "topic", "state"]))
    replacement = data.draw(
        {
            "id": st.integers(min_value=1, max_value=2**62),
            "originator_id": st.uuids(),
            "originator_version": st.integers(min_value=1, max_value=2**62),
            "topic": st.text(min_size=1, max_size=40),
            "state": st.binary(max_size=200),
        }[field].filter(lambda value: value != getattr(original, field))
    )
    changed = list(events)
    changed[index] = Notification(**{**vars(original), field: replacement})
    after = chain_of(changed)
    assert after[:index] == before[:index]
    assert all(a != b for a, b in zip(after[index:], before[index:], strict=True))


@given(st.lists(notifications, min_size=2, max_size=8, unique_by=lambda n: (n.topic, n.state)), st.data())
def test_removing_or_swapping_events_changes_the_head(events, data) -> None:
    head = chain_of(events)[-1]
    index = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    assert chain_of(events[:index] + events[index + 1:])[-1] != head
    swapped = events[:index] + [events[index + 1], events[index]] + events[index + 2:]
    assert chain_of(swapped)[-1] != head


def test_the_projection_chains_every_recorded_event_in_log_order(services: Services) -> None:
    make_history(services, seed=7, steps=6)
    services.projector.catch_up()
    stored = list(services.app.recorder.select_notifications(start=1, limit=10_000))
    expected = chain_of(stored)
    with services.store.read() as cursor:
        rows = cursor.all("SELECT * FROM audit_chain ORDER BY position")
        assert [int(r["position"]) for r in rows] == [n.id for n in stored]
        assert [r["hash"] for r in rows] == expected
        assert [(r["topic"], int(r["version"])) for r in rows] == [(n.topic, n.originator_version) for n in stored]
        assert chain_summary(cursor) == (len(stored), expected[-1])
        assert chain_head_at(cursor, 0) == GENESIS_HEX
        for event, hash_hex in zip(stored, expected, strict=True):
            assert chain_head_at(cursor, event.id) == hash_hex
        assert chain_head_at(cursor, stored[-1].id + 1_000) == expected[-1]


def test_the_chain_is_the_same_whatever_the_batch_size(services: Services) -> None:
    make_history(services, seed=8, steps=4)
    with services.store.read() as cursor:
        live = cursor.all("SELECT * FROM audit_chain ORDER BY position")
    for batch_size in (1, 3, 500):
        scratch = Projector(services.app, memory_read_store(), [ChainProjection()], batch_size=batch_size)
        scratch.create_tables()
        scratch.catch_up()
        with scratch.store.read() as cursor:
            assert cursor.all("SELECT * FROM audit_chain ORDER BY position") == live, batch_size
        scratch.store.close()
