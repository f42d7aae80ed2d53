"""Periods are calendar months in the community's time zone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.periods import (
    PERIOD_FIRST,
    PERIOD_LAST,
    check_period,
    period_bounds,
    period_of,
)

ZONES = st.sampled_from(["Asia/Shanghai", "UTC", "America/St_Johns", "Pacific/Kiritimati"])
PERIODS = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2000, 9998), st.integers(1, 12))


@given(period=PERIODS, timezone=ZONES)
def test_a_period_starts_and_ends_inside_itself(period: str, timezone: str) -> None:
    start, end = period_bounds(period, timezone)
    assert start < end
    assert period_of(start, timezone) == period
    assert period_of(end - timedelta(microseconds=1), timezone) == period
    assert period_of(end, timezone) != period


def test_kunming_months_begin_at_sixteen_hundred_utc() -> None:
    start, end = period_bounds("2019-08", "Asia/Shanghai")
    assert start.isoformat() == "2019-07-31T16:00:00+00:00"
    assert end.isoformat() == "2019-08-31T16:00:00+00:00"


@pytest.mark.parametrize("bad", ["2019-8", "2019-13", "2019-00", "19-08", "0000-01", "1999-12", "9999-12", 201908, None, ""])
def test_anything_but_a_month_in_range_is_refused(bad: object) -> None:
    with pytest.raises(ValidationFailed):
        check_period(bad)


def test_the_range_is_inclusive() -> None:
    assert check_period(PERIOD_FIRST) == PERIOD_FIRST and check_period(PERIOD_LAST) == PERIOD_LAST
