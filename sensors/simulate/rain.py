"""Seeded rain-gauge simulator (docs/architecture.md §3.1 `rain` events, docs/domain.md §2).

Every gauge reports every 5 minutes (ts on 5-minute marks), nearly always
0 mm.  Rain comes from moving storm cells: Gaussian footprints drifting
across the province, growing and decaying over their lifetime, enhanced
over high-susceptibility (mountain) terrain, measured by a 0.2 mm tipping
bucket (fractions carry over to the next interval).

Scripted incidents, so a demo shows alerts at once:
- the **demo storm** (from `storm_at`, default `start` + 30 min) drifts
  NW → SE from Sông Lô over Lập Thạch and Tam Đảo towards Phúc Yên for about
  six hours, followed 3 h later by a weaker, wider cell on the same track;
  ~15 stations get heavy rain, the wettest > 70 mm in 3 h about 2.5–3.5 h
  after `storm_at` and > 100 mm in 24 h some hours later;
- a **link outage**: the station under the storm 1.5 h after it starts
  loses its link for 2 h and then uploads the buffered readings (late data);
- a **silent station**: one lowland station stops reporting for good
  40 minutes after `storm_at` (drives the `sensor_stale` rule).
Besides, every day may bring afternoon convective cells, and any station
may have a short link outage (buffered, late upload) on any day.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, time

from ioc.catalog import Catalog
from ioc.events import RainEvent

from .base import ChunkedSimulator, dt
from .worktime import DAY_S, at, local_date

TICK_S = 300.0
BUCKET_MM = 0.2
OROGRAPHY = {"low": 1.0, "medium": 1.1, "high": 1.3, "very_high": 1.5}
LAT0, LON0 = 21.36, 105.57
KM_PER_DEG_LAT = 110.57
_EDGE = math.exp(-2.0)
KM_PER_DEG_LON = 111.32 * math.cos(math.radians(LAT0))


def to_km(lat: float, lon: float) -> tuple[float, float]:
    return (lon - LON0) * KM_PER_DEG_LON, (lat - LAT0) * KM_PER_DEG_LAT


@dataclass(frozen=True)
class Storm:
    t0: float  # epoch s
    duration_s: float
    x0_km: float
    y0_km: float
    vx_kmps: float
    vy_kmps: float
    radius_km: float
    peak_mm_h: float

    def rate_mm_h(self, t: float, x: float, y: float) -> float:
        u = (t - self.t0) / self.duration_s
        if u <= 0.0 or u >= 1.0:
            return 0.0
        env = min(1.0, u / 0.2, (1.0 - u) / 0.25)
        dt_s = t - self.t0
        cx = self.x0_km + self.vx_kmps * dt_s
        cy = self.y0_km + self.vy_kmps * dt_s
        d2 = (x - cx) ** 2 + (y - cy) ** 2
        shape = math.exp(-d2 / (2.0 * self.radius_km**2))  # Gaussian footprint cut at 2 radii
        if shape <= _EDGE:
            return 0.0
        return self.peak_mm_h * env * (shape - _EDGE) / (1.0 - _EDGE)

    @property
    def t_end(self) -> float:
        return self.t0 + self.duration_s

    def centre_km(self, t: float) -> tuple[float, float]:
        dt_s = t - self.t0
        return self.x0_km + self.vx_kmps * dt_s, self.y0_km + self.vy_kmps * dt_s


class RainSimulator(ChunkedSimulator):
    feed = "rain"

    def __init__(
        self,
        catalog: Catalog,
        seed: int = 42,
        start: float = 0.0,
        *,
        storm_at: float | None = None,
        incidents: bool = True,
    ) -> None:
        super().__init__(start)
        self.seed = seed
        self.ids = list(catalog.stations)
        st = [catalog.stations[i] for i in self.ids]
        self.lat = [s.lat for s in st]
        self.lon = [s.lon for s in st]
        xy = [to_km(s.lat, s.lon) for s in st]
        self.x = [p[0] for p in xy]
        self.y = [p[1] for p in xy]
        self.oro = [OROGRAPHY.get(s.susceptibility, 1.0) for s in st]
        self._acc = [0.0] * len(st)
        self._rng = random.Random(f"{seed}:rain:ticks")
        self.storms: list[Storm] = []
        # outages: station index -> list of (begin, end); readings in [begin, end) arrive at the
        # first tick >= end
        self.outages: dict[int, list[tuple[float, float]]] = {}
        self.silent_from: dict[int, float] = {}
        self._planned_days: set[int] = set()
        self._next_tick = math.floor(self.start / TICK_S) * TICK_S + TICK_S
        self.storm_at = self.start + 1800.0 if storm_at is None else float(storm_at)
        if incidents and st:
            self._plan_incidents()

    # -- planning ------------------------------------------------------------------------------

    def _plan_incidents(self) -> None:
        rng = random.Random(f"{self.seed}:rain:incidents")
        # track from the north-west corner of the station network to its east, a third of the way up
        # (in the demo province: Sông Lô → Lập Thạch → Tam Đảo → Phúc Yên)
        lat_lo, lat_hi = min(self.lat), max(self.lat)
        lon_lo, lon_hi = min(self.lon), max(self.lon)
        ax, ay = to_km(lat_hi + 0.015 + rng.uniform(-0.02, 0.02), lon_lo + 0.005 + rng.uniform(-0.02, 0.02))
        bx, by = to_km(lat_lo + 0.33 * (lat_hi - lat_lo) + rng.uniform(-0.03, 0.03), lon_hi - 0.015 + rng.uniform(-0.02, 0.02))
        duration = 6.0 * 3600.0 * rng.uniform(0.95, 1.1)
        demo = Storm(
            t0=self.storm_at,
            duration_s=duration,
            x0_km=ax,
            y0_km=ay,
            vx_kmps=(bx - ax) / duration,
            vy_kmps=(by - ay) / duration,
            radius_km=rng.uniform(7.0, 8.0),
            peak_mm_h=rng.uniform(27.0, 31.0),
        )
        self.storms.append(demo)
        # a weaker, wider cell trains along the same track 3 h behind: the 24-h totals pass 100 mm
        trail = self.storm_at + 3.0 * 3600.0
        self.storms.append(
            Storm(trail, duration, ax, ay, demo.vx_kmps, demo.vy_kmps, demo.radius_km * 1.3, demo.peak_mm_h * 0.45)
        )
        # the station nearest the storm centre 2.5 h in loses its link from 1.5 h to 3.5 h
        cx, cy = demo.centre_km(self.storm_at + 2.5 * 3600.0)
        near = sorted(range(len(self.ids)), key=lambda i: (self.x[i] - cx) ** 2 + (self.y[i] - cy) ** 2)
        victim = near[0]
        self.outages.setdefault(victim, []).append((self.storm_at + 1.5 * 3600.0, self.storm_at + 3.5 * 3600.0))
        # a lowland station far from the track goes silent for good
        far = [i for i in near[len(near) // 2 :] if self.oro[i] <= 1.1 and i != victim]
        silent = far[rng.randrange(len(far))] if far else near[-1]
        self.silent_from[silent] = self.storm_at + 40 * 60.0

    def _plan_day(self, day_ordinal: int) -> None:
        """Afternoon convective cells and short random link outages of one local day."""
        self._planned_days.add(day_ordinal)
        rng = random.Random(f"{self.seed}:rain:day:{day_ordinal}")
        d = date.fromordinal(day_ordinal)
        if rng.random() < 0.35:
            for _ in range(rng.randint(1, 3)):
                t0 = at(d, time(12, 0)) + rng.uniform(0, 6 * 3600.0)
                dur = rng.uniform(1.0, 3.0) * 3600.0
                x0 = rng.uniform(-25.0, 25.0)
                y0 = rng.uniform(-20.0, 25.0)
                ang = rng.uniform(0, 2 * math.pi)
                speed = rng.uniform(10.0, 30.0) / 3600.0
                self.storms.append(
                    Storm(t0, dur, x0, y0, speed * math.cos(ang), speed * math.sin(ang),
                          rng.uniform(3.0, 7.0), rng.uniform(8.0, 35.0))
                )
        for i in range(len(self.ids)):
            if rng.random() < 0.03:
                b = at(d, time(0, 0)) + rng.uniform(0, DAY_S)
                self.outages.setdefault(i, []).append((b, b + rng.uniform(1200.0, 3 * 3600.0)))

    def _arrival(self, i: int, t: float) -> float:
        for b, e in self.outages.get(i, ()):
            if b <= t < e:
                return math.ceil(e / TICK_S) * TICK_S
        return t

    # -- generation ----------------------------------------------------------------------------

    def _generate(self, chunk_start: float) -> float:
        t = self._next_tick
        self._next_tick = t + TICK_S
        day = local_date(t).toordinal()
        for dd in (day, day + 1):  # plan a day ahead: outages/cells may cross midnight
            if dd not in self._planned_days:
                self._plan_day(dd)
        mid = t - TICK_S / 2.0
        active = [s for s in self.storms if s.t0 < t and s.t_end > t - TICK_S]
        if len(self.storms) > 64:
            self.storms = [s for s in self.storms if s.t_end > t - TICK_S]
        ts = dt(t)
        rng = self._rng
        for i, sid in enumerate(self.ids):
            silent = self.silent_from.get(i)
            if silent is not None and t >= silent:
                continue
            rate = 0.0
            for s in active:
                rate += s.rate_mm_h(mid, self.x[i], self.y[i])
            if rate > 0.01:
                self._acc[i] += rate * self.oro[i] * (TICK_S / 3600.0) * rng.lognormvariate(0.0, 0.35)
            tips = int(self._acc[i] / BUCKET_MM + 1e-9)
            mm = 0.0
            if tips:
                self._acc[i] -= tips * BUCKET_MM
                mm = round(tips * BUCKET_MM, 1)
            self._push(self._arrival(i, t), RainEvent(station=sid, ts=ts, rain_mm=mm))
        return t
