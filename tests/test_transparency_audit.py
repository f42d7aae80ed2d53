"""The attack the hash chain alone could not stop, on a real SQLite file and PostgreSQL database:
someone with database access edits an event, recomputes the chain *and* the Merkle tree, so the
database is consistent with itself. Heads signed and published before the edit still catch it —
through `jindou audit verify --published`, and through the standalone verifier an auditor runs
against the live server without installing Jindou."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.app import create_app
from api.cli import main
from infra.settings import Settings
from infra.transparency import TreeSigner
from infra.wiring import Services, build_services
from tests.audit_history import RawDatabase, make_history, rewrite_chain_and_tree
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for
from tools.verify_jindou import verify_consistency

STORED = pytest.mark.backends("sqlite", "postgres")  # memory:// keeps nothing for a command to open
VERIFIER = Path(__file__).resolve().parent.parent / "tools" / "verify_jindou.py"
SERVER_START_TIMEOUT_S = 20
VERIFIER_TIMEOUT_S = 60


@pytest.fixture
def history(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, dict[str, Any]]]:
    key_file = str(tmp_path / "signing.key")
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN, transparency_key_file=key_file))
    world = make_history(services, seed=7, steps=10)
    monkeypatch.setenv("JINDOU_DATABASE_URL", database_url)
    monkeypatch.setenv("JINDOU_TRANSPARENCY_KEY_FILE", key_file)
    monkeypatch.delenv("JINDOU_ADMIN_TOKEN", raising=False)
    try:
        yield services, world
    finally:
        services.close()


def _publish(services: Services, world: dict[str, Any], directory: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The month's public report and the current signed head, kept outside the database."""
    period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    with api_for(services, ADMIN_TOKEN) as api:
        report = api.ok("GET", f"/v1/public/communities/{world['community']['id']}/fund-reports/{period}")
        head = api.ok("GET", "/v1/public/transparency/tree-head")
        api.community(name="后来的社区")  # history goes on after publication
    report_file, head_file = directory / "fund-report.json", directory / "tree-head.json"
    report_file.write_text(json.dumps(report, ensure_ascii=False))
    head_file.write_text(json.dumps(head))
    return report_file, head_file, head


def _verify(capsys: pytest.CaptureFixture[str], *published: Path) -> tuple[int, str]:
    code = main(["audit", "verify", *(["--published", *map(str, published)] if published else [])])
    return code, capsys.readouterr().out


@STORED
def test_published_heads_catch_an_edit_the_database_no_longer_shows(history, tmp_path: Path, capsys) -> None:
    services, world = history
    report_file, head_file, head = _publish(services, world, tmp_path)
    with api_for(services, ADMIN_TOKEN) as api:  # a later head, published too
        later = api.ok("GET", "/v1/public/transparency/tree-head")
    later_file = tmp_path / "later-head.json"
    later_file.write_text(json.dumps(later))
    code, out = _verify(capsys, report_file, head_file, later_file)
    assert code == 0, out
    assert "OK: 3 published head(s) match" in out

    raw = RawDatabase(services)
    edited = raw.positions_of("Donation.Made")[0]
    raw.edit_state(edited, amount=1000)
    rewrite_chain_and_tree(services, raw)
    code, out = _verify(capsys)
    assert code == 0, out  # the database alone can no longer tell

    # The consistency proof the log now serves, from the head published before the edit, fails.
    with api_for(services, ADMIN_TOKEN) as api:
        now = api.ok("GET", "/v1/public/transparency/tree-head")
        answer = api.ok("GET", f"/v1/public/transparency/consistency?first={head['tree_size']}&second={now['tree_size']}")
    assert not verify_consistency(head["tree_size"], now["tree_size"], bytes.fromhex(head["root_hash"]),
                                  bytes.fromhex(now["root_hash"]), [bytes.fromhex(h) for h in answer["proof"]])

    code, out = _verify(capsys, head_file)
    assert code == 1
    assert f"published a signed tree head of {head['tree_size']} events with root {head['root_hash']}" in out, out
    code, out = _verify(capsys, report_file)  # the report's chain head and tree head both stand against it
    assert code == 1 and "history up to here was rewritten" in out, out


