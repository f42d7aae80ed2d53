"""`/docs` (Swagger UI) and `/redoc` (ReDoc), fully offline: every asset is served by Jindou.

Swagger UI comes from the PyPI package `swagger-ui-bundle-v2` (the maintained fork of
`swagger-ui-bundle`, which stopped at Swagger UI 4, too old for OpenAPI 3.1) and is served from
its installed directory; ReDoc is the npm registry's `redoc` standalone bundle, vendored in
api/static/vendor/redoc with its licence and version (see the README there).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

OPENAPI_URL = "/openapi.json"
SWAGGER_ASSETS = "/docs-assets/swagger-ui"
REDOC_SCRIPT = "/static/vendor/redoc/redoc.standalone.js"
FAVICON = SWAGGER_ASSETS + "/favicon-32x32.png"
TITLE = "Jindou 金豆 API"
# Both pages may use only this server: ReDoc would otherwise fetch its maker's logo from a CDN
# (an <img> no option removes); the browser now never asks, and ReDoc hides the broken image.
# Styles are injected at run time by both, and Swagger UI starts from an inline script.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)
router.mount(SWAGGER_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL, title=f"{TITLE} · Swagger UI", swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css", swagger_favicon_url=FAVICON,
    )
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/redoc")
def redoc() -> HTMLResponse:
    # FastAPI's own ReDoc page loads Google Fonts and a classic script; ReDoc 3 is an ES module.
    return HTMLResponse(f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(TITLE)} · ReDoc</title>
<link rel="icon" href="{FAVICON}">
<style>body{{margin:0;padding:0}}</style></head>
<body>
<noscript>ReDoc 需要 JavaScript。ReDoc needs JavaScript.</noscript>
<redoc spec-url="{OPENAPI_URL}" disable-telemetry="true"></redoc>
<script type="module" src="{REDOC_SCRIPT}"></script>
</body></html>
""", headers=DOCS_HEADERS)
