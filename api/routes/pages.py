"""The phone pages: /merchant (a shopkeeper takes payment) and /wallet (a holder shows a QR code).

They are plain HTML + vanilla JS clients of the public API; nothing here touches the domain.
Every asset is served from this package (the pages must work on a network without internet), and
the pages are kept out of the OpenAPI schema, which describes the API only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# Only our own origin may supply scripts, styles and images; the wallet's QR is inlined SVG fetched
# with the holder's token, and the merchant's camera stream needs no source at all.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)
router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _page(name: str) -> FileResponse:
    return FileResponse(TEMPLATES_DIR / f"{name}.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/merchant")
def merchant_page() -> FileResponse:
    return _page("merchant")


@router.get("/wallet")
def wallet_page() -> FileResponse:
    return _page("wallet")
