"""What the attack suites share: `jindou serve` as a real process on a free port, a throwaway
PostgreSQL cluster of their own, and a client that remembers which writes were acknowledged."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_READY_TIMEOUT_S = 30
CLUSTER_USER = "postgres"  # initdb and pg_ctl refuse to run as root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class JindouServer:
    """`jindou serve` in a subprocess of its own (so it can be killed -9 and started again)."""

    def __init__(self, database_url: str, admin_token: str, log_path: Path) -> None:
        self.database_url = database_url
        self.admin_token = admin_token
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        """Another `jindou` command (audit verify, replay) on the same database."""
        return subprocess.run([sys.executable, "-m", "api.cli", *args], env=self._env(), cwd=REPO, capture_output=True,
                              text=True, timeout=timeout_s, check=False)

    def _env(self) -> dict[str, str]:
        return os.environ | {
            "JINDOU_DATABASE_URL": self.database_url, "JINDOU_ADMIN_TOKEN": self.admin_token,
            # the deployment's own key, kept across restarts; never ./jindou-signing.key in the checkout
            "JINDOU_TRANSPARENCY_KEY_FILE": str(self.log_path.parent / "jindou-signing.key"),
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }

    def start(self) -> None:
        assert self.process is None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self._env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"jindou serve exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"jindou serve did not answer within {SERVER_READY_TIMEOUT_S} s: {self.log_tail()}")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, whatever was in flight is cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""


@contextmanager
def served(database_url: str, admin_token: str, tmp_path: Path) -> Iterator[JindouServer]:
    server = JindouServer(database_url, admin_token, tmp_path / "jindou-serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ThrowawayPostgres:
    """A PostgreSQL cluster this test owns (never the shared server): initdb, start, stop."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="jindou-outage-"))
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.port = free_port()

    @staticmethod
    def unavailable_reason() -> str | None:
        if not (POSTGRES_BIN / "initdb").exists():
            return f"no PostgreSQL binaries in {POSTGRES_BIN}"
        if os.geteuid() != 0 and shutil.which("runuser") is None:
            return "needs root (to run initdb as the postgres user)"
        return None

    def _as_postgres(self, *command: str, timeout_s: float = 60) -> None:
        runner = ["runuser", "-u", CLUSTER_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run([*runner, *command], check=True, capture_output=True, timeout=timeout_s)

    def create(self) -> None:
        self.sockets.mkdir()
        shutil.chown(self.directory, CLUSTER_USER)
        shutil.chown(self.sockets, CLUSTER_USER)
        self._as_postgres(str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        self.start()

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._as_postgres(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "30",
                          "-l", str(self.directory / "postgres.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    reason = ThrowawayPostgres.unavailable_reason()
    if reason is not None:
        if os.environ.get("JINDOU_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the outage suite must run here: {reason}")
        pytest.skip(reason)
    cluster = ThrowawayPostgres()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Answer:
    key: str
    status: int  # 0: no answer at all (connection refused or cut)
    code: str
    seconds: float
    at: float


@dataclass
class Ledger:
    """Every answer the writers got, by Idempotency-Key."""

    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def acknowledged(self) -> set[str]:
        return {a.key for a in self.answers if a.status in (200, 201)}

    def unresolved(self) -> set[str]:
        keys = {a.key for a in self.answers}
        return keys - self.acknowledged()


def post(client: httpx.Client, path: str, token: str, body: dict[str, Any], key: str, timeout_s: float) -> Answer:
    started = time.monotonic()
    try:
        response = client.post(path, json=body, timeout=timeout_s,
                               headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
    except httpx.HTTPError:
        return Answer(key, 0, "no_answer", time.monotonic() - started, started)
    code = ""
    if response.status_code >= 400:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "not_json"
    return Answer(key, response.status_code, code, time.monotonic() - started, started)


RETRY_PAUSE_S = 0.05


def retry_until_answered(client: httpx.Client, ledger: Ledger, stop: threading.Event, token: str,
                         body: dict[str, Any], key: str) -> None:
    """What a careful client does: the same key again until the server gives an answer that is
    not "try again" (or the run ends; the key is then settled afterwards)."""
    while not stop.is_set():
        answer = post(client, "/v1/donations", token, body, key, timeout_s=30)
        ledger.note(answer)
        if answer.status != 0 and answer.status < 500:
            return
        time.sleep(RETRY_PAUSE_S)
