"""The one clock the domain reads, and the one way to record a believable past.

eventsourcing 9.5 stamps every new event (and snapshot) with `event_class.create_timestamp()`,
which every event class inherits from `eventsourcing.domain.CanCreateTimestamp`; the library
calls it when the event is triggered, never lets the caller pass a time through an `@event`
method, and stores the result as the event's `timestamp`. Jindou's read models take every time
from there (statements, the month a sale belongs to, fund reports' cut-offs), and the domain's
own rules (payment-code expiry, a card's day, a donation's "not in the future") read `now()`.

`simulated(clock)` moves both to a chosen moment for as long as it lasts. It exists for
`jindou demo`, which records three months of history in a minute (decision 0011); it is
process-wide and is never entered while serving requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import timezone as utc_timezone
from zoneinfo import ZoneInfo

from eventsourcing.domain import CanCreateTimestamp

Clock = Callable[[], datetime]
_simulated: list[Clock] = []


def now() -> datetime:
    """The current moment (UTC), or the simulated one."""
    return _simulated[-1]() if _simulated else datetime.now(utc_timezone.utc)


@contextmanager
def simulated(clock: Clock) -> Iterator[None]:
    """Record events and apply the rules as if `clock()` were the time (an aware datetime)."""
    library_default = CanCreateTimestamp.__dict__["create_timestamp"]
    _simulated.append(clock)
    CanCreateTimestamp.create_timestamp = staticmethod(now)  # type: ignore[method-assign]
    try:
        yield
    finally:
        _simulated.pop()
        if not _simulated:
            CanCreateTimestamp.create_timestamp = library_default  # type: ignore[method-assign]


def local_time(moment: datetime | str, timezone: str) -> str:
    """RFC 3339 with the community's offset (+08:00 in Kunming). `moment` may also be spelled as
    the read model stores event times (UTC ISO text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(timezone)).isoformat()