@STORED
def test_verify_checks_every_published_signature_and_keeps_accepting_retired_keys(history, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch,
                                                                                capsys) -> None:
    services, world = history
    _, head_file, head = _publish(services, world, tmp_path)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(head | {"timestamp": "2000-01-01T00:00:00+00:00"}))
    code, out = _verify(capsys, forged)
    assert code == 1 and f"FAILED {forged}: tree head refused: the signature does not verify" in out, out
    stranger = tmp_path / "stranger.json"  # a head another deployment's key signed
    stranger.write_text(json.dumps(TreeSigner(Ed25519PrivateKey.generate()).sign(
        head["tree_size"], head["root_hash"], head["timestamp"])))
    code, out = _verify(capsys, stranger)
    assert code == 1 and "which the log does not list" in out, out
    fork = tmp_path / "fork.json"  # the real key signing a different history of the same size
    fork.write_text(json.dumps(services.signer.sign(head["tree_size"], "ab" * 32, head["timestamp"])))
    code, out = _verify(capsys, fork)
    assert code == 1 and "history up to here was rewritten" in out, out

    # Rotation: the old key moves offline, its public key is listed as retired, a new key is made.
    old_public = base64.b64encode(services.signer.public_key).decode()
    key_file = Path(services.settings.transparency_key_file or "")
    key_file.rename(tmp_path / "old-signing.key")
    code, out = _verify(capsys, head_file)
    assert code == 1 and "which the log does not list" in out, out  # not yet listed as retired
    monkeypatch.setenv("JINDOU_TRANSPARENCY_RETIRED_KEYS", old_public)
    rotated = build_services(replace(services.settings, transparency_retired_keys=(old_public,)))
    try:
        with api_for(rotated, ADMIN_TOKEN) as api:
            key = api.ok("GET", "/v1/public/transparency/key")
            resigned = api.ok("GET", f"/v1/public/transparency/tree-head?tree_size={head['tree_size']}")
    finally:
        rotated.close()
    assert key["key_id"] != head["key_id"] and [k["key_id"] for k in key["retired"]] == [head["key_id"]]
    assert resigned["root_hash"] == head["root_hash"] and resigned["key_id"] == key["key_id"]
    resigned_file = tmp_path / "resigned.json"
    resigned_file.write_text(json.dumps(resigned))
    code, out = _verify(capsys, head_file, resigned_file)
    assert code == 0, out


@STORED
def test_verify_names_a_tree_altered_in_the_database(history, capsys) -> None:
    services, _ = history
    raw = RawDatabase(services)
    raw.execute("UPDATE transparency_nodes SET hash = ? WHERE level = 0 AND node_index = 2", ("ab" * 32,))
    code, out = _verify(capsys)
    assert code == 1 and "the stored transparency tree" in out and "its tables were altered" in out, out


@pytest.fixture
def served(history) -> Iterator[tuple[Services, dict[str, Any], str]]:
    """The same database served over HTTP on a free loopback port."""
    services, world = history
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="jindou-transparency-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield services, world, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_START_TIMEOUT_S)


def _standalone(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The verifier as an auditor runs it: its one file, outside the repository, no Jindou on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(VERIFIER), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=VERIFIER_TIMEOUT_S)


@STORED
def test_the_standalone_verifier_checks_a_live_server_and_detects_a_rewrite(served, tmp_path: Path) -> None:
    services, world, url = served
    with api_for(services, ADMIN_TOKEN) as api:
        statements = [(api.ok("GET", f"/v1/accounts/{v['id']}/entries", v["token"])["items"], v) for v in world["volunteers"]]
    entries, volunteer = max(statements, key=lambda statement: len(statement[0]))
    assert entries, "the generated history gives volunteers beans"
    kept = tmp_path / "kept-head.json"
    first = _standalone(url, "--save", str(kept), "--token", volunteer["token"], "--account", volunteer["id"],
                        "--entry", entries[-1]["entry_id"], cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "OK: signed tree head of" in first.stdout and f"OK: entry {entries[-1]['entry_id']} is in the log" in first.stdout
    assert json.loads(kept.read_text())["tree_size"] > 0

    report_file, _, _ = _publish(services, world, tmp_path)  # a fund report saved from the public page
    again = _standalone(url, "--published", str(kept), str(report_file), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "OK: the log is consistent with 2 kept head(s)" in again.stdout

    raw = RawDatabase(services)
    raw.edit_state(raw.positions_of("Report.Verified")[0], award=500)
    rewrite_chain_and_tree(services, raw)
    caught = _standalone(url, "--published", str(kept), str(report_file), cwd=tmp_path)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert caught.stdout.count("is not an extension of the kept head") == 2, caught.stdout


@STORED
def test_a_read_model_older_than_the_log_grows_its_tree_at_start_up(history, capsys) -> None:
    services, _ = history
    with api_for(services, ADMIN_TOKEN) as api:
        head = api.ok("GET", "/v1/public/transparency/tree-head")
    raw = RawDatabase(services)
    raw.execute("DELETE FROM transparency_nodes")  # as the tables are the day this version is installed
    raw.execute("DELETE FROM transparency_leaves")
    assert _verify(capsys)[0] == 1  # verify never writes: the missing tree is a finding
    restarted = build_services(services.settings)
    try:
        with api_for(restarted, ADMIN_TOKEN) as api:
            assert api.ok("GET", "/v1/public/transparency/tree-head") == head
    finally:
        restarted.close()
    code, out = _verify(capsys)
    assert code == 0, out
