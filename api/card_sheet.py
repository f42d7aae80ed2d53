"""The printable card sheet: A4 pages of beneficiary cards, drawn with reportlab.

Each card: the holder's name, the QR of the card code (shown at the till), the card's digits
grouped by four (typed in when a camera fails), its daily limit, the QR of a sign-in URL (to put
the wallet on a phone) and one line of instructions. Chinese text uses reportlab's built-in CID
font STSong-Light, so the PDF embeds no font file and keeps a text layer. QR modules are drawn
from segno's matrix (api/qr.py), so printed codes are the same standard QR as on screens.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from api.qr import QR_BORDER_MODULES, qr_code

CHINESE_FONT = "STSong-Light"
DIGITS_FONT = "Courier-Bold"
COLUMNS, ROWS = 2, 4  # cards per page: 2 × 4 cards of 92 × 66 mm fit A4 with margins to cut along
CARD_WIDTH, CARD_HEIGHT = 92 * mm, 66 * mm
QR_SIZE = 30 * mm  # the whole symbol including its quiet zone
DIGIT_GROUP = 4
INSTRUCTIONS = "付款时请商户扫左侧付款码；用手机扫右侧登录码（24小时内有效）开通钱包。"

pdfmetrics.registerFont(UnicodeCIDFont(CHINESE_FONT))


def grouped(digits: str) -> str:
    return " ".join(digits[i:i + DIGIT_GROUP] for i in range(0, len(digits), DIGIT_GROUP))


def card_sheet_pdf(cards: Sequence[dict[str, Any]], sign_in_urls: Sequence[str], community_name: str) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"{community_name} 金豆卡")
    pdf.setAuthor("Jindou 金豆")
    page_width, page_height = A4
    margin_x = (page_width - COLUMNS * CARD_WIDTH) / 2
    margin_y = (page_height - ROWS * CARD_HEIGHT) / 2
    per_page = COLUMNS * ROWS
    for index, (card, url) in enumerate(zip(cards, sign_in_urls, strict=True)):
        if index and index % per_page == 0:
            pdf.showPage()
        slot = index % per_page
        x = margin_x + (slot % COLUMNS) * CARD_WIDTH
        y = page_height - margin_y - (slot // COLUMNS + 1) * CARD_HEIGHT
        _draw_card(pdf, x, y, card, url, community_name)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _draw_card(pdf: canvas.Canvas, x: float, y: float, card: dict[str, Any], url: str, community_name: str) -> None:
    pdf.setDash(2, 2)
    pdf.setLineWidth(0.3)
    pdf.rect(x, y, CARD_WIDTH, CARD_HEIGHT)  # the line to cut along
    pdf.setDash()
    left, top = x + 5 * mm, y + CARD_HEIGHT - 5 * mm
    pdf.setFont(CHINESE_FONT, 12)
    pdf.drawString(left, top - 4 * mm, card["display_name"])
    pdf.setFont(CHINESE_FONT, 8)
    pdf.drawRightString(x + CARD_WIDTH - 5 * mm, top - 4 * mm, f"{community_name} 金豆卡")
    qr_bottom = top - 7 * mm - QR_SIZE
    _draw_qr(pdf, card["card_code"], left, qr_bottom)
    _draw_qr(pdf, url, x + CARD_WIDTH - 5 * mm - QR_SIZE, qr_bottom)
    pdf.setFont(CHINESE_FONT, 7)
    pdf.drawCentredString(left + QR_SIZE / 2, qr_bottom - 2.5 * mm, "付款码")
    pdf.drawCentredString(x + CARD_WIDTH - 5 * mm - QR_SIZE / 2, qr_bottom - 2.5 * mm, "登录码")
    pdf.setFont(CHINESE_FONT, 9)
    pdf.drawCentredString(x + CARD_WIDTH / 2, qr_bottom + QR_SIZE / 2, f"每日限额 {card['daily_limit']} 元")
    pdf.setFont(DIGITS_FONT, 9)
    pdf.drawString(left, qr_bottom - 7 * mm, grouped(card["card_code"]))
    pdf.setFont(CHINESE_FONT, 6.5)
    pdf.drawString(left, y + 3.5 * mm, INSTRUCTIONS)


def _draw_qr(pdf: canvas.Canvas, content: str, x: float, y: float) -> None:
    """Dark modules as filled runs, row by row, inside a square of QR_SIZE with the quiet zone."""
    matrix = qr_code(content).matrix
    modules = len(matrix) + 2 * QR_BORDER_MODULES
    module = QR_SIZE / modules
    pdf.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(matrix):
        top = y + QR_SIZE - (row_index + QR_BORDER_MODULES + 1) * module
        column = 0
        while column < len(row):
            if not row[column]:
                column += 1
                continue
            start = column
            while column < len(row) and row[column]:
                column += 1
            pdf.rect(x + (start + QR_BORDER_MODULES) * module, top, (column - start) * module, module, stroke=0, fill=1)
