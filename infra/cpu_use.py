"""How much CPU a process, the database server and the whole machine have used, read from Linux's
/proc (and, for the processes this one waited for, from getrusage). The bench divides what was
used during a run by the requests it answered: the cost of a request, on each side, in figures
that hold on a noisy machine better than throughput does.

Every reading is None where it cannot be read (another system, a process that is gone).
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
DATABASE_PROCESS_NAME = "postgres"  # what PostgreSQL's server and backend processes are called


def _stat_fields(stat: str) -> tuple[str, list[str]]:
    """The process's name and the fields after it (the name, in parentheses, may hold spaces)."""
    name, rest = stat.split("(", 1)[1].rsplit(")", 1)
    return name, rest.split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime + stime, proc(5)


def _children(pid: int) -> list[int]:
    found = []
    for children in (PROC / str(pid) / "task").glob("*/children"):
        try:
            found += [int(child) for child in children.read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found


def process_tree_seconds(pid: int) -> float | None:
    """CPU used so far by this process and every process below it (a server's workers), in all
    their threads; None where /proc does not have it."""
    total, pending, seen = 0.0, [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            total += _cpu_seconds(_stat_fields((PROC / str(current) / "stat").read_text())[1])
        except OSError:
            if current == pid:
                return None
            continue  # a child that ended meanwhile
        pending += _children(current)
    return total


def database_seconds() -> float | None:
    """CPU used so far by every PostgreSQL process of this machine (None: none is visible here,
    as when the database is on another host)."""
    total, found = 0.0, False
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            name, fields = _stat_fields(stat.read_text())
        except (OSError, IndexError, ValueError):
            continue
        if name == DATABASE_PROCESS_NAME:
            total, found = total + _cpu_seconds(fields), True
    return total if found else None


def machine_busy_seconds() -> float | None:
    """CPU time the whole machine has spent busy so far, summed over its cores: neither idle nor
    waiting for the disk (/proc/stat's first line)."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    ticks = [int(value) for value in first[1:]]
    idle, iowait = ticks[3], ticks[4] if len(ticks) > 4 else 0
    guest = sum(ticks[8:10])  # guest time is counted in user time already
    return (sum(ticks) - idle - iowait - guest) / _TICKS_PER_SECOND


def waited_children_seconds() -> float | None:
    """CPU used so far by the processes this one started and has waited for (getrusage)."""
    if resource is None:
        return None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime
