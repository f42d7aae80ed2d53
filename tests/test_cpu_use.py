"""The bench's CPU readings (infra/cpu_use.py) count what they say: a server's workers, the
database's processes, the machine's busy time. Each check makes a known amount of CPU be used and
finds at least that much; none times anything."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from infra.cpu_use import (
    database_seconds,
    machine_busy_seconds,
    process_tree_seconds,
    waited_children_seconds,
)
from tests.conftest import POSTGRES_ADMIN_URL, require_postgres

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the readings come from Linux's /proc")

BURN_S = 0.3  # CPU a process below the measured one spends before it says so
TICK_S = 0.02  # /proc counts in clock ticks (10 ms): a reading may lag by one per process
BURNER = f"import time\nuntil = time.process_time() + {BURN_S}\nwhile time.process_time() < until: pass\n"


def burn(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def test_a_process_tree_counts_the_cpu_of_its_workers_below_it(tmp_path: Path) -> None:
    done = tmp_path / "done"
    worker = BURNER + f"import pathlib\npathlib.Path({str(done)!r}).write_text('x')\ntime.sleep(120)\n"
    supervisor = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {worker!r}])"])
    try:
        deadline = time.monotonic() + 60
        while not done.exists():  # a wait for the worker, not a measurement of it
            assert supervisor.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        tree = process_tree_seconds(supervisor.pid)
        own = process_tree_seconds(os.getpid())
    finally:
        supervisor.kill()
        subprocess.run(["pkill", "-f", str(done)], check=False)  # the worker, orphaned by the kill
        supervisor.wait()
    assert tree is not None and tree >= BURN_S - TICK_S  # the supervisor itself only waited
    assert own is not None and own > 0


def test_a_process_that_is_gone_has_no_reading() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert process_tree_seconds(gone.pid) is None


def test_a_child_waited_for_is_counted_with_the_children() -> None:
    before = waited_children_seconds()
    subprocess.run([sys.executable, "-c", BURNER], check=True)
    after = waited_children_seconds()
    assert before is not None and after is not None and after - before >= BURN_S - TICK_S


def test_the_machine_is_counted_busy_for_at_least_what_this_process_burns() -> None:
    before = machine_busy_seconds()
    burn(BURN_S)
    after = machine_busy_seconds()
    assert before is not None and after is not None and after - before >= BURN_S - TICK_S


@pytest.mark.postgres
def test_the_database_processes_are_counted_for_the_work_they_do() -> None:
    require_postgres()
    with psycopg.connect(POSTGRES_ADMIN_URL) as connection:
        connection.execute("SELECT 1")  # its backend is running before the first reading
        before = database_seconds()
        started = time.process_time()
        row = connection.execute("SELECT count(*) FROM generate_series(1, 3000000) AS n WHERE n % 7 = 0").fetchone()
        ours = time.process_time() - started
        after = database_seconds()
    assert row is not None and row[0] == 3000000 // 7
    assert before is not None and after is not None
    assert after - before >= 0.1 > ours  # the database did the counting, this process only waited
