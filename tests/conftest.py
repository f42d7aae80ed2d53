"""Fixtures: the same tests on memory, SQLite and PostgreSQL.

PostgreSQL: each test gets a fresh database on the server named by JINDOU_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres). Where no server answers, those tests
are skipped and say so — except under CI (JINDOU_REQUIRE_POSTGRES=1), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from infra.settings import Settings
from infra.wiring import Services, build_services

ADMIN_TOKEN = "test-admin-token"
POSTGRES_ADMIN_URL = os.environ.get("JINDOU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("memory", "sqlite", "postgres")


# What a deployment keeps by default in its working directory (`jindou serve` on SQLite, its
# signing key, and the PostgreSQL one's): a developer's own may be there, so no test may touch them.
DEPLOYMENT_FILES = ("jindou.db", "jindou.db-wal", "jindou.db-shm", "jindou.db.signing-key", "jindou-signing.key")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


@pytest.fixture(scope="session", autouse=True)
def _deployment_files_untouched() -> Iterator[None]:
    here = Path.cwd()
    before = {name: _stamp(here / name) for name in DEPLOYMENT_FILES}
    yield
    touched = [name for name in DEPLOYMENT_FILES if _stamp(here / name) != before[name]]
    assert not touched, f"the tests wrote {touched} in {here}, where a deployment keeps its own"


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (a tuple is not a list, nor a UUID its text)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(value, b[key]) for key, value in a.items())
    return bool(a == b)


@pytest.fixture(scope="session", autouse=True)
def _projected_as_decoded() -> Iterator[None]:
    """The writer projects its group's events as it decided them, not decoded back from their
    stored form (projections/projector.py `project_inserted`): that is only right while both are
    the same objects, which replay and audit read. Every group any test projects is checked."""
    from projections.projector import Projector

    differences: list[str] = []
    real = Projector.project_inserted

    def checked(self: Projector, raw: Any, notifications: Any, events: Any) -> bool:
        for notification, event in zip(notifications, events, strict=True):
            decoded = self.app.mapper.to_domain_event(notification)
            if not _same(vars(event), vars(decoded)) or type(event) is not type(decoded):
                differences.append(f"{type(event).__qualname__}: {vars(event)} decodes as {vars(decoded)}")
        return real(self, raw, notifications, events)

    Projector.project_inserted = checked  # type: ignore[method-assign]
    try:
        yield
    finally:
        Projector.project_inserted = real  # type: ignore[method-assign]
    assert not differences, differences[:5]


def _postgres_unavailable_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 — any failure means "no server here"
        return f"no PostgreSQL at {POSTGRES_ADMIN_URL}: {exc}"


_POSTGRES_REASON: list[str | None] = []


def require_postgres() -> None:
    if not _POSTGRES_REASON:
        _POSTGRES_REASON.append(_postgres_unavailable_reason())
    reason = _POSTGRES_REASON[0]
    if reason is None:
        return
    if os.environ.get("JINDOU_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL tests must run here: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


class PostgresDatabase:
    """A fresh, uniquely named database, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"jindou_test_{uuid.uuid4().hex[:16]}"
        parts = urlsplit(POSTGRES_ADMIN_URL)
        self.url = urlunsplit(parts._replace(path="/" + self.name))

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(statement)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    backend = getattr(request, "param", "memory")
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'jindou.db'}"
    else:
        require_postgres()
        database = PostgresDatabase()
        database.create()
        try:
            yield database.url
        finally:
            database.drop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Any test asking for `database_url` (directly or through `services`) runs on every backend;
    mark it `@pytest.mark.backends("sqlite", "postgres")` to choose."""
    if "database_url" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        backends = marker.args if marker else BACKENDS
        # PostgreSQL runs carry the `postgres` marker, so `pytest -m postgres` selects exactly them.
        params = [pytest.param(b, marks=pytest.mark.postgres) if b == "postgres" else b for b in backends]
        metafunc.parametrize("database_url", params, indirect=True, ids=list(backends))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run only on these backends (memory, sqlite, postgres)")


@pytest.fixture
def services(database_url: str, tmp_path) -> Iterator[Services]:
    key_file = str(tmp_path / "signing.key")  # never beside the working directory (PostgreSQL's default)
    built = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN, transparency_key_file=key_file))
    try:
        yield built
    finally:
        built.close()
