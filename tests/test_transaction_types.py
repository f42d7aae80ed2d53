"""Every event that moves money has a statement type (projections/ledger.py `TRANSACTION_TYPES`):
the ledger projects an event by its postings, and a new kind of transaction is one line there
(docs/adding-a-transaction.md)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, DomainEvent, event

import domain
from domain.money import Asset, SystemAccount, encode_postings, system_account, transfer
from infra.settings import Settings
from infra.wiring import build_services
from projections.ledger import TRANSACTION_TYPES
from tests.conftest import ADMIN_TOKEN
from tests.support import new_app_community


def domain_event_classes() -> set[type[DomainEvent]]:
    """The event classes of every aggregate in the domain package."""
    found: set[type[DomainEvent]] = set()
    for module_info in pkgutil.iter_modules(domain.__path__, "domain."):
        module = importlib.import_module(module_info.name)
        for aggregate in vars(module).values():
            if inspect.isclass(aggregate) and issubclass(aggregate, Aggregate) and aggregate.__module__ == module.__name__:
                found.update(value for value in vars(aggregate).values()
                             if inspect.isclass(value) and issubclass(value, DomainEvent))
    return found


def test_every_domain_event_carrying_postings_has_a_statement_type() -> None:
    moving_money = {cls.__qualname__ for cls in domain_event_classes()
                    if "postings" in inspect.signature(cls).parameters}
    assert {"Donation.Made", "Report.Verified", "Wish.Pledged"} <= moving_money  # the discovery finds them
    assert moving_money - TRANSACTION_TYPES.keys() == set(), "add them to projections/ledger.py TRANSACTION_TYPES"
    assert TRANSACTION_TYPES.keys() - moving_money == set(), "no such event carries postings"


class Windfall(Aggregate):
    """A transaction someone forgot to give a statement type."""

    @event("Granted")
    def __init__(self, community_id: UUID, transaction_id: str, postings: list[dict[str, Any]]) -> None:
        self.community_id = community_id


def test_an_event_moving_money_without_a_statement_type_names_the_fix() -> None:
    services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
    try:
        community = new_app_community(services)
        volunteer = community.open("volunteer")
        postings = transfer(Asset.BEAN, system_account(community.id, SystemAccount.ISSUANCE), str(volunteer.account_id), 5)
        services.app.save(Windfall(community_id=community.id, transaction_id=str(uuid4()),
                                   postings=encode_postings(postings)))
        with pytest.raises(LookupError, match=r"Windfall\.Granted .*projections/ledger\.py TRANSACTION_TYPES"):
            services.projector.catch_up()
    finally:
        services.close()
