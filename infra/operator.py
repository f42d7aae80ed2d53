"""What the operator does at the console: the first admin, backups and restores.

Backups: SQLite through its online backup API (a consistent copy while the server writes);
PostgreSQL through pg_dump's custom format and pg_restore (docs/operations.md). A restore goes only
into a store that does not exist yet (SQLite) or an empty database (PostgreSQL), so it can never
mix two histories; `jindou audit verify --published` with the last public reports is the check.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from domain.credentialing import IssueStaffSignInCode
from domain.errors import DomainError
from domain.ids import parse_id
from domain.people import CONSOLE, RegisterOperatorStaff, has_staff
from infra.settings import Settings, persistence_env
from infra.wiring import build_services

EXIT_OK, EXIT_PROBLEM, EXIT_UNUSABLE = 0, 1, 2
SQLITE_EVENTS_TABLE = "stored_events"  # the library names its SQLite tables without the app prefix
FIRST_ADMIN_HINT = (
    "No one can run this deployment yet: make the first admin with\n"
    "    jindou admin create --name 管理员\n"
    "(it prints a token once), or start once with JINDOU_ADMIN_TOKEN=SECRET."
)


def first_admin_hint(settings: Settings) -> str | None:
    """The sentence `jindou serve` prints once when there is no admin at all, else None."""
    if settings.admin_token or settings.backend == "memory":
        return None if settings.admin_token else FIRST_ADMIN_HINT
    services = build_services(dataclasses.replace(settings, admin_token=None), catch_up=False)
    try:
        return None if has_staff(services.app.recorder) else FIRST_ADMIN_HINT
    finally:
        services.close()


def create_admin(settings: Settings, *, name: str, community: str | None, role: str,
                 out: TextIO) -> tuple[int, str | None]:
    """Make the credential; print its token once. Returns the exit code and a sign-in code (24 h)
    for the new person's /staff page, which the command line shows as a QR code."""
    if settings.backend == "memory":
        out.write("jindou admin create: memory:// keeps nothing; name a SQLite or PostgreSQL database\n")
        return EXIT_UNUSABLE, None
    community_id = None
    if community is not None:
        community_id = parse_id(community)
        if community_id is None:
            out.write(f"jindou admin create: {community!r} is not a community id\n")
            return EXIT_UNUSABLE, None
    services = build_services(dataclasses.replace(settings, admin_token=None))
    try:
        registering = RegisterOperatorStaff(display_name=name, role=role, community_id=community_id)
        made = services.app.execute(registering, CONSOLE).result
        itself = services.app.authenticate(made["token"])
        assert itself is not None
        sign_in_code = services.app.execute(IssueStaffSignInCode(itself.principal_id), itself).result["code"]
    except DomainError as exc:
        out.write(f"jindou admin create: {exc}\n")
        return EXIT_UNUSABLE, None
    finally:
        services.close()
    where = f"community {made['community_name']} ({made['community_id']})" if made["community_id"] else "the whole deployment"
    out.write(
        f"{made['role']} {made['display_name']} ({made['id']}) for {where}.\n"
        f"Token (shown once; keep it like a password): {made['token']}\n"
        "Use it as `Authorization: Bearer <token>` or paste it into the /staff page.\n"
    )
    return EXIT_OK, sign_in_code


def _sqlite_path(settings: Settings) -> Path:
    return Path(persistence_env(settings.database_url)["SQLITE_DBNAME"])


def _postgres_dsn(settings: Settings) -> str:
    parts = urlsplit(settings.database_url)
    return parts._replace(scheme="postgresql", query="").geturl()


def _is_jindou_sqlite(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (SQLITE_EVENTS_TABLE,)).fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent snapshot even while a server writes."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()


def _missing(verb: str, tool: str, out: TextIO) -> bool:
    if shutil.which(tool) is not None:
        return False
    out.write(f"jindou {verb}: {tool} is not installed (Debian: apt-get install postgresql-client)\n")
    return True


def _ran(verb: str, command: list[str], out: TextIO) -> bool:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        out.write(f"jindou {verb}: {command[0]} failed: {done.stderr.strip()}\n")
    return done.returncode == 0


def run_backup(settings: Settings, target: Path, out: TextIO) -> int:
    if target.exists():
        out.write(f"jindou backup: {target} exists; name a new file\n")
        return EXIT_UNUSABLE
    if settings.backend == "memory":
        out.write("jindou backup: memory:// keeps nothing to back up\n")
        return EXIT_UNUSABLE
    if settings.backend == "sqlite":
        source = _sqlite_path(settings)
        if not _is_jindou_sqlite(source):
            out.write(f"jindou backup: {source} is not a Jindou store\n")
            return EXIT_UNUSABLE
        _copy_sqlite(source, target)
        out.write(f"backed up {source} to {target}\n")
        return EXIT_OK
    if _missing("backup", "pg_dump", out):
        return EXIT_UNUSABLE
    if not _ran("backup", ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _postgres_dsn(settings)], out):
        return EXIT_PROBLEM
    out.write(f"backed up {settings.database_url.split('@')[-1]} to {target} (pg_dump custom format)\n")
    return EXIT_OK


def run_restore(settings: Settings, source: Path, out: TextIO) -> int:
    if not source.is_file():
        out.write(f"jindou restore: {source} is not a file\n")
        return EXIT_UNUSABLE
    if settings.backend == "memory":
        out.write("jindou restore: memory:// keeps nothing; name a SQLite or PostgreSQL database\n")
        return EXIT_UNUSABLE
    if settings.backend == "sqlite":
        target = _sqlite_path(settings)
        if target.exists():
            out.write(f"jindou restore: {target} exists; restore into a new path (never over a live store)\n")
            return EXIT_UNUSABLE
        if not _is_jindou_sqlite(source):
            out.write(f"jindou restore: {source} is not a Jindou SQLite backup\n")
            return EXIT_UNUSABLE
        _copy_sqlite(source, target)
        out.write(f"restored {source} into {target}; now check it: jindou audit verify --published REPORT.json …\n")
        return EXIT_OK
    if _missing("restore", "pg_restore", out):
        return EXIT_UNUSABLE
    import psycopg

    dsn = _postgres_dsn(settings)
    try:
        with psycopg.connect(dsn, connect_timeout=10) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
    except psycopg.Error as exc:
        out.write(f"jindou restore: cannot open the target database ({exc}); create it empty first\n")
        return EXIT_UNUSABLE
    if tables and tables[0]:
        out.write("jindou restore: the target database is not empty; restore into a new, empty database\n")
        return EXIT_UNUSABLE
    if not _ran("restore", ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={dsn}", str(source)], out):
        return EXIT_PROBLEM
    out.write("restored; now check it: jindou audit verify --published REPORT.json …\n")
    return EXIT_OK
