"""`?as_of=` — a past moment, RFC 3339 with an offset (a moment without one is ambiguous)."""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timezone as utc_timezone

from api.errors import ApiError

AS_OF_LENGTH_MAX = 64
# An unencoded "+08:00" in a query string arrives as " 08:00" ('+' means space there): take it back.
DECODED_PLUS_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


def as_of_moment(value: str | None) -> datetime:
    """The moment asked for, or now; a malformed or offset-less value is a 422."""
    if value is None:
        return datetime.now(utc_timezone.utc)
    try:
        text = DECODED_PLUS_OFFSET.sub(r"+\1", value)
        parsed = datetime.fromisoformat(text) if len(text) <= AS_OF_LENGTH_MAX else None
        moment = parsed.astimezone(utc_timezone.utc) if parsed and parsed.tzinfo else None
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 pushed past the calendar's edge
        moment = None
    if moment is None:
        raise ApiError("validation_error", "as_of must be an RFC 3339 time with an offset, e.g. 2025-06-30T23:59:59+08:00",
                       field="as_of")
    return moment
