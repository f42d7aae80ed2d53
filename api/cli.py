"""The `jindou` command: serve, demo, bench, audit, admin, backup and restore.

Every option says its default and the environment variable it reads (`jindou COMMAND --help`).
Exit codes: 0 success; 1 a check found a problem (audit) or the command failed; 2 the command
line, a file or the store named is not usable (nothing was changed).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.logs import (
    DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL,
    LOG_FORMATS,
    configure_logging,
)
from infra.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
EXIT_OK, EXIT_PROBLEM, EXIT_UNUSABLE = 0, 1, 2
WORKER_DATABASE_URL, WORKER_LOG_LEVEL, WORKER_LOG_FORMAT = (
    "JINDOU_DATABASE_URL", "JINDOU_WORKER_LOG_LEVEL", "JINDOU_WORKER_LOG_FORMAT",
)
EXIT_CODES_HELP = "Exit codes: 0 success; 1 a problem was found or the command failed; 2 unusable input, nothing changed."

app = typer.Typer(
    name="jindou",
    help="金豆 Jindou — an event-sourced community points ledger. " + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
audit_app = typer.Typer(help="Check the event store and the read model (exit 1 on any problem). " + EXIT_CODES_HELP,
                        no_args_is_help=True)
admin_app = typer.Typer(help="Credentials for the people who run Jindou.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(admin_app, name="admin")

DatabaseUrl = Annotated[str, typer.Option(
    "--database-url", envvar="JINDOU_DATABASE_URL", show_envvar=True,
    help="Where events live: sqlite:///PATH, postgresql://USER:PASSWORD@HOST:PORT/DBNAME or memory://.",
)]
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]
LogLevel = Annotated[str, typer.Option(
    "--log-level", envvar="JINDOU_LOG_LEVEL", show_envvar=True, help="debug, info, warning or error.",
)]
LogFormat = Annotated[str, typer.Option(
    "--log-format", envvar="JINDOU_LOG_FORMAT", show_envvar=True, help=f"One of {', '.join(LOG_FORMATS)}.",
)]


def _settings(database_url: str) -> Settings:
    """The environment's settings, with the database the command line chose."""
    settings = dataclasses.replace(Settings.from_env(), database_url=database_url)
    try:
        settings.backend  # noqa: B018 — validates the URL's scheme
    except SettingsError as exc:
        _fail(str(exc))
    return settings


def _fail(message: str, code: int = EXIT_UNUSABLE) -> None:
    typer.echo(f"jindou: {message}", err=True)
    raise typer.Exit(code)


def _logging(level: str, log_format: str, *, quiet: bool = False) -> None:
    try:
        configure_logging(level, log_format, quiet=quiet)
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def serve(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    log_level: LogLevel = DEFAULT_LOG_LEVEL,
    log_format: LogFormat = DEFAULT_LOG_FORMAT,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Server processes on the same database (each with its own writer); memory:// takes 1.",
    )] = 1,
) -> None:
    """Serve the API and the pages.

    Also reads JINDOU_ADMIN_TOKEN (a bootstrap admin token), JINDOU_METRICS_TOKEN (protects
    /metrics) and JINDOU_SERVER_THREADS (request threads, 16).
    """
    import uvicorn

    from api.app import create_app
    from infra.operator import first_admin_hint

    _logging(log_level, log_format)
    settings = _settings(database_url)
    if workers > 1 and settings.backend == "memory":
        _fail("memory:// lives in one process: serve it with --workers 1")
    hint = first_admin_hint(settings)
    if hint:
        typer.echo(hint, err=True)
    if workers == 1:
        uvicorn.run(create_app(settings=settings, freeze_start_up=True), host=host, port=port, log_config=None, access_log=False)
        return
    # Each worker process builds its own app (and writer) from what this process was told.
    os.environ.update({WORKER_DATABASE_URL: settings.database_url, WORKER_LOG_LEVEL: log_level,
                       WORKER_LOG_FORMAT: log_format})
    uvicorn.run("api.cli:worker_app", factory=True, workers=workers, host=host, port=port, log_config=None,
                access_log=False)


def worker_app() -> FastAPI:
    """One process of `jindou serve --workers N`: settings and logging as its parent was given them."""
    from api.app import create_app

    _logging(os.environ[WORKER_LOG_LEVEL], os.environ[WORKER_LOG_FORMAT])
    return create_app(settings=_settings(os.environ[WORKER_DATABASE_URL]), freeze_start_up=True)


@app.command()
def demo(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Only fill the database; do not serve it.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Delete everything in the demo's database first.")] = False,
    size: Annotated[str, typer.Option(
        help="full: hundreds of volunteers over three months (about a minute); small: a few dozen people (seconds).",
    )] = "full",
    log_level: LogLevel = "warning",
    log_format: LogFormat = DEFAULT_LOG_FORMAT,
) -> None:
    """Fill a fresh database with three months of a believable 金沙社区 and serve it (quiet: only its sign-in table)."""
    from api.demo import SIZES, run_demo

    if size not in SIZES:
        _fail(f"--size must be one of {', '.join(SIZES)}")
    _logging(log_level, log_format, quiet=True)
    raise typer.Exit(run_demo(_settings(database_url), host, port, serve_after=not no_serve, reset=reset,
                              size=SIZES[size]))


