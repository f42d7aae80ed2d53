"""The bench's load generator, run as its own process so that it does not share the server's
interpreter: N concurrent clients, each sending its requests one after another on its own
keep-alive connection.

It speaks just enough HTTP/1.1 over asyncio streams (a request written in one piece, the answer's
status line, headers and Content-Length body read back) so that the client costs little next to
either server: with a general-purpose client library the client, not the server, was what the
reference endpoint's figure measured.

`python -m infra.bench_load SPEC_JSON` prints one JSON object: seconds, latencies_ms, errors.
SPEC: {"base_url", "path", "clients", "requests_per_client", "headers", "bodies": [per client]},
where a body may carry "{n}" in an Idempotency-Key header template (`key_prefix`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

CLIENT_TIMEOUT_S = 30
OK_STATUSES = (200, 201)


class Connection:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read the status and the body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode() + body
        )
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, closing = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
            elif name == b"transfer-encoding":
                raise ConnectionError("a chunked answer: this client reads Content-Length bodies only")
        await self.reader.readexactly(length)
        if closing:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _client(spec: dict[str, Any], index: int, latencies: list[float], errors: list[int]) -> None:
    address = urlsplit(spec["base_url"])
    connection = Connection(address.hostname or "127.0.0.1", address.port or 80)
    path = (address.path.rstrip("/") + spec["path"]) or "/"
    body = json.dumps(spec["bodies"][index % len(spec["bodies"])]).encode()
    try:
        for number in range(spec["requests_per_client"]):
            headers = dict(spec["headers"])
            if spec.get("key_prefix"):
                headers["Idempotency-Key"] = f"{spec['key_prefix']}-{index}-{number}"
            started = time.perf_counter()
            try:
                ok = await asyncio.wait_for(connection.post(path, body, headers), CLIENT_TIMEOUT_S) in OK_STATUSES
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
                connection.close()  # a fresh connection for the next request
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            if not ok:
                errors.append(1)
    finally:
        connection.close()


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(_client(spec, i, latencies, errors) for i in range(spec["clients"])))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies_ms": latencies, "errors": len(errors)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(drive(json.loads(sys.argv[1])))))
