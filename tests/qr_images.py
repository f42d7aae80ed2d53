"""Reading back the QR codes Jindou renders, as a phone's scanner would: zxing-cpp over PNG,
over segno's SVG (rasterised here: its one path draws each dark run as a 1-module-wide line),
and over PDF pages rendered by pdfium. Every symbol must be a standard QR Code, never Micro QR."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree

import pypdfium2
import zxingcpp
from PIL import Image, ImageDraw

SVG_PATH_STEP = re.compile(r"([MmHh])\s*(-?[\d.]+)(?:\s+(-?[\d.]+))?")
PDF_RENDER_SCALE = 4  # 288 dpi: a QR module of a 30 mm symbol spans several pixels


def decode_image(image: Image.Image) -> list[str]:
    results = zxingcpp.read_barcodes(image.convert("L"))
    assert all(result.format == zxingcpp.BarcodeFormat.QRCode for result in results), [r.format for r in results]
    return [result.text for result in results]


def decode_png(data: bytes) -> list[str]:
    assert data.startswith(b"\x89PNG"), data[:20]
    return decode_image(Image.open(io.BytesIO(data)))


def decode_svg(data: bytes) -> list[str]:
    root = ElementTree.fromstring(data)
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    path = next(element for element in root.iter() if element.tag.endswith("path"))
    scale = float(re.fullmatch(r"scale\(([\d.]+)\)", path.attrib["transform"]).group(1))  # type: ignore[union-attr]
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    x = y = 0.0
    for command, first, second in SVG_PATH_STEP.findall(path.attrib["d"]):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:  # h: a dark run one module high, centred on y
            end = x + float(first) if command == "h" else float(first)
            draw.rectangle([x * scale, (y - 0.5) * scale, end * scale - 1, (y + 0.5) * scale - 1], fill=0)
            x = end
    return decode_image(image)


def decode_pdf_pages(data: bytes) -> list[list[str]]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [decode_image(page.render(scale=PDF_RENDER_SCALE).to_pil()) for page in document]
    finally:
        document.close()
