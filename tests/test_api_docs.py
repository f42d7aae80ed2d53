"""docs/api.md is the API reference in the repository: it lists exactly the operations that
/openapi.json describes, so neither can drift from the other."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from infra.settings import Settings
from infra.wiring import build_services

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
OPERATION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)")


def test_the_api_reference_lists_exactly_the_operations_of_the_openapi_document() -> None:
    services = build_services(Settings(database_url="memory://"))
    try:
        with TestClient(create_app(services)) as client:
            spec = client.get("/openapi.json").json()
    finally:
        services.close()
    described = {f"{method.upper()} {path}" for path, operations in spec["paths"].items() for method in operations}
    documented = {f"{method} {path}" for method, path in OPERATION.findall(API_DOC.read_text(encoding="utf-8"))}
    assert described - documented == set(), "in /openapi.json but not in docs/api.md"
    assert documented - described == set(), "in docs/api.md but not in /openapi.json"
