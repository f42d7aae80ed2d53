"""Periods: calendar months `YYYY-MM` in a community's time zone."""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timezone as utc_timezone
from zoneinfo import ZoneInfo

from domain.errors import ValidationFailed

PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Jindou's months: cash and beans count from 2000 on; past 9998 a month's end leaves the calendar.
PERIOD_FIRST, PERIOD_LAST = "2000-01", "9998-12"


def check_period(value: object) -> str:
    if not isinstance(value, str) or not PERIOD_PATTERN.match(value):
        raise ValidationFailed("period must be a month written YYYY-MM", field="period")
    if not PERIOD_FIRST <= value <= PERIOD_LAST:
        raise ValidationFailed(f"period must be from {PERIOD_FIRST} to {PERIOD_LAST}", field="period")
    return value


def period_of(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def months_after(period: str, months: int) -> str:
    match = PERIOD_PATTERN.match(period)
    assert match is not None and months >= 0
    index = int(match.group(1)) * 12 + int(match.group(2)) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def period_bounds(period: str, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the month in UTC."""
    match = PERIOD_PATTERN.match(check_period(period))
    assert match is not None
    year, month = int(match.group(1)), int(match.group(2))
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(utc_timezone.utc), end.astimezone(utc_timezone.utc)
