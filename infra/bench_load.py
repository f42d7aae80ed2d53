"""The bench's load generator, run as its own process so that it does not share the server's
interpreter: N concurrent clients, each sending its requests one after another.

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

import httpx

CLIENT_TIMEOUT_S = 30


async def _client(http: httpx.AsyncClient, spec: dict[str, Any], index: int, latencies: list[float],
                  errors: list[int]) -> None:
    body = spec["bodies"][index % len(spec["bodies"])]
    for number in range(spec["requests_per_client"]):
        headers = dict(spec["headers"])
        if spec.get("key_prefix"):
            headers["Idempotency-Key"] = f"{spec['key_prefix']}-{index}-{number}"
        started = time.perf_counter()
        try:
            response = await http.post(spec["path"], json=body, headers=headers)
            ok = response.status_code in (200, 201)
        except httpx.HTTPError:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        if not ok:
            errors.append(1)


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=spec["clients"], max_keepalive_connections=spec["clients"])
    async with httpx.AsyncClient(base_url=spec["base_url"], limits=limits, timeout=CLIENT_TIMEOUT_S) as http:
        started = time.perf_counter()
        await asyncio.gather(*(_client(http, spec, i, latencies, errors) for i in range(spec["clients"])))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies_ms": latencies, "errors": len(errors)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(drive(json.loads(sys.argv[1])))))
