"""docs/architecture.md lists every event the domain can record, so the catalogue stays true."""

from __future__ import annotations

import inspect
from pathlib import Path

from eventsourcing.domain import Aggregate

import domain.application  # noqa: F401 — imports every aggregate module
from projections.ledger import TRANSACTION_TYPES

LIBRARY_BASE_EVENTS = ("Event", "Created")  # generated bases; never recorded themselves
ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def _event_names() -> set[str]:
    names = set()
    for cls in _aggregate_classes(Aggregate):
        for attribute in vars(cls).values():
            if (
                inspect.isclass(attribute) and issubclass(attribute, Aggregate.Event)
                and attribute.__module__.startswith("domain")
                and attribute.__name__ not in LIBRARY_BASE_EVENTS
            ):
                names.add(attribute.__qualname__)
    return names


def _aggregate_classes(base: type) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        if sub.__module__.startswith("domain."):
            found.append(sub)
        found.extend(_aggregate_classes(sub))
    return found


def test_every_event_is_in_the_architecture_catalogue() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    names = _event_names()
    assert len(names) > 30
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/architecture.md does not list: {missing}"


def test_every_transaction_type_is_documented_with_its_event() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    for event_name, statement_type in TRANSACTION_TYPES.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{event_name}`")), None)
        assert row is not None and f"`{statement_type}`" in row, event_name
