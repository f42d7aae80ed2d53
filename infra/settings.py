"""Settings from the environment, and the translation of JINDOU_DATABASE_URL into the
eventsourcing library's own environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from domain.welfare import WELFARE_MONTHS_AHEAD_DEFAULT, WELFARE_MONTHS_AHEAD_SETTING
from infra.persistence import STATEMENT_TIMEOUT_SETTING

DEFAULT_DATABASE_URL = "sqlite:///./jindou.db"

# One FastAPI worker thread per database connection we may hold, plus headroom for the
# projector; the pool never makes a request wait on a connection the threadpool cannot get.
SERVER_THREADS = 16
POSTGRES_POOL_SIZE = 8
POSTGRES_MAX_OVERFLOW = 12
POSTGRES_LOCK_TIMEOUT_S = 5  # a stuck writer cannot hold the event table's lock for ever
POSTGRES_POOL_WAIT_S = 1  # a request waits this long for a connection, then answers 503
POSTGRES_PERSISTENCE = "infra.persistence:FailFastPostgresFactory"
POSTGRES_STATEMENT_TIMEOUT_MS = 5_000  # a request's statement; the audit commands have none
SQLITE_LOCK_TIMEOUT_S = 10
AGGREGATE_CACHE_MAXSIZE = 20_000


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    admin_token: str | None = None
    server_threads: int = SERVER_THREADS
    metrics_token: str | None = None  # when set, GET /metrics wants `Authorization: Bearer` with it
    public_url: str | None = None  # JINDOU_PUBLIC_URL: the origin of sign-in URLs (else each request's own)
    card_secret: str | None = None  # JINDOU_CARD_SECRET: hex; see infra/card_secret.py
    welfare_months_ahead: int = WELFARE_MONTHS_AHEAD_DEFAULT
    transparency_key_file: str | None = None  # None: the default beside the database (infra/transparency.py)
    transparency_retired_keys: tuple[str, ...] = ()  # base64 public keys of rotated-out signing keys
    statement_timeout_ms: int = POSTGRES_STATEMENT_TIMEOUT_MS  # 0: none

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        return cls(
            database_url=environ.get("JINDOU_DATABASE_URL") or DEFAULT_DATABASE_URL,
            admin_token=environ.get("JINDOU_ADMIN_TOKEN") or None,
            server_threads=int(environ.get("JINDOU_SERVER_THREADS") or SERVER_THREADS),
            metrics_token=environ.get("JINDOU_METRICS_TOKEN") or None,
            public_url=(environ.get("JINDOU_PUBLIC_URL") or "").rstrip("/") or None,
            card_secret=environ.get("JINDOU_CARD_SECRET") or None,
            welfare_months_ahead=_whole_number(environ, "JINDOU_WELFARE_MONTHS_AHEAD", WELFARE_MONTHS_AHEAD_DEFAULT),
            transparency_key_file=environ.get("JINDOU_TRANSPARENCY_KEY_FILE") or None,
            transparency_retired_keys=tuple(
                key for key in (environ.get("JINDOU_TRANSPARENCY_RETIRED_KEYS") or "").split(",") if key.strip()
            ),
        )

    @property
    def backend(self) -> str:
        return backend_of(self.database_url)

    def application_env(self) -> dict[str, str]:
        """The application's environment: persistence, and the rules' settings."""
        return persistence_env(self.database_url) | {
            WELFARE_MONTHS_AHEAD_SETTING: str(self.welfare_months_ahead),
            STATEMENT_TIMEOUT_SETTING: str(self.statement_timeout_ms),
        }


def _whole_number(environ: dict[str, str], name: str, default: int) -> int:
    text = environ.get(name) or str(default)
    if not text.isdigit():
        raise SettingsError(f"{name} must be a whole number, not {text!r}")
    return int(text)


def backend_of(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("sqlite", "memory"):
        return scheme
    raise SettingsError(f"JINDOU_DATABASE_URL must start sqlite:///, postgresql:// or memory://, not {url!r}")


def persistence_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for a database URL."""
    backend = backend_of(url)
    common = {"AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_MAXSIZE), "CREATE_TABLE": "y"}
    if backend == "memory":
        return common | {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    parts = urlsplit(url)
    if backend == "sqlite":
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if not path:
            raise SettingsError("a SQLite URL names a file: sqlite:///./jindou.db or sqlite:////var/lib/jindou.db")
        return common | {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
            "APPLICATION_RECORDER_TOPIC": "infra.in_transaction:ProjectingSQLiteApplicationRecorder",
        }
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise SettingsError("a PostgreSQL URL names a database: postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
    return common | {
        "PERSISTENCE_MODULE": POSTGRES_PERSISTENCE,
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": query.get("schema", ""),
        "POSTGRES_POOL_SIZE": str(POSTGRES_POOL_SIZE),
        "POSTGRES_MAX_OVERFLOW": str(POSTGRES_MAX_OVERFLOW),
        "POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_POOL_WAIT_S),  # the library's name for the pool wait
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_LOCK_TIMEOUT": str(POSTGRES_LOCK_TIMEOUT_S),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",  # one round trip per insert...
        # ...through our function that keeps the table lock, so ids commit in order (decision 0016)
        "APPLICATION_RECORDER_TOPIC": "infra.postgres_recorder:OrderedPostgresApplicationRecorder",
    }
