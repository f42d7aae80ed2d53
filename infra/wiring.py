"""Builds the one application (and its read model) a process uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from uuid import uuid4

from eventsourcing.popo import POPOFactory
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from domain.application import Jindou
from infra import card_secret, ratelimit
from infra.health import DatabaseHealth, PostgresProbe, Probe
from infra.persistence import FailFastPostgresFactory
from infra.settings import POSTGRES_PERSISTENCE, Settings
from infra.transparency import TreeSigner, load_or_create_signer
from projections import transparency
from projections.projector import Projector
from projections.registry import all_projections
from projections.store import ReadStore

START_UP_LOCK = 0x6A696E646F75 + 1  # PostgreSQL advisory lock key: one process creates tables at a time


@dataclass
class Services:
    settings: Settings
    app: Jindou
    projector: Projector
    health: DatabaseHealth = field(default_factory=lambda: DatabaseHealth(None))
    closed: bool = field(default=False)

    @property
    def store(self) -> ReadStore:
        return self.projector.store

    @cached_property
    def payment_code_guesses(self) -> ratelimit.FailureWindow:
        return ratelimit.FailureWindow(
            self.store, "payment_code", failures_max=ratelimit.PAYMENT_CODE_FAILURES_MAX,
            message="too many payment codes that are not valid; wait before trying again",
        )

    @cached_property
    def sign_in_guesses(self) -> ratelimit.FailureWindow:
        return ratelimit.FailureWindow(
            self.store, "sign_in_code", failures_max=ratelimit.SIGN_IN_CODE_FAILURES_MAX,
            message="too many sign-in codes that are not valid; wait before trying again",
        )

    @cached_property
    def signer(self) -> TreeSigner:
        """The transparency log's signing key, read (or made, on a new deployment) when first needed."""
        return load_or_create_signer(self.settings)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.health.close()
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


@contextmanager
def start_up_turn(env: dict[str, str]) -> Iterator[None]:
    """PostgreSQL cannot create the same tables from several processes at once ('tuple
    concurrently updated'), so processes starting together take turns: a session advisory lock
    held while the library and the read model create their tables."""
    if env["PERSISTENCE_MODULE"] != POSTGRES_PERSISTENCE:
        yield
        return
    import psycopg

    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"],
        connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]), autocommit=True,
    ) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (START_UP_LOCK,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (START_UP_LOCK,))


def build_services(settings: Settings, *, catch_up: bool = True) -> Services:
    """`catch_up=False` opens the store as found (audit commands must check before projecting)."""
    env = settings.application_env()
    configured_card_secret = card_secret.configured_secret(settings.card_secret)
    with start_up_turn(env):
        app = Jindou(env=env)
        projector = Projector(app, read_store_for(app), all_projections())
        projector.create_tables()
        projector.store.create_tables(ratelimit.TABLES + card_secret.TABLES)
    app.card_secret = card_secret.card_secret(configured_card_secret, projector.store)
    app.writer.read_model = projector
    if settings.admin_token:
        app.bootstrap_admin(settings.admin_token)
    if catch_up:
        transparency.backfill(projector)  # a read model older than the transparency log gets its tree
        projector.catch_up()
    health = DatabaseHealth(_probe(env, app), on_recovery=_pool_check(env, app))
    return Services(settings=settings, app=app, projector=projector, health=health)


def _pool_check(env: dict[str, str], app: Jindou) -> Callable[[], None] | None:
    """PostgreSQL's pool, told to test its idle connections when the database answers again."""
    if env["PERSISTENCE_MODULE"] != POSTGRES_PERSISTENCE:
        return None
    assert isinstance(app.factory, FailFastPostgresFactory)
    return app.factory.datastore.pool.check


def _probe(env: dict[str, str], app: Jindou) -> Probe | None:
    """How the health monitor asks the database; started by the served app (api/app.py)."""
    if env["PERSISTENCE_MODULE"] == POSTGRES_PERSISTENCE:
        return PostgresProbe(env)
    if isinstance(app.factory, POPOFactory):
        return None

    def ask_sqlite() -> None:
        app.recorder.max_notification_id()

    return ask_sqlite
