"""kiosk.canonical's time text: two formatters (microseconds, seconds) and the one strict parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.canonical import parse_time_text, utc_text, utc_text_seconds
from kiosk.errors import KioskError, TimeTextError

AWARE = st.datetimes(
    min_value=datetime(1980, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; zones below
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min]),
)


def test_the_two_precisions() -> None:
    t = datetime(2026, 11, 27, 13, 4, 5, 60, tzinfo=timezone(timedelta(hours=1)))
    assert utc_text(t) == "2026-11-27T12:04:05.000060Z"
    assert utc_text_seconds(t) == "2026-11-27T12:04:05Z"  # a fraction is dropped, not rounded
    for write in (utc_text, utc_text_seconds):
        with pytest.raises(ValueError, match="naive"):
            write(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive value refused


@given(AWARE)
def test_both_formats_read_back_as_the_same_instant(t: datetime) -> None:
    assert parse_time_text(utc_text(t)) == t
    assert parse_time_text(utc_text_seconds(t)) == t.replace(microsecond=0)
    assert parse_time_text(utc_text(t)).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T12:00:00Z", datetime(2026, 11, 27, 12, tzinfo=UTC)),
        ("2026-11-27T12:00:00.5Z", datetime(2026, 11, 27, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-27T13:00:00+01:00", datetime(2026, 11, 27, 12, tzinfo=UTC)),
    ],
)
def test_rfc_3339_times_are_read(text: str, expected: datetime) -> None:
    assert parse_time_text(text) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-11-27T12:00:00", "without a time zone"),
        ("2026-11-27", "without a time zone"),
        ("27/11/2026", "not an RFC 3339"),
        ("", "not an RFC 3339"),
        ("2026-11-27T24:00:00Z", "not an RFC 3339"),
        (None, "not a time"),
        (1764244800, "not a time"),
    ],
)
def test_anything_else_is_refused_as_a_value_error_and_a_kiosk_error(
    value: object, why: str
) -> None:
    with pytest.raises(TimeTextError, match=why) as e:
        parse_time_text(value)
    assert isinstance(e.value, ValueError)
    assert isinstance(e.value, KioskError)


def test_the_command_line_reads_a_time_without_a_zone_as_utc() -> None:
    assert parse_time_text("2027-01-31", naive_is_utc=True) == datetime(2027, 1, 31, tzinfo=UTC)
    got = parse_time_text("2027-01-31T10:00:00+02:00", naive_is_utc=True)
    assert got == datetime(2027, 1, 31, 8, tzinfo=UTC)
    with pytest.raises(TimeTextError):
        parse_time_text("31 Jan", naive_is_utc=True)
