"""Rain-day history per gauge, and the Decision 18 level of every commune, district and province.

Why per area: a risk level is an area's, not one gauge's (docs/domain.md §2).
A commune's level is the highest its gauges support, a district's the highest
of its communes, the province's the highest of its districts; the extent
(share of the province's communes, or districts, in the band) is the same for
every area of one province.

Days (the duration of Art. 44, the previous rain days of Art. 46) are
hydro-met rain days, 19:00–19:00 local.  A past day is in a band by its total
(``rain_day_mm`` at its end), or for band A by a 12 h sum inside the day
(rolling 12 h at 07:00 or later covers only that day), so one storm over
19:00 is one day, not two.  Rain now in a band lasts at least one day.

Pure and deterministic in event time; state is plain JSON for checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ioc.catalog import Catalog

from alerts.risk.article44 import band_of, level44
from alerts.risk.article46 import level46
from alerts.risk.tables import BANDS, Tables

_LOCAL_S = 7 * 3600
DAY_S = 86400


def rain_day(t: float) -> int:
    """Start (epoch s) of the hydro-met rain day (19:00–19:00 local) containing t."""
    return int((t + _LOCAL_S - 19 * 3600) // DAY_S) * DAY_S + 19 * 3600 - _LOCAL_S


@dataclass(frozen=True)
class AreaLevel:
    """One area's level now and what decided it (the gauge, its amount, band, days, extent)."""

    area: str
    area_level: str  # commune | district | province
    level: int
    clause: dict[str, str]
    band: str
    amount_mm: float  # the deciding gauge's sum over amount_hours: the clause that matched
    amount_hours: int  # 24, or 12 where band A holds by its 12 h clause only
    days: int  # Art. 44: days in the band; Art. 46: previous rain days
    extent_share: float  # Art. 44 only
    station: str
    terrain: str
    extent_fallback: bool = False
    susceptibility: str = ""  # Art. 46 only
    group: str = ""  # Art. 46 only


class _Gauge:
    __slots__ = ("v24", "v12", "days")

    def __init__(self) -> None:
        self.v24: float | None = None
        self.v12: float | None = None
        self.days: dict[int, list[float]] = {}  # rain day → [total mm, max 12 h sum inside the day]


