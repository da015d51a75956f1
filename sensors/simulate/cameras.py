"""Seeded one-stop-shop camera simulator (docs/architecture.md §3.1 `camera`, docs/domain.md §3).

Every camera reports every minute (ts on minute marks) the people waiting
in its zone of the hall and the counters open in that zone; a site's
counters are split evenly between its cameras, so `waiting / counters_open`
per camera is the per-counter queue the `queue_long` rule watches (a site
total is the sum over its cameras).

Queue model per zone and minute: Poisson arrivals following the office-day
profile (peaks ~09:30–10:30 and ~14:00–15:00), service by open counters at
the site's `service_minutes_per_person`; counters open at the start of each
session and staff step away and back during it; arrivals stop 10 minutes
before closing and the hall empties after it.  Outside office hours (and
at weekends, except Saturday mornings where the unit receives) cameras
report 0 waiting and 0 counters open.  On most working days one site has a
**surge** between ~09:00 and ~10:45: arrivals triple while two thirds of
one zone's counters are unstaffed, so the queue exceeds 8 per open counter
for well over 5 minutes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, time

from ioc.catalog import Catalog
from ioc.events import CameraEvent

from .base import ChunkedSimulator, dt, poisson
from .worktime import at, local_date, office_intervals, saturday_units

TICK_S = 60.0
CLOSE_ARRIVALS_MIN = 10


def _profile() -> list[float]:
    """Relative arrivals per minute of a weekday, normalised over the office minutes."""
    w = [0.0] * 1440
    for m in range(1440):
        h = m / 60.0
        if 7.5 <= h < 11.5 - CLOSE_ARRIVALS_MIN / 60 or 13.5 <= h < 17.0 - CLOSE_ARRIVALS_MIN / 60:
            w[m] = 0.35 + math.exp(-((h - 10.0) ** 2) / (2 * 0.6**2)) + 0.8 * math.exp(-((h - 14.5) ** 2) / (2 * 0.55**2))
    total = sum(w)
    return [x / total for x in w]


PROFILE = _profile()


@dataclass
class Zone:
    camera: str
    site: str
    counters: int
    visitors_per_day: float
    service_min: float
    saturday: bool
    waiting: float = 0.0
    open: int = 0


class CameraSimulator(ChunkedSimulator):
    feed = "camera"

    def __init__(self, catalog: Catalog, seed: int = 42, start: float = 0.0, *, volume: float = 1.0) -> None:
        super().__init__(start)
        self.seed = seed
        sat = saturday_units(catalog)
        prof = random.Random(f"{seed}:camera:profiles")
        self.zones: list[Zone] = []
        self.site_zones: dict[str, list[int]] = {}
        for site in catalog.sites.values():
            cams = site.cameras or []
            if not cams:
                continue
            per_counter = prof.uniform(22.0, 28.0) * volume  # visitors per counter per day
            for j, cam in enumerate(cams):
                c = site.counters // len(cams) + (1 if j < site.counters % len(cams) else 0)
                c = max(1, c)
                self.site_zones.setdefault(site.id, []).append(len(self.zones))
                self.zones.append(
                    Zone(cam, site.id, c, per_counter * c, max(1.0, site.service_minutes_per_person),
                         site.unit in sat)
                )
        self._rng = random.Random(f"{seed}:camera:ticks")
        self._next_tick = math.floor(self.start / TICK_S) * TICK_S + TICK_S
        self._day: date | None = None
        self._surge: tuple[str, float, float] | None = None  # site, begin, end
        self.surges: list[tuple[str, float, float]] = []  # every surge planned so far (for tests/demo)

    def _plan_day(self, d: date) -> None:
        self._day = d
        self._day_start = at(d, time(0, 0))
        self._surge = None
        rng = random.Random(f"{self.seed}:camera:day:{d.toordinal()}")
        if d.weekday() < 5 and self.site_zones and rng.random() < 0.75:
            site = rng.choice(sorted(self.site_zones))
            b = at(d, time(9, 0)) + rng.uniform(0, 75) * 60.0
            self._surge = (site, b, b + rng.uniform(25, 40) * 60.0)
            self.surges.append(self._surge)

    def _generate(self, chunk_start: float) -> float:
        t = self._next_tick
        self._next_tick = t + TICK_S
        mid = t - TICK_S / 2.0  # the minute that ends at t
        d = local_date(mid)
        if d != self._day:
            self._plan_day(d)
        minute = int((mid - self._day_start) // 60.0)
        rng = self._rng
        ts = dt(t)
        surge = self._surge
        for z in self.zones:
            intervals = office_intervals(d, z.saturday)
            session = next(((a, b) for a, b in intervals if a <= mid < b), None)
            in_surge = surge is not None and surge[0] == z.site and surge[1] <= mid < surge[2]
            if session is None:
                z.open = 0
                z.waiting = math.floor(z.waiting * 0.5)  # the hall empties after closing
            else:
                a, _ = session
                if mid - a < TICK_S:  # session opens: staff arrive
                    z.open = max(1, sum(1 for _ in range(z.counters) if rng.random() < 0.85))
                else:
                    closed = z.counters - z.open
                    z.open += sum(1 for _ in range(closed) if rng.random() < 0.06)
                    z.open -= sum(1 for _ in range(z.open) if rng.random() < 0.008)
                    z.open = max(1, min(z.counters, z.open))
                if in_surge and z.camera == self.zones[self.site_zones[z.site][0]].camera:
                    z.open = min(z.open, max(1, z.counters // 3))
                lam = z.visitors_per_day * PROFILE[minute]
                if d.weekday() == 5:
                    lam *= 0.6
                if in_surge:
                    lam *= 3.0
                arrived = poisson(rng, lam)
                served = min(int(z.waiting), poisson(rng, z.open / z.service_min))
                z.waiting = max(0.0, z.waiting + arrived - served)
            seen = z.waiting
            if seen > 0:
                seen = max(0, int(round(seen + rng.gauss(0.0, 0.6))))  # camera miscounts a little
            self._push(t, CameraEvent(camera=z.camera, site=z.site, ts=ts, waiting=int(seen), counters_open=z.open))
        return t
