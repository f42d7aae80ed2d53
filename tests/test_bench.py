"""`jindou bench` runs end to end on SQLite and PostgreSQL and reports what it was asked to
measure (figures are printed, never asserted: timing belongs to no test)."""

from __future__ import annotations

import json
from xml.etree import ElementTree
from pathlib import Path

import pytest

from api.cli import main
from tests.conftest import POSTGRES_ADMIN_URL, require_postgres

OPERATIONS, HTTP_REQUESTS = 12, 8


def run_small_bench(target: str, output: Path) -> dict[str, object]:
    code = main(["bench", "--database-url", target, "--operations", str(OPERATIONS), "--threads", "2",
                 "--http-requests", str(HTTP_REQUESTS), "--http-clients", "1", "--http-clients", "4",
                 "--output", str(output)])
    assert code == 0
    figures: dict[str, object] = json.loads(output.read_text())
    drawing = ElementTree.parse(output.with_suffix(".svg")).getroot()  # the plot beside the figures
    lines = drawing.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 4  # Jindou and the reference, in the throughput and the p99 panel
    assert all(len(line.get("points", "").split()) == 2 for line in lines)  # one point per client level
    return figures


def check_figures(figures: dict[str, object], backend: str, expected_runs: set[str]) -> None:
    runs = {row["run"]: row for row in figures["results"] if row["backend"] == backend}  # type: ignore[index]
    assert set(runs) == expected_runs
    for name in ("earn", "donate", "sale", "naive-save"):
        assert runs[name]["operations"] == OPERATIONS and runs[name]["p50_ms"] is not None
    for name in ("http-1", "http-4", "ref-1", "ref-4"):
        assert runs[name]["operations"] == HTTP_REQUESTS and runs[name]["errors"] == 0  # every request counted
    for name in ("replay", "verify", "scan+sha"):
        assert runs[name]["operations"] > 0 and runs[name]["p50_ms"] is None  # no per-event timing, so none shown
    assert runs["sale"]["statements_per_operation"] > 0 and runs["naive-save"]["statements_per_operation"] > 0
    assert runs["sale-busy"]["operations"] > 0 and runs["sale-busy"]["errors"] == 0
    assert runs["sale-busy"]["statements_per_operation"] > 0  # counted while the groups were committed
    pairs = {row["what"] for row in figures["ratios"] if row["backend"] == backend}  # type: ignore[index]
    assert "in-process card sales, N threads / naive one-save loop" in pairs
    assert "in-process sale / naive one-save loop" in pairs and "HTTP card sales / reference endpoint, 4 clients" in pairs


COMMON = {"earn", "donate", "contend", "spread", "sale", "sale-busy", "naive-save", "replay", "verify", "scan+sha",
          "http-1", "ref-1", "http-4", "ref-4"}


def test_the_bench_runs_on_sqlite(tmp_path: Path) -> None:
    check_figures(run_small_bench("sqlite", tmp_path / "bench.json"), "sqlite", COMMON)


@pytest.mark.postgres
def test_the_bench_runs_on_postgres(tmp_path: Path) -> None:
    require_postgres()
    check_figures(run_small_bench(POSTGRES_ADMIN_URL, tmp_path / "bench.json"), "postgres", COMMON | {"insert"})
