"""Seeded administrative-procedure dossier simulator (docs/architecture.md §3.1 `dossier`, docs/domain.md §1).

Each local day (the internal tick) the simulator draws the dossiers every
unit receives that day and their whole lifecycle, one event per status
change:

    received → in_process → [supplement_requested → in_process]* → [fee_due]
             → processed → returned
    received → rejected                          (refused at intake, ~2 %)
    received → in_process → withdrawn            (~1 %)

Realism (shares are per unit, drawn from the seed, a few units lag):
- in-person (`direct`) and `postal` dossiers arrive in office hours only
  (Mon–Fri 07:30–11:30 and 13:30–17:00; Saturday morning at the units in
  `worktime.saturday_units`), with a mid-morning and an early-afternoon peak;
  `online` submissions arrive around the clock (fewer at night and at
  weekends), so dossier events exist at any hour;
- online share ~90–99 % at districts and communes, ~45–75 % at provincial
  departments; digitization ~75–97 %; fee-bearing share by level; online
  payment of fees mostly by online submitters;
- `due` = received + the procedure's working days (same clock time, Mon–Fri;
  same-day procedures get 4 office hours); staff actions happen in office
  hours; ~1–4 % are processed late, a few very late (they sit overdue
  open for days); time waiting for the citizen's documents is added to the
  processing time, as Decision 766 excludes it;
- codes like "H62.01-261028-0001": agency code of the unit (H62.NN for
  districts in catalog order, H62.NN.MM for their communes, H62.2N for
  provincial departments), received date yymmdd, daily sequence per unit.
The province root itself receives nothing (its departments do).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import time, timedelta

from ioc.catalog import Catalog
from ioc.events import DossierEvent

from .base import ChunkedSimulator, dt, poisson
from .worktime import (
    add_working_days,
    add_working_seconds,
    at,
    local_date,
    next_office_instant,
    office_intervals,
    prev_office_instant,
    saturday_units,
    working_seconds_between,
)

HOUR = 3600.0
# (procedure code, working days to process, probability it bears a fee, weight) by level.
PROCEDURES: dict[str, list[tuple[str, int, float, float]]] = {
    "commune": [
        ("2.000908", 0, 1.0, 0.30),  # certification of copies: same day, small fee
        ("1.001193", 0, 0.0, 0.15),
        ("1.000894", 3, 0.0, 0.10),
        ("1.004227", 5, 0.2, 0.15),
        ("2.000815", 1, 0.5, 0.20),
        ("1.003583", 10, 0.3, 0.10),
    ],
    "district": [
        ("1.004227", 5, 0.3, 0.25),
        ("2.001681", 10, 0.9, 0.20),
        ("1.010770", 15, 1.0, 0.20),
        ("2.000908", 0, 1.0, 0.15),
        ("1.001612", 3, 0.6, 0.20),
    ],
    "province": [
        ("1.004476", 15, 1.0, 0.20),
        ("2.002154", 10, 0.8, 0.25),
        ("1.009794", 20, 1.0, 0.15),
        ("1.005133", 5, 0.5, 0.25),
        ("2.000364", 7, 0.7, 0.15),
    ],
}
VOLUME_PER_DAY = {"commune": (8.0, 25.0), "district": (30.0, 70.0), "province": (20.0, 55.0)}
# relative online submissions per local hour 0..23 (office hours dominate, an evening bump)
ONLINE_HOURLY = [0.35, 0.25, 0.2, 0.2, 0.22, 0.3, 0.5, 1.2, 2.2, 2.6, 2.5, 2.0,
                 1.2, 1.4, 2.2, 2.4, 2.0, 1.3, 0.9, 0.9, 1.0, 0.9, 0.6, 0.3]
ONLINE_CUM = [sum(ONLINE_HOURLY[: h + 1]) for h in range(24)]


@dataclass(frozen=True)
class UnitProfile:
    unit: str
    level: str
    code: str
    per_day: float
    online: float
    digitized: float
    pay_online: float
    late: float
    saturday: bool


def agency_codes(catalog: Catalog, prefix: str = "H62") -> dict[str, str]:
    """Agency code of every dossier-receiving unit, stable in catalog order."""
    codes: dict[str, str] = {}
    dist = [u for u in catalog.units.values() if u.level == "district"]
    for i, u in enumerate(dist, 1):
        codes[u.id] = f"{prefix}.{i:02d}"
        for j, c in enumerate(catalog.children.get(u.id, []), 1):
            codes[c] = f"{prefix}.{i:02d}.{j:02d}"
    deps = [u for u in catalog.units.values() if u.level == "province" and u.parent is not None]
    for k, u in enumerate(deps, 0):
        codes[u.id] = f"{prefix}.{20 + k:02d}"
    for u in catalog.units.values():  # communes without a district parent etc.
        if u.parent is not None and u.id not in codes:
            codes[u.id] = f"{prefix}.{60 + len(codes) % 40:02d}.{len(codes):03d}"
    return codes


class DossierSimulator(ChunkedSimulator):
    feed = "dossier"

    def __init__(self, catalog: Catalog, seed: int = 42, start: float = 0.0, *, volume: float = 1.0) -> None:
        super().__init__(start)
        self.seed = seed
        codes = agency_codes(catalog)
        sat = saturday_units(catalog)
        rng = random.Random(f"{seed}:dossier:profiles")
        units = [u for u in catalog.units.values() if u.id in codes]
        lagging = set(rng.sample([u.id for u in units if u.level != "province"], k=min(2, len(units))))
        self.profiles: list[UnitProfile] = []
        for u in units:
            lo, hi = VOLUME_PER_DAY[u.level]
            if u.level == "province":
                online = rng.uniform(0.45, 0.75)
            elif u.id in lagging:
                online = rng.uniform(0.35, 0.55)
            else:
                online = rng.uniform(0.88, 0.995)
            self.profiles.append(
                UnitProfile(
                    unit=u.id,
                    level=u.level,
                    code=codes[u.id],
                    per_day=rng.uniform(lo, hi) * volume,
                    online=online,
                    digitized=rng.uniform(0.55, 0.7) if u.id in lagging else rng.uniform(0.75, 0.97),
                    pay_online=rng.uniform(0.45, 0.95),
                    late=rng.uniform(0.06, 0.1) if u.id in lagging else rng.uniform(0.005, 0.035),
                    saturday=(u.id in sat) or (u.parent in sat and u.level == "province"),
                )
            )
        self._day = local_date(self.start)

    # -- generation ----------------------------------------------------------------------------

    def _generate(self, chunk_start: float) -> float:
        d = self._day
        self._day = d + timedelta(days=1)
        day_start = at(d, time(0, 0))
        day_end = at(self._day, time(0, 0))
        rng = random.Random(f"{self.seed}:dossier:day:{d.toordinal()}")
        wd = d.weekday()
        yymmdd = f"{d.year % 100:02d}{d.month:02d}{d.day:02d}"
        for p in self.profiles:
            arrivals: list[tuple[float, str]] = []
            day_factor = 1.0 if wd < 5 else (0.45 if p.saturday and wd == 5 else 0.2)
            n_online = poisson(rng, p.per_day * p.online * day_factor)
            for _ in range(n_online):
                arrivals.append((self._online_time(rng, day_start), "online"))
            intervals = office_intervals(d, p.saturday)
            if intervals:
                office_share = 1.0 if wd < 5 else 0.5
                n_direct = poisson(rng, p.per_day * (1.0 - p.online) * office_share)
                for _ in range(n_direct):
                    arrivals.append((self._office_time(rng, intervals), "postal" if rng.random() < 0.04 else "direct"))
            arrivals.sort()
            for seq, (t0, channel) in enumerate(arrivals, 1):
                if t0 <= self.start:
                    continue  # received before start: not emitted
                code = f"{p.code}-{yymmdd}-{seq:04d}"
                # one RNG per dossier: its lifecycle does not depend on `start` or on other dossiers
                self._lifecycle(random.Random(f"{self.seed}:{code}"), p, code, t0, channel)
        return day_end

    @staticmethod
    def _online_time(rng: random.Random, day_start: float) -> float:
        x = rng.random() * ONLINE_CUM[-1]
        h = next(i for i, c in enumerate(ONLINE_CUM) if c >= x)
        return float(int(day_start + h * HOUR + rng.random() * HOUR))

    @staticmethod
    def _office_time(rng: random.Random, intervals: tuple[tuple[float, float], ...]) -> float:
        # peaks ~09:45 and ~14:30 on top of a flat base; mornings a little busier
        while True:
            if len(intervals) == 1 or rng.random() < 0.58:
                a, b = intervals[0]
            else:
                a, b = intervals[1]
            peak = a + (2.25 if b - a > 3.9 * HOUR else 1.0) * HOUR
            t = rng.gauss(peak, 0.8 * HOUR) if rng.random() < 0.6 else rng.uniform(a, b)
            if a <= t < b:
                return float(int(t))

    def _lifecycle(self, rng: random.Random, p: UnitProfile, code: str, t0: float, channel: str) -> None:
        sat = p.saturday
        procs = PROCEDURES[p.level]
        proc = rng.choices(procs, weights=[w for *_, w in procs])[0]
        proc_code, days, fee_p, _ = proc
        begin = next_office_instant(t0, sat)
        due = add_working_seconds(begin, 4 * HOUR) if days == 0 else add_working_days(begin, days)
        due = math.ceil(due / 60.0) * 60.0
        fee = rng.random() < fee_p
        paid_at_receipt = fee and channel == "online" and rng.random() < p.pay_online
        digitized = rng.random() < p.digitized
        ev = []

        def emit(t: float, status: str, **kw) -> None:
            ev.append((t, status, kw))

        recv_kw = dict(channel=channel, due=dt(due), procedure=proc_code, fee=fee, digitized=digitized)
        if paid_at_receipt:
            recv_kw["paid_online"] = True
        emit(t0, "received", **recv_kw)
        t = add_working_seconds(max(t0, begin), rng.uniform(300.0, 0.4 * HOUR if days == 0 else 3 * HOUR), sat)
        if rng.random() < 0.02:
            emit(t, "rejected")
            self._push_all(p, code, ev)
            return
        emit(t, "in_process")
        span = max(600.0, working_seconds_between(t, due, sat))
        r = rng.random()
        late = r < p.late
        very_late = late and rng.random() < 0.3
        withdrawn = (not late) and rng.random() < 0.01
        n_supp = 0
        if rng.random() < (0.03 if days == 0 else 0.08):
            n_supp = 2 if rng.random() < 0.12 else 1
        wait_total = 0.0
        for _ in range(n_supp):
            t = add_working_seconds(t, rng.uniform(0.1, 0.4) * span, sat)
            emit(t, "supplement_requested")
            if withdrawn and rng.random() < 0.5:
                emit(add_working_seconds(t + rng.uniform(1, 5) * 86400.0, 600.0, sat), "withdrawn")
                self._push_all(p, code, ev)
                return
            back = next_office_instant(t + rng.uniform(0.3, 4.0) * 86400.0, sat)
            wait_total += back - t
            t = back
            emit(t, "in_process")
        if withdrawn:
            emit(add_working_seconds(t, rng.uniform(0.1, 0.6) * span, sat), "withdrawn")
            self._push_all(p, code, ev)
            return
        if late:
            extra = rng.uniform(2.0, 6.0) * 86400.0 if very_late else rng.uniform(0.05, 1.2) * 86400.0
            done = next_office_instant(due + wait_total + extra, sat)
        else:
            done = add_working_seconds(t, rng.betavariate(2.0, 2.5) * span * 0.95, sat)
            if n_supp <= 1:
                done = min(done, prev_office_instant(due + wait_total, sat))
            done = max(done, add_working_seconds(t, 60.0, sat))
        done = float(int(done))
        proc_kw: dict = {}
        if fee and not paid_at_receipt:
            fee_t = max(t + 30.0, done - rng.uniform(0.05, 0.5) * min(span, 4 * HOUR))
            fee_t = float(int(next_office_instant(fee_t, sat)))
            if fee_t < done:
                emit(fee_t, "fee_due")
            proc_kw["fee"] = True
            online_payer = channel == "online" and rng.random() < p.pay_online
            proc_kw["paid_online"] = online_payer or (channel != "online" and rng.random() < 0.3 * p.pay_online)
        if not digitized and rng.random() < 0.3:
            proc_kw["digitized"] = True  # components digitized later: the flag arrives on `processed`
        emit(done, "processed", **proc_kw)
        if channel == "online" and rng.random() < 0.7:
            ret = done + rng.uniform(120.0, 2 * HOUR)  # result sent electronically
        else:
            ret = add_working_seconds(done, rng.uniform(0.2, 16.0) * HOUR, sat)
        emit(float(int(ret)), "returned")
        self._push_all(p, code, ev)

    def _push_all(self, p: UnitProfile, code: str, ev: list) -> None:
        last = -math.inf
        for t, status, kw in ev:
            t = max(float(int(t)), last + 1.0)  # strictly increasing per dossier
            last = t
            self._push(t, DossierEvent(dossier=code, unit=p.unit, ts=dt(t), status=status, **kw))

