"""The writer hands every command private copies of the aggregates it loads, so a refused
command changes nothing for the next. `private_copy` does what `deepcopy` did, faster: checked
here on every aggregate three demo months leave behind."""

from __future__ import annotations

from copy import deepcopy
from typing import Any
from uuid import UUID

import pytest

from api.demo import SMALL, populate
from domain.writer import private_copy
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN
from tests.test_demo import DEMO_NOW

CONTAINERS = (list, dict, set)


def _containers(value: Any) -> list[Any]:
    """`value` and every list, dict and set inside it."""
    found = [value] if isinstance(value, CONTAINERS) else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found += _containers(item)
    return found


@pytest.mark.backends("memory")
def test_a_private_copy_equals_a_deep_copy_and_shares_nothing_changeable(database_url: str) -> None:
    services = build_services(Settings(database_url=database_url))  # empty, as the demo wants it
    populate(services, ADMIN_TOKEN, size=SMALL, now=DEMO_NOW)
    recorder = services.app.recorder
    ids = {UUID(str(n.originator_id)) for n in recorder.select_notifications(start=0, limit=10**6)}
    kinds = set()
    for aggregate_id in ids:
        original = services.app.repository.get(aggregate_id)
        copied, deep = private_copy(original), deepcopy(original)
        assert type(copied) is type(original) and vars(copied) == vars(deep) == vars(original), aggregate_id
        originals = {id(c) for c in _containers(list(vars(original).values()))[1:]}
        assert not originals & {id(c) for c in _containers(list(vars(copied).values()))[1:]}, type(original)
        kinds.add(type(original).__name__)
    assert {"Account", "Report", "Card", "Credential", "IdempotencyRecord"} <= kinds, kinds
    services.close()



@pytest.mark.backends("memory")
def test_an_event_is_stored_as_it_was_decided(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Aggregates keep lists and dicts their events carry (`self.funded = funded`). One changed in
    place by a later command of the same group would change the event before it is encoded and
    stored, and the writer projects the events it holds (decision 0027). So every event is
    encoded as it is triggered and again as it is saved: the same bytes, for three demo months."""
    from eventsourcing.domain import BaseAggregate

    from domain.writer import Writer

    services = build_services(Settings(database_url=database_url))
    transcoder = services.app.mapper.transcoder
    as_decided: dict[int, tuple[Any, bytes]] = {}
    checked: list[Any] = []
    create, trigger, save = BaseAggregate._create.__func__, BaseAggregate.trigger_event, Writer._save  # type: ignore[attr-defined]

    def decided(aggregate: BaseAggregate[Any]) -> None:
        event = aggregate.pending_events[-1]
        as_decided[id(event)] = (event, transcoder.encode(vars(event)))  # the event too: its id stays its own

    def created(cls: type[BaseAggregate[Any]], *args: Any, **kwargs: Any) -> BaseAggregate[Any]:
        aggregate = create(cls, *args, **kwargs)
        decided(aggregate)
        return aggregate

    def triggered(self: BaseAggregate[Any], *args: Any, **kwargs: Any) -> None:
        trigger(self, *args, **kwargs)
        decided(self)

    def saved(self: Writer, events: list[Any], aggregates: Any, *rest: Any, **options: Any) -> Any:
        for event in events:
            assert transcoder.encode(vars(event)) == as_decided.pop(id(event))[1], f"{type(event).__qualname__} changed"
        checked.extend(events)
        return save(self, events, aggregates, *rest, **options)

    monkeypatch.setattr(BaseAggregate, "_create", classmethod(created))
    monkeypatch.setattr(BaseAggregate, "trigger_event", triggered)
    monkeypatch.setattr(Writer, "_save", saved)
    try:
        populate(services, ADMIN_TOKEN, size=SMALL, now=DEMO_NOW)
    finally:
        services.close()
    assert len(checked) > 1_000 and len({type(event) for event in checked}) > 20
