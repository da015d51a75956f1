"""Event-time helpers.

The core works on epoch seconds (floats); text timestamps exist only at the
boundary.  Local time is Asia/Ho_Chi_Minh, a fixed +07:00 with no DST, so a
fixed offset is exact and needs no tz database.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

LOCAL_TZ = timezone(timedelta(hours=7), "ICT")


def format_ts(epoch_s: float) -> str:
    """ISO 8601 in local time with offset, second precision unless fractional."""
    dt = datetime.fromtimestamp(epoch_s, LOCAL_TZ)
    if dt.microsecond:
        return dt.isoformat(timespec="milliseconds")
    return dt.isoformat(timespec="seconds")


def parse_ts(text: str) -> float:
    """Parse an ISO 8601 timestamp that carries an offset; naive is an error."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return dt.timestamp()


def local(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, LOCAL_TZ)


def day_start(epoch_s: float) -> float:
    """Start of the local calendar day containing epoch_s."""
    d = local(epoch_s)
    return d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_start(epoch_s: float) -> float:
    d = local(epoch_s)
    return d.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def year_start(epoch_s: float) -> float:
    d = local(epoch_s)
    return d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def period_key(epoch_s: float, period: str) -> str:
    """Label of the calendar period ('day' → '2026-10-28', 'month' → '2026-10', 'year' → '2026')."""
    d = local(epoch_s)
    if period == "day":
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if period == "month":
        return f"{d.year:04d}-{d.month:02d}"
    if period == "year":
        return f"{d.year:04d}"
    raise ValueError(f"unknown period {period!r}")


def rain_day_start(epoch_s: float) -> float:
    """Start of the hydro-met rain day (19:00 local of the previous day to 19:00)."""
    d = local(epoch_s)
    start = d.replace(hour=19, minute=0, second=0, microsecond=0)
    if d < start:
        start -= timedelta(days=1)
    return start.timestamp()
