"""The people's pages: /merchant (a shopkeeper takes payment), /wallet (a holder shows a QR code),
/staff (the console of the people who run a community).

They are Jinja2 templates extending one layout (api/templates/layout.html: head, header, language
switch, sign-in panel, footer) and vanilla JS clients of the public API; nothing here touches the
domain. Every asset is served from this package (the pages must work on a network without
internet), and the pages are kept out of the OpenAPI schema, which describes the API only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

# Only our own origin may supply scripts, styles and images; the wallet's QR is inlined SVG fetched
# with the holder's token, and the merchant's camera stream needs no source at all.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)
router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


TEMPLATES = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The one way a page is rendered: its template (extending layout.html) with the page headers."""
    html = TEMPLATES.get_template(f"{name}.html").render(page=name, **context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


@router.get("/merchant")
def merchant_page() -> HTMLResponse:
    return render_page("merchant")


@router.get("/wallet")
def wallet_page() -> HTMLResponse:
    return render_page("wallet")


@router.get("/staff")
def staff_page() -> HTMLResponse:
    return render_page("staff")
