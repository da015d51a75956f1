"""Rain windows per station: rolling sums, the hydro-met rain day, rain class.

Representation (DESIGN §4, §7)
------------------------------
One ring buffer of 5-minute buckets shared by every station:
``buckets[slot, row]`` with ``slot = k mod 864`` (72 h of 300 s buckets) and
one row per station.  Buckets hold **fixed-point hundredths of a millimetre
in uint16**:

* each reading is rounded to the nearest 0.01 mm (``rint(rain_mm * 100)``,
  half to even) before it is added — gauges tip in 0.1/0.2 mm, so real
  readings are exact;
* a bucket saturates at 65,535 (655.35 mm in 5 minutes, several times the
  world record); a reading that would overflow it adds only what fits, and
  the running window sums receive exactly the amount that was stored, so
  windows always equal the sum of their buckets.

10,000 stations × 864 buckets × 2 bytes = 16.5 MiB, under the 25 MiB budget
(float32 would need 33 MiB).  Window sums are kept as running int32 totals
(exact integer arithmetic, no float drift): when the watermark bucket
advances, the buckets leaving each window are subtracted and their slots
cleared; an admitted reading adds its stored delta to every window whose
bucket range contains it.  Emitted values are ``round_value(sum / 100)``.

Windows ``1h 3h 6h 12h 24h 72h`` cover buckets ``K-n+1 … K`` with
``K = ceil(W / 300)`` (see streams.window).  ``rain_day`` covers
``rain_day_start(W) < t <= W`` (19:00 local is a bucket boundary).
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any, Sequence

import numpy as np

from ioc.catalog import Catalog
from ioc.events import Event
from ioc.records import Indicator
from ioc.timeutil import format_ts, rain_day_start
from streams.core import ProcessResult
from streams.window import (
    OK,
    STALE_S,
    admit_times,
    array_from_state,
    array_state,
    buckets_of,
    rejections_for,
    ring_slots,
    sorted_rank,
)

G_S = 300
RING = 864  # 72 h of 5-minute buckets
HORIZON_S = 72 * 3600.0
MAX_BUCKET = 65535  # uint16 hundredths of a mm
WINDOWS: tuple[tuple[str, int], ...] = (
    ("1h", 12),
    ("3h", 36),
    ("6h", 72),
    ("12h", 144),
    ("24h", 288),
    ("72h", 864),
)
DAY = len(WINDOWS)  # channel index of rain_day in the sums array
W24 = 4
N_CHANNELS = DAY + 1
# 24 h classes (DOMAIN §2), in hundredths: <6 light, <=15 rain, <=50 moderate, <=100 heavy, else very_heavy
CLASS_BOUNDS = np.array([600, 1501, 5001, 10001], dtype=np.int64)
CLASS_NAMES = ("light", "rain", "moderate", "heavy", "very_heavy")

# output plan in (name, window) string order; channel -1 = rain_class
_PLAN: list[tuple[str, str, int]] = sorted(
    [("rain_class", "24h", -1), ("rain_day_mm", "rain_day", DAY)]
    + [("rain_mm", w, i) for i, (w, _) in enumerate(WINDOWS)]
)

_get_t = attrgetter("t")
_get_station = attrgetter("station")
_get_rain = attrgetter("rain_mm")


def mm_values(hundredths: np.ndarray) -> list[float]:
    """Fixed-point hundredths → mm floats, identical to ``round_value(h / 100)``.

    ``h / 100.0`` is the double nearest to h/100, whose 3-decimal rounding is
    h/100 itself, so round_value would return the same double; dividing in
    numpy avoids a Python call per value (tests check the identity).
    """
    return (np.asarray(hundredths, dtype=np.int64) / 100.0).tolist()


def rain_class(sum_hundredths: int) -> str:
    return CLASS_NAMES[int(np.searchsorted(CLASS_BOUNDS, sum_hundredths, side="right"))]


class RainProcessor:
    """Rain feed processor (streams.core.Processor)."""

    feed = "rain"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._cap = 0
        self._alloc(len(catalog.stations) + 64)
        self._w: float | None = None  # watermark
        self._k: int | None = None  # watermark bucket
        self._ds: int | None = None  # rain-day start, in buckets
        self._register(sorted(catalog.stations))

    # ---------------------------------------------------------------- storage
    def _alloc(self, cap: int) -> None:
        n = len(self._ids)
        old = self.__dict__.get("_buckets")
        buckets = np.zeros((RING, cap), dtype=np.uint16)
        sums = np.zeros((N_CHANNELS, cap), dtype=np.int32)
        sent = np.full((N_CHANNELS, cap), -1, dtype=np.int32)  # last emitted sums, -1 = never
        sent_class = np.full(cap, -1, dtype=np.int8)
        sent_stale = np.zeros(cap, dtype=bool)
        last_t = np.full(cap, -np.inf)
        unknown = np.zeros(cap, dtype=bool)
        if old is not None and n:
            buckets[:, :n] = self._buckets[:, :n]
            sums[:, :n] = self._sums[:, :n]
            sent[:, :n] = self._sent[:, :n]
            sent_class[:n] = self._sent_class[:n]
            sent_stale[:n] = self._sent_stale[:n]
            last_t[:n] = self._last_t[:n]
            unknown[:n] = self._unknown[:n]
        self._buckets, self._sums, self._sent = buckets, sums, sent
        self._sent_class, self._sent_stale, self._last_t, self._unknown = sent_class, sent_stale, last_t, unknown
        self._cap = cap

    def _register(self, names: Sequence[str]) -> None:
        need = len(self._ids) + len(names)
        if need > self._cap:
            self._alloc(max(need, self._cap + self._cap // 4))
        stations = self.catalog.stations
        for name in names:
            i = len(self._ids)
            self._ids.append(name)
            self._index[name] = i
            self._unknown[i] = name not in stations
        self._rank = sorted_rank(self._ids)

    @property
    def nbytes(self) -> int:
        """Bytes of window state held in numpy arrays."""
        return sum(
            a.nbytes
            for a in (
                self._buckets,
                self._sums,
                self._sent,
                self._sent_class,
                self._sent_stale,
                self._last_t,
                self._unknown,
                self._rank,
            )
        )

    @property
    def watermark(self) -> float | None:
        return self._w

    # ---------------------------------------------------------------- windows
    def _advance(self, k_new: int, ds_new: int) -> None:
        """Move the watermark bucket to k_new (and the rain day to ds_new)."""
        n = len(self._ids)
        k = self._k
        b = self._buckets
        if k is None:
            self._k, self._ds = k_new, ds_new
            return
        d = k_new - k
        if d > 0:
            for w, (_, nb) in enumerate(WINDOWS):
                if d >= nb:
                    self._sums[w, :n] = 0
                else:
                    sl = ring_slots(k - nb + 1, k - nb + d, RING)
                    self._sums[w, :n] -= b[sl, :n].sum(axis=0, dtype=np.int32)
            if d >= RING:
                b[:, :n] = 0
            else:
                b[ring_slots(k + 1, k_new, RING), :n] = 0
        if ds_new != self._ds:
            lo, hi = max(ds_new + 1, k_new - RING + 1), k  # buckets after k are empty
            if lo <= hi:
                self._sums[DAY, :n] = b[ring_slots(lo, hi, RING), :n].sum(axis=0, dtype=np.int32)
            else:
                self._sums[DAY, :n] = 0
        self._k, self._ds = k_new, ds_new

    # ---------------------------------------------------------------- process
    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult:
        result = ProcessResult()
        if not events:
            return result
        t = np.fromiter(map(_get_t, events), dtype=np.float64, count=len(events))
        status, prior = admit_times(t, self._w, now, HORIZON_S)
        if status.any():
            result.rejections = rejections_for(self.feed, events, status, t, prior, now, "72 h")
            idx = np.flatnonzero(status == OK)
            if len(idx) == 0:
                return result
            events = [events[i] for i in idx.tolist()]
            t, prior = t[idx], prior[idx]
        m = len(events)
        result.accepted = m
        index_get = self._index.get
        rows_l = list(map(index_get, map(_get_station, events)))
        if None in rows_l:
            new = []
            for ev, r in zip(events, rows_l):
                if r is None and ev.station not in self._index and ev.station not in new:
                    new.append(ev.station)
            self._register(new)
            rows_l = list(map(self._index.__getitem__, map(_get_station, events)))
        rows = np.array(rows_l, dtype=np.int64)
        rain = np.fromiter(map(_get_rain, events), dtype=np.float64, count=m)
        late = t < prior

        w_old = self._w
        w_new = float(t.max()) if w_old is None else max(w_old, float(t.max()))
        k_new = math.ceil(w_new / G_S)
        ds_new = int(rain_day_start(w_new)) // G_S
        advanced = k_new != self._k or ds_new != self._ds
        if advanced:
            self._advance(k_new, ds_new)
        self._w = w_new

        k = buckets_of(t, G_S)
        keep = k > k_new - RING
        np.maximum.at(self._last_t, rows, t)
        late_rows = None
        if not keep.all():
            rows_k, k, amt_src, late_k = rows[keep], k[keep], rain[keep], late[keep]
        else:
            rows_k, amt_src, late_k = rows, rain, late
        if len(rows_k):
            amt = np.minimum(np.rint(amt_src * 100.0), MAX_BUCKET).astype(np.int64)
            base = k_new - RING + 1
            key = rows_k * RING + (k - base)
            uk, inv = np.unique(key, return_inverse=True)
            agg = np.bincount(inv, weights=amt).astype(np.int64)
            urow = uk // RING
            uk_k = uk % RING + base
            uslot = uk_k % RING
            old = self._buckets[uslot, urow].astype(np.int64)
            new = np.minimum(old + agg, MAX_BUCKET)
            self._buckets[uslot, urow] = new
            delta = (new - old).astype(np.int32)
            nz = delta != 0
            if not nz.all():
                urow, uk_k, delta = urow[nz], uk_k[nz], delta[nz]
            for w, (_, nb) in enumerate(WINDOWS):
                sel = uk_k > k_new - nb
                if sel.all():
                    np.add.at(self._sums[w], urow, delta)
                elif sel.any():
                    np.add.at(self._sums[w], urow[sel], delta[sel])
            sel = uk_k > self._ds
            if sel.any():
                np.add.at(self._sums[DAY], urow[sel], delta[sel])
            if late_k.any():
                late_rows = self._late_rows(rows_k[late_k], k[late_k], k_new)

        # ------------------------------------------------------------ emission
        n = len(self._ids)
        has = self._last_t[:n] > -np.inf
        stale = has & ((w_new - self._last_t[:n]) >= STALE_S)
        stale_chg = stale != self._sent_stale[:n]
        if advanced:
            cand = np.flatnonzero(has)
        else:
            cand = np.union1d(rows, np.flatnonzero(stale_chg))
        cand = cand[np.argsort(self._rank[cand], kind="stable")]
        result.indicators = self._emit(cand, stale, stale_chg, late_rows, format_ts(w_new))
        return result

    def _late_rows(self, rows: np.ndarray, k: np.ndarray, k_new: int) -> np.ndarray:
        """late[channel, row]: a late reading of this batch falls in that window."""
        n = len(self._ids)
        late = np.zeros((N_CHANNELS, n), dtype=bool)
        for w, (_, nb) in enumerate(WINDOWS):
            late[w, rows[k > k_new - nb]] = True
        late[DAY, rows[k > self._ds]] = True
        return late

    def _emit(
        self,
        cand: np.ndarray,
        stale: np.ndarray,
        stale_chg: np.ndarray,
        late_rows: np.ndarray | None,
        ts: str,
    ) -> list[Indicator]:
        out: list[Indicator] = []
        if len(cand) == 0:
            return out
        ids = self._ids
        unknown = self._unknown
        st_c = stale_chg[cand]
        cur = self._sums[:, cand]
        cls = np.searchsorted(CLASS_BOUNDS, cur[W24], side="right").astype(np.int8)
        for name, window, ch in _PLAN:
            if ch < 0:
                chg = (cls != self._sent_class[cand]) | st_c
                rows = cand[chg]
                vals = [CLASS_NAMES[c] for c in cls[chg].tolist()]
                unit = None
                lch = W24
                self._sent_class[rows] = cls[chg]
            else:
                chg = (cur[ch] != self._sent[ch, cand]) | st_c
                rows = cand[chg]
                v = cur[ch][chg]
                self._sent[ch, rows] = v
                vals = mm_values(v)
                unit = "mm"
                lch = ch
            if len(rows) == 0:
                continue
            stale_l = stale[rows].tolist()
            unk_l = unknown[rows].tolist()
            late_l = late_rows[lch, rows].tolist() if late_rows is not None else [False] * len(rows)
            # positional: name, window, entity, ts, value, unit, period, stale, unknown, late
            out += [
                Indicator(name, window, ids[r], ts, v, unit, None, s, u, lt)
                for r, v, s, u, lt in zip(rows.tolist(), vals, stale_l, unk_l, late_l)
            ]
        self._sent_stale[cand] = stale[cand]
        return out

    # ---------------------------------------------------------------- flush
    def flush(self) -> list[Indicator]:
        """Every current rain indicator of every station that has reported, sorted."""
        if self._w is None:
            return []
        n = len(self._ids)
        has = self._last_t[:n] > -np.inf
        stale = has & ((self._w - self._last_t[:n]) >= STALE_S)
        cand = np.flatnonzero(has)
        cand = cand[np.argsort(self._rank[cand], kind="stable")]
        ts = format_ts(self._w)
        cur = self._sums[:, cand]
        cls = np.searchsorted(CLASS_BOUNDS, cur[W24], side="right")
        out: list[Indicator] = []
        for name, window, ch in _PLAN:
            if ch < 0:
                vals = [CLASS_NAMES[c] for c in cls.tolist()]
                unit = None
            else:
                vals = mm_values(cur[ch])
                unit = "mm"
            for r, v in zip(cand.tolist(), vals):
                out.append(
                    Indicator(
                        name=name,
                        window=window,
                        entity=self._ids[r],
                        ts=ts,
                        value=v,
                        unit=unit,
                        stale=bool(stale[r]),
                        unknown=bool(self._unknown[r]),
                    )
                )
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        n = len(self._ids)
        return {
            "version": 1,
            "watermark": self._w,
            "k": self._k,
            "ds": self._ds,
            "ids": list(self._ids),
            "buckets": array_state(self._buckets[:, :n]),
            "sums": array_state(self._sums[:, :n]),
            "sent": array_state(self._sent[:, :n]),
            "sent_class": array_state(self._sent_class[:n]),
            "sent_stale": array_state(self._sent_stale[:n]),
            "last_t": array_state(self._last_t[:n]),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        ids = list(state["ids"])
        self._ids, self._index = [], {}
        self._cap = 0
        self.__dict__.pop("_buckets", None)
        self._alloc(len(ids) + 64)
        self._register(ids)
        n = len(ids)
        self._buckets[:, :n] = array_from_state(state["buckets"])
        self._sums[:, :n] = array_from_state(state["sums"])
        self._sent[:, :n] = array_from_state(state["sent"])
        self._sent_class[:n] = array_from_state(state["sent_class"])
        self._sent_stale[:n] = array_from_state(state["sent_stale"])
        self._last_t[:n] = array_from_state(state["last_t"])
        self._w, self._k, self._ds = state["watermark"], state["k"], state["ds"]
        missing = sorted(s for s in self.catalog.stations if s not in self._index)
        if missing:
            self._register(missing)
