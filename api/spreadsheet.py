"""Every CSV Jindou writes goes through here: files a spreadsheet opens as they are, and safely.

- UTF-8 with a byte-order mark, so Excel reads Chinese names as Chinese rather than guessing a
  local code page; LibreOffice and Python's `utf-8-sig` skip the mark.
- Sections, each with exactly one header row, separated by one empty line.
- Formula injection neutralised: a text cell starting with `=`, `+`, `-`, `@`, a tab or a
  carriage return would be run as a formula by a spreadsheet (a merchant could name itself
  `=HYPERLINK("http://x")`), so it gets a leading `'`, which spreadsheets show as text.
  Numbers stay numbers: an integer or float cell is written as the number it is (a negative
  balance is `-500`, still summable), because only text cells can carry a formula; a number
  that arrives as text is text and is quoted like any other.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

UTF8_BOM = "\ufeff"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TEXT_QUOTE = "'"


def cell(value: Any) -> str | int | float:
    """The value as a spreadsheet may safely read it (None is an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return TEXT_QUOTE + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_document(*sections: tuple[Sequence[str], Iterable[Sequence[Any]]]) -> str:
    """Sections of (header, rows), with the byte-order mark in front."""
    out = io.StringIO()
    out.write(UTF8_BOM)
    writer = csv.writer(out, lineterminator="\n")
    for index, (header, rows) in enumerate(sections):
        if index:
            writer.writerow(())
        writer.writerow([cell(name) for name in header])
        writer.writerows([cell(value) for value in row] for row in rows)
    return out.getvalue()
