"""`/docs` and `/redoc` work on a network without internet: their pages reference only our own
origin, and every asset they reference is served here with the right content type."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support import api_for

pytestmark = pytest.mark.backends("memory")

REFERENCE = re.compile(r'(?:src|href|url|spec-url)\s*[=:]\s*["\']([^"\']+)["\']')
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_documentation_loads_only_from_our_origin(services, path: str) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        page = api.call("GET", path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "img-src 'self' data:;" in policy and "connect-src 'self'" in policy
        assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
        references = REFERENCE.findall(page.text)
        assert "/openapi.json" in references and any(ref.endswith(".js") for ref in references), references
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            asset = api.call("GET", reference)
            assert asset.status_code == 200, reference
            expected = next(kind for suffix, kind in CONTENT_TYPES.items() if reference.endswith(suffix))
            assert expected in asset.headers["content-type"], (reference, asset.headers["content-type"])
            assert len(asset.content) > 100, reference


def test_the_schema_the_documentation_reads_is_openapi_3_1_without_the_documentation_pages(services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        schema = api.ok("GET", "/openapi.json")
    assert schema["openapi"].startswith("3.1")
    assert not {"/docs", "/redoc", "/"} & set(schema["paths"])
    assert "/v1/public/communities/{community_id}/fund-reports" in schema["paths"]
