"""docs/architecture.md lists every event the domain can record, so the catalogue stays true."""

from __future__ import annotations

import inspect
import re
import sqlite3
from pathlib import Path

import psycopg
import pytest

from eventsourcing.domain import Aggregate

import domain.application  # noqa: F401 — imports every aggregate module
from infra.wiring import Services
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


OPERATIONS = ARCHITECTURE.with_name("operations.md")
TABLE_LISTS = {"postgres": "- PostgreSQL event store", "sqlite": "- SQLite event store", "both": "- Read model, both backends",
               "state": "- Not derived from events, both backends"}


def _documented_tables(lead: str) -> set[str]:
    """The backticked names of one bullet of the Tables section (it may run over several lines)."""
    section = OPERATIONS.read_text(encoding="utf-8").split("## Tables", 1)[1].split("\n## ", 1)[0]
    bullet = section.split(lead, 1)[1].split("\n- ", 1)[0]
    return set(re.findall(r"`([a-z_]+)`", bullet))


@pytest.mark.backends("sqlite", "postgres")
def test_operations_names_exactly_the_tables_that_exist(services: Services) -> None:
    if services.settings.backend == "sqlite":
        with sqlite3.connect(services.settings.database_url[len("sqlite:///"):]) as connection:
            found = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    else:
        with psycopg.connect(services.settings.database_url) as connection:
            found = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    documented = set().union(*(_documented_tables(TABLE_LISTS[part]) for part in (services.settings.backend, "both", "state")))
    assert documented == found, f"docs/operations.md lists {sorted(documented - found)} that do not exist " \
                                f"and misses {sorted(found - documented)}"
