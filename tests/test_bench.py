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
    for name in ("http-1", "http-4"):  # read from the server's metrics around the run: CPU within the time on groups
        assert 0 < runs[name]["writer_cpu"] <= runs[name]["writer_busy"] <= 1
    assert runs["ref-4"]["writer_busy"] is None and runs["replay"]["writer_busy"] is None
    for name in ("http-1", "http-4", "ref-1", "ref-4"):  # what each side spent on a request, from /proc
        row = runs[name]
        assert row["server_cpu_us"] is not None and row["server_cpu_us"] >= 0
        assert row["load_cpu_us"] > 0 and row["machine_cores_busy"] > 0  # the load generator's start, at least
        assert (row["database_cpu_us"] is not None) == (backend == "postgres")  # SQLite runs in the server
    assert runs["replay"]["server_cpu_us"] is None  # measured in the bench's own process: no such split
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


def test_the_load_generator_counts_every_request_and_every_answer_that_is_not_a_success() -> None:
    """The bench's own HTTP/1.1 client against a server that answers 201, then 409, then 201 and
    closes the connection, in turn: every request timed, the 409s counted as errors, and a closed
    connection opened again for the next request."""
    import asyncio

    from infra.bench_load import drive

    answered: list[tuple[bytes, bytes]] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request_line := await reader.readline():
            headers = {}
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers[b"content-length"]))
            answered.append((request_line, headers.get(b"idempotency-key", b"") + b" " + body))
            turn = len(answered) % 3
            status, close = ((b"201 Created", True), (b"201 Created", False), (b"409 Conflict", False))[turn]
            payload = b'{"ok": true}'
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n"
                         + (b"Connection: close\r\n" if close else b"") + b"\r\n" + payload)
            await writer.drain()
            if close:
                break
        writer.close()

    async def run() -> dict[str, object]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await drive({"base_url": f"http://127.0.0.1:{port}", "path": "/sale", "clients": 2,
                                "requests_per_client": 6, "headers": {"Authorization": "Bearer t"},
                                "key_prefix": "k", "bodies": [{"amount": 1}, {"amount": 2}]})

    figures = asyncio.run(run())
    assert len(figures["latencies_ms"]) == 12 and len(answered) == 12  # type: ignore[arg-type]
    assert figures["errors"] == 4  # every third answer was a 409
    assert all(line == b"POST /sale HTTP/1.1\r\n" for line, _ in answered)
    assert {sent for _, sent in answered} == {f"k-{c}-{n} {{\"amount\": {c + 1}}}".encode()
                                             for c in range(2) for n in range(6)}


@pytest.mark.postgres
def test_the_bench_leaves_nothing_where_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its servers sign tree heads with a key of their own, made in a temporary folder: not the
    PostgreSQL deployment's default `./jindou-signing.key`, which they would otherwise read, or
    leave behind, wherever the bench was started."""
    require_postgres()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    run_small_bench(POSTGRES_ADMIN_URL, tmp_path / "bench.json")
    assert list(here.iterdir()) == []
