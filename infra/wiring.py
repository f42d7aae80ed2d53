"""Builds the one application (and its read model) a process uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import uuid4

from eventsourcing.popo import POPOFactory
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from domain.application import Jindou
from infra.settings import Settings, persistence_env
from projections.projector import Projector
from projections.registry import all_projections
from projections.store import ReadStore


@dataclass
class Services:
    settings: Settings
    app: Jindou
    projector: Projector
    closed: bool = field(default=False)

    @property
    def store(self) -> ReadStore:
        return self.projector.store

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.projector.store.close()
            self.app.close()


def memory_read_store() -> ReadStore:
    """With memory:// events, the read model lives in an in-memory SQLite database."""
    datastore = SQLiteDatastore(f"file:jindou-read-{uuid4().hex}?mode=memory&cache=shared")
    return ReadStore(SQLiteTrackingRecorder(datastore))


def read_store_for(app: Jindou) -> ReadStore:
    if isinstance(app.factory, POPOFactory):
        return memory_read_store()
    return ReadStore(app.factory.tracking_recorder())  # same database, so one transaction


def build_services(settings: Settings, *, catch_up: bool = True) -> Services:
    """`catch_up=False` opens the store as found (audit commands must check before projecting)."""
    app = Jindou(env=persistence_env(settings.database_url))
    projector = Projector(app, read_store_for(app), all_projections())
    projector.create_tables()
    if settings.admin_token:
        app.bootstrap_admin(settings.admin_token)
    if catch_up:
        projector.catch_up()
    return Services(settings=settings, app=app, projector=projector)