class AreaRisk:
    """Feed it each gauge's latest 24 h, 12 h and rain-day sums; ask for the levels of the areas."""

    def __init__(self, tables: Tables, catalog: Catalog) -> None:
        self.tables = tables
        self.catalog = catalog
        self._g: dict[str, _Gauge] = {}
        self._hot: set[str] = set()  # gauges at or above the clear bounds: only they can hold a level
        # extent units (communes or districts) that have a gauge: the denominator of the extent
        self._extent_of: dict[str, str] = {}
        for s in catalog.stations.values():
            u = s.commune if tables.extent_unit == "commune" else s.district
            if u is not None:
                self._extent_of[s.id] = u
        self._n_extent = len(set(self._extent_of.values()))
        self._areas: dict[str, list[tuple[str, str]]] = {sid: self._walk_areas(sid) for sid in catalog.stations}
        self._zone: dict[str, tuple[str | None, str | None]] = {}  # commune → (susceptibility, region group)

    # ---------------------------------------------------------------- input
    def observe(self, station: str, t: float, mm_24h: float | None, mm_12h: float | None,
                mm_day: float | None) -> None:
        g = self._g.get(station)
        if g is None:
            if station not in self.catalog.stations:
                return  # an unknown gauge belongs to no area
            g = self._g[station] = _Gauge()
        g.v24, g.v12 = mm_24h, mm_12h
        d = rain_day(t)
        rec = g.days.get(d)
        if rec is None:
            rec = g.days[d] = [0.0, 0.0]
            while len(g.days) > self.tables.days_hold:
                del g.days[min(g.days)]
        if mm_day is not None and mm_day > rec[0]:
            rec[0] = mm_day
        if mm_12h is not None and t >= d + 12 * 3600 and mm_12h > rec[1]:
            rec[1] = mm_12h
        t_ = self.tables
        if (mm_24h or 0.0) >= t_.clear_24h_mm or (mm_12h or 0.0) >= t_.clear_12h_mm:
            self._hot.add(station)
        else:
            self._hot.discard(station)

    # ---------------------------------------------------------------- days
    def _day_in(self, g: _Gauge, d: int, band: str) -> bool:
        rec = g.days.get(d)
        if rec is None:
            return False
        a, b, c = self.tables.bands
        if band == "A":
            return rec[0] >= a.min_24h_mm or (a.min_12h_mm is not None and rec[1] >= a.min_12h_mm)
        return rec[0] > (b if band == "B" else c).min_24h_mm

    def days_in_band(self, station: str, today: int, band: str) -> int:
        """Consecutive rain days at `band` or above ending today (or yesterday, when today's total is not yet
        in the band); at least 1, since the gauge's amount now is in the band."""
        g = self._g[station]
        d = today if self._day_in(g, today, band) else today - DAY_S
        n = 0
        while self._day_in(g, d, band):
            n += 1
            d -= DAY_S
        return max(1, n)

    def prior_rain_days(self, station: str, today: int) -> int:
        """Consecutive days with rain (total ≥ prior_rain_day_mm) just before today (Art. 46)."""
        g = self._g[station]
        d, n = today - DAY_S, 0
        while (rec := g.days.get(d)) is not None and rec[0] >= self.tables.prior_rain_day_mm:
            n += 1
            d -= DAY_S
        return n

    # ---------------------------------------------------------------- areas
    def _amount(self, g: _Gauge, band: str) -> tuple[float, int]:
        a = self.tables.bands[0]
        if band == "A" and (g.v24 or 0.0) < a.min_24h_mm:
            return g.v12 or 0.0, 12
        return g.v24 or 0.0, 24

    def _bands_now(self) -> dict[str, str]:
        out = {}
        for sid in self._hot:
            g = self._g[sid]
            b = band_of(self.tables, g.v24, g.v12)
            if b is not None:
                out[sid] = b
        return out

    def extent_shares(self, bands: dict[str, str]) -> dict[str, float]:
        """Per band, the share of the province's extent units (with a gauge) at that band or above."""
        if not self._n_extent:
            return {}
        out = {}
        for i, x in enumerate(BANDS):
            units = {self._extent_of[s] for s, b in bands.items() if BANDS.index(b) >= i and s in self._extent_of}
            out[x] = len(units) / self._n_extent
        return out

    def _areas_of(self, station: str) -> list[tuple[str, str]]:
        return self._areas[station]

    def _walk_areas(self, station: str) -> list[tuple[str, str]]:
        s = self.catalog.stations[station]
        first = s.commune or s.district
        if first is None:
            return []
        out = []
        for uid in (first, *self.catalog.ancestors(first)):
            u = self.catalog.units.get(uid)
            if u is not None:
                out.append((uid, u.level))
        return out

    def hot_areas(self) -> set[str]:
        """Areas whose gauges are not all under the clear bounds (an alert there must not resolve yet)."""
        return {a for sid in self._hot for a, _ in self._areas_of(sid)}

    def evaluate44(self, t: float) -> dict[str, AreaLevel]:
        """Art. 44 level of every area with one, at event time t."""
        today = rain_day(t)
        bands = self._bands_now()
        shares = self.extent_shares(bands)
        best: dict[str, tuple] = {}
        stations = self.catalog.stations
        for sid in sorted(bands):
            band = bands[sid]
            terrain = stations[sid].terrain or "plain_coastal"  # unknown: the longer durations
            days = {x: self.days_in_band(sid, today, x) for x in BANDS[: BANDS.index(band) + 1]}
            lv = level44(self.tables, band, days, terrain, shares)
            if lv is None:
                continue
            amount, hours = self._amount(self._g[sid], lv.band)
            rank = (lv.level, amount)
            for area, kind in self._areas[sid]:
                cur = best.get(area)
                if cur is None or rank > cur[0]:
                    best[area] = (rank, kind, lv, amount, hours, sid, terrain)
        return {area: AreaLevel(area, kind, lv.level, lv.row.clause, lv.band, amount, hours, lv.days,
                                lv.extent_share, sid, terrain, lv.extent_fallback)
                for area, (_, kind, lv, amount, hours, sid, terrain) in best.items()}

    def evaluate46(self, t: float) -> dict[str, AreaLevel]:
        """Art. 46 level of every commune with one (undefined cells give none)."""
        today = rain_day(t)
        out: dict[str, AreaLevel] = {}
        for sid, band in sorted(self._bands_now().items()):
            s = self.catalog.stations[sid]
            if s.commune is None:
                continue
            prior = self.prior_rain_days(sid, today)
            sus, group = self._zone.get(s.commune) or self._zone.setdefault(
                s.commune, (self.catalog.susceptibility(s.commune), self.catalog.region_group(s.commune)))
            lv = level46(self.tables, band, prior, sus, group)
            if lv is None:
                continue
            amount, hours = self._amount(self._g[sid], band)
            cand = AreaLevel(s.commune, "commune", lv.level, self.tables.clause46, lv.band, amount, hours, prior,
                             0.0, sid, s.terrain or "", susceptibility=lv.susceptibility, group=lv.group)
            cur = out.get(s.commune)
            if cur is None or (cand.level, cand.amount_mm) > (cur.level, cur.amount_mm):
                out[s.commune] = cand
        return out

    # ---------------------------------------------------------------- checkpoints
    def get_state(self) -> dict[str, Any]:
        return {sid: [g.v24, g.v12, {str(d): rec for d, rec in sorted(g.days.items())}]
                for sid, g in sorted(self._g.items())}

    def set_state(self, state: dict[str, Any]) -> None:
        self._g.clear()
        self._hot.clear()
        for sid, (v24, v12, days) in state.items():
            g = self._g[sid] = _Gauge()
            g.v24, g.v12 = v24, v12
            g.days = {int(d): [float(rec[0]), float(rec[1])] for d, rec in days.items()}
            if (v24 or 0.0) >= self.tables.clear_24h_mm or (v12 or 0.0) >= self.tables.clear_12h_mm:
                self._hot.add(sid)