@app.command()
def bench(
    database_url: Annotated[list[str] | None, typer.Option(
        "--database-url", help="Bench this database (repeatable; `sqlite` means a temporary file). Default: memory, "
                               "a temporary SQLite file, and PostgreSQL when JINDOU_BENCH_POSTGRES_URL is set.",
    )] = None,
    operations: Annotated[int, typer.Option(min=1, help="Operations per in-process measurement.")] = 2_000,
    threads: Annotated[int, typer.Option(min=1, max=256, help="Concurrent threads for the contention runs.")] = 8,
    http_requests: Annotated[int, typer.Option(
        min=1, help="HTTP requests per concurrency level (each against Jindou and the reference endpoint).")] = 400,
    http_clients: Annotated[list[int] | None, typer.Option(
        "--http-clients", min=1, max=256, help="Concurrent HTTP clients per level (repeatable). Default: 1, 16, 64.",
    )] = None,
    server_workers: Annotated[int, typer.Option(
        min=1, max=64, help="`jindou serve --workers` for the HTTP runs (memory:// always 1).")] = 1,
    output: Annotated[Path, typer.Option(help="Where to write the figures as JSON.")] = Path("jindou-bench.json"),
    plot: Annotated[Path | None, typer.Option(
        help="Where to draw throughput and p99 against concurrency (SVG). Default: beside --output, .svg.")] = None,
) -> None:
    """Measure the ledger side by side with its yardsticks: a table of figures and ratios on stdout, JSON in a file."""
    import argparse

    from infra.bench import run_bench

    _logging("warning", DEFAULT_LOG_FORMAT, quiet=True)
    raise typer.Exit(run_bench(argparse.Namespace(
        database_urls=database_url, operations=operations, threads=threads, http_requests=http_requests,
        http_clients=http_clients, server_workers=server_workers, output=output, plot=plot)))


@audit_app.command("verify")
def audit_verify(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Fund reports (JSON) or GET /v1/audit/chain answers kept earlier; their heads must still match.",
        show_default=False,
    )] = None,
    published: Annotated[list[Path] | None, typer.Option(
        "--published", help="A kept report (repeatable; files may also follow the option: --published a.json b.json).",
        show_default=False,
    )] = None,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    walk: Annotated[bool, typer.Option(
        "--walk", help="Recompute every hash in this process even on PostgreSQL, which otherwise checks them itself.",
    )] = False,
) -> None:
    """Recompute the hash chain from the store; name the first altered, removed or inserted event."""
    from infra.audit import run_verify

    _logging("warning", DEFAULT_LOG_FORMAT)
    kept = [str(p) for p in [*(published or []), *(files or [])]]
    raise typer.Exit(run_verify(_settings(database_url), sys.stdout, sys.stderr, published_files=kept, walk=walk))


@audit_app.command("replay")
def audit_replay(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Rebuild every projection from event 1 in a scratch store and compare it with the live one."""
    from infra.audit import run_replay

    _logging("warning", DEFAULT_LOG_FORMAT)
    raise typer.Exit(run_replay(_settings(database_url), sys.stdout, sys.stderr))


@admin_app.command("create")
def admin_create(
    name: Annotated[str, typer.Option("--name", help="The person's display name.", show_default=False)],
    community: Annotated[str | None, typer.Option(
        "--community", help="Bind the credential to this community id (default: deployment-wide).", show_default=False,
    )] = None,
    role: Annotated[str, typer.Option(help="admin, staff or auditor (a role below admin needs --community).")] = "admin",
    url: Annotated[str, typer.Option(
        "--url", envvar="JINDOU_PUBLIC_URL", show_envvar=True,
        help="Where the server is reached, for the sign-in QR code.",
    )] = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Make a staff credential without editing the environment; prints its token once, and a QR code
    that signs the person in on /staff (valid 24 hours, once)."""
    import segno

    from api.routes.credentials import sign_in_url_at
    from domain.credentialing import STAFF_KIND
    from infra.operator import create_admin

    _logging("warning", DEFAULT_LOG_FORMAT)
    code, sign_in_code = create_admin(_settings(database_url), name=name, community=community, role=role,
                                      out=sys.stdout)
    if sign_in_code is not None:
        link = sign_in_url_at(url.rstrip("/"), STAFF_KIND, sign_in_code)
        typer.echo(f"Or scan this with a phone to sign in on /staff (once, within 24 hours): {link}")
        segno.make(link, micro=False).terminal(out=sys.stdout, compact=True)
    raise typer.Exit(code)


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).", show_default=False)],
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Copy the whole store to PATH: SQLite through its online backup API (safe while serving),
    PostgreSQL through pg_dump's custom format."""
    from infra.operator import run_backup

    _logging("warning", DEFAULT_LOG_FORMAT)
    raise typer.Exit(run_backup(_settings(database_url), path, sys.stdout))


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="A file `jindou backup` wrote.", show_default=False)],
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Restore a backup into a store that does not exist yet (SQLite) or an empty database (PostgreSQL).
    Then check it: `jindou audit verify --published` with the last public reports."""
    from infra.operator import run_restore

    _logging("warning", DEFAULT_LOG_FORMAT)
    raise typer.Exit(run_restore(_settings(database_url), path, sys.stdout))


def main(argv: list[str] | None = None) -> int:
    """Entry point (the `jindou` script); returns the exit code, so tests can call it with argv."""
    import click

    try:
        result = app(args=argv, prog_name="jindou", standalone_mode=False)
    except click.ClickException as exc:  # a usage error: say what and how to get help
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return EXIT_PROBLEM
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
