"""The operator's side: help that names defaults and environment variables, the first admin,
backups that restore into a store `audit verify --published` accepts, request logs, /metrics."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import main
from api.logs import REQUEST_LOGGER, JsonFormatter
from infra.operator import FIRST_ADMIN_HINT, first_admin_hint
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.audit_history import make_history
from tests.conftest import ADMIN_TOKEN, PostgresDatabase
from tests.support import api_for

STORED = pytest.mark.backends("sqlite", "postgres")
COMMANDS = (["serve"], ["demo"], ["bench"], ["audit", "verify"], ["audit", "replay"], ["admin", "create"],
            ["backup"], ["restore"])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    shown = re.sub(r"[\s│]", "", capsys.readouterr().out)  # however the help's table wraps
    assert "Usage:jindou" + "".join(command) in shown
    if command != ["bench"]:  # the bench names its own databases
        assert "envvar:JINDOU_DATABASE_URL" in shown and "default:sqlite:///./jindou.db" in shown


def test_the_top_level_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for name in ("serve", "demo", "bench", "audit", "admin", "backup", "restore"):
        assert f" {name} " in shown
    assert "Exit codes: 0 success; 1" in shown


def test_a_usage_error_exits_2_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "not-a-port"]) == 2
    assert "not-a-port" in capsys.readouterr().err


@STORED
def test_the_first_admin_is_made_at_the_console(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(database_url=database_url)
    assert first_admin_hint(settings) == FIRST_ADMIN_HINT
    assert main(["admin", "create", "--name", "段主任", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    token = out.split("Token (shown once; keep it like a password): ")[1].split()[0]
    assert "admin 段主任" in out and "the whole deployment" in out
    link = out.split("within 24 hours): ")[1].split()[0]
    assert link.startswith("http://127.0.0.1:8000/staff#sign-in=") and any(block in out for block in "▀▄█")  # a QR drawn
    sign_in_code = link.rsplit("=", 1)[1]
    assert first_admin_hint(settings) is None
    services = build_services(settings)
    try:
        with api_for(services, token) as api:
            community = api.ok("POST", "/v1/communities", token, {"name": "金沙社区"})
            signed_in = api.ok("POST", "/v1/auth/sign-in", json={"code": sign_in_code})
            assert signed_in["kind"] == "staff" and signed_in["role"] == "admin"  # the QR signs the person in
        assert main(["admin", "create", "--name", "审计员", "--role", "auditor", "--community", community["id"],
                     "--database-url", database_url]) == 0
        assert f"community 金沙社区 ({community['id']})" in capsys.readouterr().out
    finally:
        services.close()


@STORED
def test_admin_create_refuses_what_cannot_work(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "create", "--name", "x", "--role", "staff", "--database-url", database_url]) == 2
    assert "only an admin may be deployment-wide" in capsys.readouterr().out
    assert main(["admin", "create", "--name", "x", "--community", "nope", "--database-url", database_url]) == 2
    assert main(["admin", "create", "--name", "x", "--database-url", "memory://"]) == 2


def test_an_admin_token_in_the_environment_needs_no_hint() -> None:
    assert first_admin_hint(Settings(database_url="memory://", admin_token="secret")) is None
    assert first_admin_hint(Settings(database_url="memory://")) == FIRST_ADMIN_HINT


@pytest.fixture
def history(database_url: str) -> Iterator[Services]:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    make_history(services, seed=7, steps=10)
    try:
        yield services
    finally:
        services.close()


def _published_report(services: Services, tmp_path: Path) -> Path:
    """What a resident keeps: this month's public fund report as the server published it."""
    with api_for(services, ADMIN_TOKEN) as api:
        chain = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)
    kept = tmp_path / "report.json"
    kept.write_text(json.dumps({"chain_head": chain["head"], "events_count": chain["events_count"]}))
    return kept


@pytest.mark.backends("sqlite")
def test_a_sqlite_backup_taken_while_serving_restores_and_verifies(history: Services, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = history.settings.database_url
    kept = _published_report(history, tmp_path)
    backup = tmp_path / "jindou.backup"
    assert main(["backup", str(backup), "--database-url", url]) == 0  # the service is still open and writing
    assert main(["backup", str(backup), "--database-url", url]) == 2  # never over an existing file
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    assert main(["restore", str(backup), "--database-url", restored]) == 0
    assert main(["restore", str(backup), "--database-url", restored]) == 2  # never over a live store
    capsys.readouterr()
    assert main(["audit", "verify", "--published", str(kept), "--database-url", restored]) == 0
    assert "OK: 1 published head(s) match" in capsys.readouterr().out
    assert main(["audit", "replay", "--database-url", restored]) == 0


@pytest.mark.backends("postgres")
def test_a_postgres_backup_restores_into_an_empty_database_and_verifies(history: Services, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    kept = _published_report(history, tmp_path)
    backup = tmp_path / "jindou.dump"
    assert main(["backup", str(backup), "--database-url", history.settings.database_url]) == 0
    target = PostgresDatabase()
    target.create()
    try:
        assert main(["restore", str(backup), "--database-url", target.url]) == 0
        assert main(["restore", str(backup), "--database-url", target.url]) == 2  # not empty any more
        capsys.readouterr()
        assert main(["audit", "verify", "--published", str(kept), "--database-url", target.url]) == 0
        assert "OK: 1 published head(s) match" in capsys.readouterr().out
    finally:
        target.drop()


@pytest.mark.backends("memory")
def test_each_request_is_one_log_line_without_secrets(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        volunteer = api.account(community["id"], "volunteer")
        response = api.client.post(f"/v1/accounts/{volunteer['id']}/payment-codes",
                                   headers={"Authorization": f"Bearer {volunteer['token']}", "X-Request-ID": "till-7"})
        code = response.json()["code"]
    assert response.headers["x-request-id"] == "till-7"
    line = next(r for r in caplog.records if r.name == REQUEST_LOGGER and getattr(r, "request_id", "") == "till-7")
    assert (line.method, line.route, line.status) == ("POST", "/v1/accounts/{account_id}/payment-codes", 201)
    assert line.principal_id == volunteer["id"] and line.duration_ms >= 0
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for secret in (volunteer["token"], code, ADMIN_TOKEN, volunteer["id"] + "/payment-codes/"):
        assert secret not in logged
    assert json.loads(JsonFormatter().format(line))["route"] == "/v1/accounts/{account_id}/payment-codes"


@pytest.mark.backends("memory")
def test_metrics_can_be_put_behind_a_token(database_url: str) -> None:
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN, metrics_token="scrape"))
    try:
        with api_for(services, ADMIN_TOKEN) as api:
            assert api.call("GET", "/metrics").status_code == 401
            assert api.call("GET", "/metrics", "wrong").status_code == 401
            scraped = api.call("GET", "/metrics", "scrape")
            assert scraped.status_code == 200 and "jindou_events_recorded" in scraped.text
    finally:
        services.close()
