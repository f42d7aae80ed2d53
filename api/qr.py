"""Every QR image Jindou renders: a standard QR Code (Model 2, never Micro QR, which many phone
scanners cannot read), as SVG or PNG, chosen by the URL's suffix."""

from __future__ import annotations

import io

import segno
from fastapi import Request, Response

QR_SCALE = 6  # pixels per module: readable by a shop's phone camera from a wrinkled printout
QR_BORDER_MODULES = 4  # the quiet zone the QR standard asks for
QR_ERROR_CORRECTION = "m"  # survives about 15 % damage: a creased card, a scratched screen
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def qr_code(content: str) -> segno.QRCode:
    qr = segno.make(content, error=QR_ERROR_CORRECTION, micro=False)
    assert not qr.is_micro
    return qr


def qr_bytes(content: str, image_format: str, *, scale: int = QR_SCALE) -> bytes:
    buffer = io.BytesIO()
    qr_code(content).save(buffer, kind=image_format, scale=scale, border=QR_BORDER_MODULES)
    return buffer.getvalue()


def qr_response(content: str, request: Request) -> Response:
    """The QR image of `content` in the format the path ends with (.svg or .png); never cached,
    since these show live codes."""
    image_format = request.url.path.rsplit(".", 1)[-1]
    assert image_format in MEDIA_TYPES, "routes register only .svg and .png paths"
    return Response(qr_bytes(content, image_format), media_type=MEDIA_TYPES[image_format],
                    headers={"Cache-Control": "no-store"})
