"""Office hours of Vietnamese one-stop-shop departments, in local time (+07:00).

Mon–Fri 07:30–11:30 and 13:30–17:00; some units also receive on Saturday
morning (07:30–11:30).  Deadlines count working days Mon–Fri only: a
Saturday-morning reception does not make Saturday a working day.  Public
holidays are not modelled (the demo treats them as ordinary days).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

from ioc.catalog import Catalog
from ioc.timeutil import LOCAL_TZ

MORNING = (time(7, 30), time(11, 30))
AFTERNOON = (time(13, 30), time(17, 0))
DAY_S = 86400.0


def local_date(epoch_s: float) -> date:
    return datetime.fromtimestamp(epoch_s, LOCAL_TZ).date()


def at(d: date, t: time) -> float:
    """Epoch seconds of local date d at local clock time t."""
    return datetime.combine(d, t, LOCAL_TZ).timestamp()


@lru_cache(maxsize=4096)
def office_intervals(d: date, saturday_morning: bool = False) -> tuple[tuple[float, float], ...]:
    """Reception intervals (epoch start, epoch end) on local date d."""
    wd = d.weekday()
    if wd < 5:
        return ((at(d, MORNING[0]), at(d, MORNING[1])), (at(d, AFTERNOON[0]), at(d, AFTERNOON[1])))
    if wd == 5 and saturday_morning:
        return ((at(d, MORNING[0]), at(d, MORNING[1])),)
    return ()


def is_office_time(epoch_s: float, saturday_morning: bool = False) -> bool:
    return any(a <= epoch_s < b for a, b in office_intervals(local_date(epoch_s), saturday_morning))


def next_office_instant(epoch_s: float, saturday_morning: bool = False) -> float:
    """epoch_s itself when inside office hours, else the next opening."""
    d = local_date(epoch_s)
    for _ in range(30):
        for a, b in office_intervals(d, saturday_morning):
            if epoch_s < b:
                return max(a, epoch_s)
        d += timedelta(days=1)
    raise RuntimeError("no office hours within 30 days")  # pragma: no cover


def prev_office_instant(epoch_s: float, saturday_morning: bool = False) -> float:
    """epoch_s itself when inside office hours, else the last moment of the previous session."""
    d = local_date(epoch_s)
    for _ in range(30):
        for a, b in reversed(office_intervals(d, saturday_morning)):
            if epoch_s >= a:
                return min(epoch_s, b - 1.0)
        d -= timedelta(days=1)
    raise RuntimeError("no office hours within 30 days")  # pragma: no cover


def add_working_seconds(epoch_s: float, seconds: float, saturday_morning: bool = False) -> float:
    """The instant `seconds` of office time after epoch_s."""
    t = next_office_instant(epoch_s, saturday_morning)
    left = max(0.0, seconds)
    d = local_date(t)
    for _ in range(3660):
        for a, b in office_intervals(d, saturday_morning):
            if t >= b:
                continue
            t = max(t, a)
            if t + left <= b:
                return t + left
            left -= b - t
            t = b
        d += timedelta(days=1)
    raise RuntimeError("working-time addition ran past 10 years")  # pragma: no cover


def working_seconds_between(a_s: float, b_s: float, saturday_morning: bool = False) -> float:
    """Office time in (a_s, b_s]."""
    if b_s <= a_s:
        return 0.0
    total = 0.0
    d = local_date(a_s)
    last = local_date(b_s)
    while d <= last:
        for a, b in office_intervals(d, saturday_morning):
            lo, hi = max(a, a_s), min(b, b_s)
            if hi > lo:
                total += hi - lo
        d += timedelta(days=1)
    return total


def add_working_days(epoch_s: float, days: int) -> float:
    """Same clock time `days` working days (Mon–Fri) later; start moved into office hours first."""
    t = next_office_instant(epoch_s)
    dt = datetime.fromtimestamp(t, LOCAL_TZ)
    d = dt.date()
    n = 0
    while n < days:
        d += timedelta(days=1)
        if d.weekday() < 5:
            n += 1
    return datetime.combine(d, dt.timetz()).timestamp()


def previous_working_morning(now_s: float, hour: int = 7) -> float:
    """07:00 local of the last Mon–Fri strictly before today (the demo backfill start)."""
    d = local_date(now_s) - timedelta(days=1)
    while d.weekday() >= 5:
        d -= timedelta(days=1)
    return at(d, time(hour, 0))


def saturday_units(catalog: Catalog) -> frozenset[str]:
    """Units whose one-stop shop also receives on Saturday morning.

    The demo's convention: every province-level unit (the provincial public
    administration centre serves the departments) and city-level districts
    (ids of units whose English name contains "City").
    """
    out = set()
    for u in catalog.units.values():
        if u.level == "province" or (u.level == "district" and (u.name_en or "").endswith("City")):
            out.add(u.id)
    return frozenset(out)
