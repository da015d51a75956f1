"""Rain windows per station: rolling sums, the hydro-met rain day, rain class.

Representation (docs/architecture.md: time semantics, budgets)
--------------------------------------------------------------
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

10,000 stations × 864 buckets × 2 bytes = 16.5 MiB (float32 would need
33 MiB).  Window sums are kept as running int32 totals
(exact integer arithmetic, no float drift): when the watermark bucket
advances, the buckets leaving each window are subtracted and their slots
cleared; an admitted reading adds its stored delta to every window whose
bucket range contains it.  Emitted values are ``round_value(sum / 100)``.

Windows ``1h 3h 6h 12h 24h 72h`` cover buckets ``K-n+1 … K`` with
``K = ceil(W / 300)`` (see streams.window).  ``rain_day`` covers
``rain_day_start(W) < t <= W`` (19:00 local is a bucket boundary).

Event identity (natural key ``(station, ts)``, ts at 0.01 s)
-------------------------------------------------------------
Beside each bucket, ``codes[slot, row]`` (uint16) says which readings it
holds: 0 = none; 1 … 30,000 = exactly one reading, at that offset inside
the bucket in centiseconds (bucket ``k`` covers ``(k-1)·300 s < t <= k·300 s``,
so the offset of a reading at ``t`` centiseconds is ``t − (k−1)·30,000``);
``MULTI`` (65,535) = several readings, listed in a small overflow map
``multi[k][row] = {offset_cs: hundredths}`` whose sum (saturated) is the
bucket.  With one reading per bucket — the usual 5-minute cadence — the
bucket *is* that reading's stored value, so no overflow entry exists and
identity costs 2 bytes per bucket: 10,000 stations × 72 h = 16.5 MiB, for
33 MiB of keys + windows in all (budget 40 MiB, docs/architecture.md).

A reading whose key is already held is a **duplicate** when its stored value
(hundredths, saturated) is the same — nothing changes, nothing is emitted —
and a **correction** otherwise: the bucket becomes the new value (or the new
overflow sum) and every window containing it gets new − old, then the
changed indicators are re-emitted like a late reading's.  Codes and overflow
entries are cleared with their bucket when it leaves the ring, i.e. identity
holds for the whole 72 h horizon.  A reading admitted by time but whose
bucket is already outside the ring (the oldest 5 minutes of the horizon)
counts nothing and is reported as accepted.  Values compare at the stored
resolution: a re-send that differs by less than 0.005 mm is a duplicate.

Bound: the overflow map costs ~90 bytes per reading, so a station sending
faster than every 5 minutes costs more (a 1-minute cadence ≈ 4 × 90 bytes
per bucket beyond the first reading).  At most ``max_readings_per_bucket``
(default 30, one per 10 s) distinct readings of one station are kept per
5-minute bucket; a further new key there is refused with ``too_frequent``
(re-sends and corrections of kept readings are still recognised).  Such a
reading was admitted by time first, so it still counts for the watermark
and the station's last-seen time.

Unknown stations (missing from the catalog) get a row like any other, up to
``max_unknown_entities``; past it their readings are refused with
``unknown_entity_limit`` (streams.window).

Quarantine (docs/architecture.md §4)
------------------------------------
A reading beyond its station's physical limits (`alerts.detectors.RainLimits`:
the catalog's per-station limits, else the ``implausible_reading`` rule's) is
accepted but **kept out of every window sum**: its key and value are held in
``_quar[k][row] = {offset_cs: (hundredths, reason)}`` beside the buckets, so a
re-send of the same value is a duplicate and another value a correction — a
plausible one leaves quarantine and enters the sums, an implausible one stays
out.  A quarantined reading that replaces a plausible one takes that one's
value out of the sums.  Each reading quarantined (new or corrected) is listed
in ``ProcessResult.quarantined`` (the engine raises the data-quality alert from
it) and the station's ``rain_quarantined_mm`` (72h: the sum of the readings held
out) is emitted when it changes.  The hot path pays one vectorised comparison
against the per-row prefilter (`RainLimits.prefilter_mm`).
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any, Sequence

import numpy as np

from alerts.detectors import RainLimits
from ioc.catalog import Catalog
from ioc.errors import Reason, Rejection
from ioc.events import Event, encode_event
from ioc.records import Indicator
from ioc.timeutil import format_ts, rain_day_start
from streams.core import Outcome, ProcessResult, Quarantined
from streams.window import (
    MAX_UNKNOWN_ENTITIES,
    OK,
    STALE_S,
    admit_capped,
    admit_times,
    cap_rejection,
    centis,
    array_from_state,
    array_state,
    rejections_for,
    ring_slots,
    sorted_rank,
)

G_S = 300
RING = 864  # 72 h of 5-minute buckets
HORIZON_S = 72 * 3600.0
MAX_BUCKET = 65535  # uint16 hundredths of a mm
G_CS = G_S * 100  # bucket length in centiseconds
CODE_EMPTY = 0
CODE_MULTI = 65535  # several readings: see RainProcessor._multi
CODE_LEGACY = 65534  # restored from a version-1 state: readings of unknown offsets, their sum in the bucket
_ACC, _DUP, _COR, _REJ = (int(o) for o in Outcome)
MAX_READINGS_PER_BUCKET = 30  # distinct readings of one station in one 5-minute bucket (one per 10 s)
STATE_VERSION = 3  # 3: quarantine; 2: event identity; 1: sums only
QUARANTINED = "rain_quarantined_mm"  # indicator: the station's readings held out of the 72 h sums
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
# 24 h classes (docs/architecture.md), in hundredths: <6 light, <=15 rain, <=50 moderate, <=100 heavy, else very_heavy
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

    def __init__(
        self,
        catalog: Catalog,
        max_unknown_entities: int = MAX_UNKNOWN_ENTITIES,
        max_readings_per_bucket: int = MAX_READINGS_PER_BUCKET,
        limits: RainLimits | None = None,
    ) -> None:
        self.catalog = catalog
        self.limits = limits if limits is not None else RainLimits()
        self._limits_row: list[RainLimits] = []  # per row: the station's limits
        # bucket k -> row -> {offset_cs: (hundredths, reason)}: quarantined readings (kept out of the sums)
        self._quar: dict[int, dict[int, dict[int, tuple[int, str]]]] = {}
        self._q_changed: set[int] = set()  # rows whose quarantined total changed in this batch
        self.max_unknown_entities = max_unknown_entities
        self.max_readings_per_bucket = max_readings_per_bucket
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._cap = 0
        self._n_unknown = 0
        # bucket k -> row -> {offset_cs: hundredths}: the buckets holding several readings
        self._multi: dict[int, dict[int, dict[int, int]]] = {}
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
        codes = np.zeros((RING, cap), dtype=np.uint16)
        sums = np.zeros((N_CHANNELS, cap), dtype=np.int32)
        sent = np.full((N_CHANNELS, cap), -1, dtype=np.int32)  # last emitted sums, -1 = never
        sent_class = np.full(cap, -1, dtype=np.int8)
        sent_stale = np.zeros(cap, dtype=bool)
        last_t = np.full(cap, -np.inf)
        unknown = np.zeros(cap, dtype=bool)
        lim = np.full(cap, np.inf)
        if old is not None and n:
            buckets[:, :n] = self._buckets[:, :n]
            codes[:, :n] = self._codes[:, :n]
            sums[:, :n] = self._sums[:, :n]
            sent[:, :n] = self._sent[:, :n]
            sent_class[:n] = self._sent_class[:n]
            sent_stale[:n] = self._sent_stale[:n]
            last_t[:n] = self._last_t[:n]
            unknown[:n] = self._unknown[:n]
            lim[:n] = self._lim[:n]
        self._lim = lim  # per row: RainLimits.prefilter_mm (a reading at or below it is plausible)
        self._buckets, self._codes, self._sums, self._sent = buckets, codes, sums, sent
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
            unknown = name not in stations
            self._unknown[i] = unknown
            st = stations.get(name)
            lim = self.limits if st is None else self.limits.with_station(st.rain_max_reading_mm,
                                                                          st.rain_max_rate_mm_h)
            self._limits_row.append(lim)
            self._lim[i] = lim.prefilter_mm
            self._n_unknown += unknown
        self._rank = sorted_rank(self._ids)

    @property
    def nbytes(self) -> int:
        """Bytes of window + identity state held in numpy arrays (see `multi_entries` for the rest)."""
        return sum(
            a.nbytes
            for a in (
                self._buckets,
                self._codes,
                self._sums,
                self._sent,
                self._sent_class,
                self._sent_stale,
                self._last_t,
                self._unknown,
                self._lim,
                self._rank,
            )
        )

    @property
    def multi_entries(self) -> int:
        """Readings held in the overflow map (buckets with several readings)."""
        return sum(len(d) for rows in self._multi.values() for d in rows.values())

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
            if self._quar:
                gone = k_new - RING
                for kk in [kk for kk in self._quar if kk <= gone]:
                    self._q_changed.update(self._quar.pop(kk))
            if d >= RING:
                b[:, :n] = 0
                self._codes[:, :n] = 0
                self._multi.clear()
            else:
                sl = ring_slots(k + 1, k_new, RING)
                b[sl, :n] = 0
                self._codes[sl, :n] = 0
                if self._multi:
                    gone = k_new - RING
                    for kk in [kk for kk in self._multi if kk <= gone]:
                        del self._multi[kk]
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
        n_in = len(events)
        if not n_in:
            return result.set_outcome(np.zeros(0, dtype=np.int8))
        t = np.fromiter(map(_get_t, events), dtype=np.float64, count=n_in)
        rows_l = list(map(self._index.get, map(_get_station, events)))
        added = None
        if None in rows_l:  # stations not seen yet: all unknown (the catalog's are registered)
            room = max(0, self.max_unknown_entities - self._n_unknown)
            new_ids = [() if r is not None else (ev.station,) for ev, r in zip(events, rows_l)]
            status, prior, added = admit_capped(t, self._w, now, HORIZON_S, new_ids, room)
        else:
            status, prior = admit_times(t, self._w, now, HORIZON_S)
        idx = None
        if status.any():
            cap = self.max_unknown_entities
            result.rejections = rejections_for(
                self.feed, events, status, t, prior, now, "72 h",
                capped=lambda i: cap_rejection(self.feed, events[i], f"station {events[i].station!r}", cap, i),
            )
            idx = np.flatnonzero(status == OK)
            if len(idx) == 0:
                return result.set_outcome(np.full(n_in, _REJ, dtype=np.int8))
            il = idx.tolist()
            events = [events[i] for i in il]
            rows_l = [rows_l[i] for i in il]
            t, prior = t[idx], prior[idx]
        if added:
            self._register(added)
            index = self._index
            rows_l = [index[ev.station] if r is None else r for ev, r in zip(events, rows_l)]
        m = len(events)
        rows = np.array(rows_l, dtype=np.int64)
        rain = np.fromiter(map(_get_rain, events), dtype=np.float64, count=m)
        late = t < prior
        sus = rain > self._lim[rows]  # the only quarantine cost of a batch without suspect readings
        bad = self._suspects(rows, t, rain, np.flatnonzero(sus)) if sus.any() else None

        w_old = self._w
        w_new = float(t.max()) if w_old is None else max(w_old, float(t.max()))
        k_new = math.ceil(w_new / G_S)
        ds_new = int(rain_day_start(w_new)) // G_S
        advanced = k_new != self._k or ds_new != self._ds
        if advanced:
            self._advance(k_new, ds_new)
        self._w = w_new

        tc = centis(t)
        k = -(-tc // G_CS)  # right-closed bucket of the time in centiseconds
        np.maximum.at(self._last_t, rows, t)
        outcome = np.zeros(m, dtype=np.int8)  # ACCEPTED unless found otherwise
        keep = k > k_new - RING
        all_kept = bool(keep.all())
        late_rows = None
        if all_kept:
            kept = None
            rows_k, k_k, tc_k, rain_k, late_k = rows, k, tc, rain, late
        else:
            kept = np.flatnonzero(keep)
            rows_k, k_k, tc_k, rain_k, late_k = rows[kept], k[kept], tc[kept], rain[kept], late[kept]
        if len(rows_k):
            amt = np.minimum(np.rint(rain_k * 100.0), MAX_BUCKET).astype(np.int64)
            off = tc_k - (k_k - 1) * G_CS  # 1 … 30000
            if bad is None and not self._quar:
                o_k, urow, uk_k, delta = self._store(rows_k, k_k, off, amt, k_new)
            else:
                why = [None] * len(rows_k) if bad is None else [
                    bad.get(j) for j in (range(len(rows_k)) if kept is None else kept.tolist())]
                o_k, urow, uk_k, delta = self._store_mixed(rows_k, k_k, off, amt, rain_k, why, k_new)
                self._report_quarantined(result, rows_k, tc_k, rain_k, late_k, why, o_k)
            if kept is None:
                outcome = o_k
            else:
                outcome[kept] = o_k
            for w, (_, nb) in enumerate(WINDOWS):
                sel = uk_k > k_new - nb
                if sel.all():
                    np.add.at(self._sums[w], urow, delta)
                elif sel.any():
                    np.add.at(self._sums[w], urow[sel], delta[sel])
            sel = uk_k > self._ds
            if sel.any():
                np.add.at(self._sums[DAY], urow[sel], delta[sel])
            late_k = late_k & (o_k != _DUP) & (o_k != _REJ)  # a duplicate changes nothing: it flags nothing late
            if (o_k == _REJ).any():
                self._too_frequent(result, events, o_k, kept, idx)
            if late_k.any():
                late_rows = self._late_rows(rows_k[late_k], k_k[late_k], k_new)

        self._emit_changed(result, rows, late_rows, w_new, advanced)
        if idx is not None:
            full = np.full(n_in, _REJ, dtype=np.int8)
            full[idx] = outcome
            outcome = full
        return result.set_outcome(outcome)

    def advance_to(self, t: float) -> ProcessResult:
        """Move the watermark to t with no reading: the partition's gauges are silent while the feed's
        time moves on elsewhere (docs/scaling.md, idle partitions).  Windows slide and stale flags
        change exactly as if another station's reading at t had arrived."""
        result = ProcessResult().set_outcome(np.zeros(0, dtype=np.int8))
        if self._w is not None and t <= self._w:
            return result
        k_new = math.ceil(t / G_S)
        ds_new = int(rain_day_start(t)) // G_S
        advanced = k_new != self._k or ds_new != self._ds
        if advanced:
            self._advance(k_new, ds_new)
        self._w = t
        self._emit_changed(result, np.zeros(0, dtype=np.int64), None, t, advanced)
        return result

    def _emit_changed(self, result: ProcessResult, rows: np.ndarray, late_rows: Any, w_new: float,
                      advanced: bool) -> None:
        """The indicators of the stations `rows` touched, or of every station when the windows moved."""
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
        if self._q_changed:
            result.indicators += self._quarantine_indicators(sorted(self._q_changed, key=self._rank.__getitem__),
                                                             stale, format_ts(w_new))
            self._q_changed = set()

    # ---------------------------------------------------------------- quarantine
    def _suspects(self, rows: np.ndarray, t: np.ndarray, rain: np.ndarray, sus: np.ndarray) -> dict[int, str]:
        """{index: reason} of the readings beyond their station's limits (`RainLimits.why`).

        The interval of a reading is the time since the latest earlier reading of
        its station in arrival order (none when it is not later: a late reading is
        judged on its amount alone), as the engine's detectors always did.
        """
        if not len(sus):
            return {}
        want = set(rows[sus].tolist())
        last = {r: float(self._last_t[r]) for r in want}  # before this batch
        sus_set = set(sus.tolist())
        out: dict[int, str] = {}
        for j, (r, tj, mm) in enumerate(zip(rows.tolist(), t.tolist(), rain.tolist())):
            if r not in want:
                continue
            lt = last[r]
            if j in sus_set:
                dt = tj - lt if lt > -math.inf and tj > lt else None
                why = self._limits_row[r].why(mm, dt)
                if why is not None:
                    out[j] = why
            if tj > lt:
                last[r] = tj
        return out

    def _store_mixed(self, rows, k, off, amt, rain, why: list[str | None], k_new: int):
        """`_store` for a batch holding quarantined readings (or readings of a station holding some).

        Runs of plausible readings go through `_store`, each quarantined one
        through `_quarantine`, in arrival order; a plausible reading whose key
        is quarantined replaces it (a correction).
        """
        m = len(rows)
        outcome = np.zeros(m, dtype=np.int8)
        parts_r, parts_k, parts_d = [], [], []
        j = 0
        while j < m:
            if why[j] is not None:
                o, dr, dk, dd = self._quarantine(int(rows[j]), int(k[j]), int(off[j]), float(rain[j]), why[j])
                outcome[j] = o
                if dd:
                    parts_r.append(np.array([dr])), parts_k.append(np.array([dk])), parts_d.append(np.array([dd]))
                j += 1
                continue
            e = j
            while e < m and why[e] is None:
                e += 1
            o, ur, uk, d = self._store(rows[j:e], k[j:e], off[j:e], amt[j:e], k_new)
            if self._quar:  # a good value re-sent for a quarantined key: it leaves quarantine
                for i in range(j, e):
                    q = self._quar.get(int(k[i]), {}).get(int(rows[i]))
                    if q is not None and int(off[i]) in q and o[i - j] != _REJ:
                        del q[int(off[i])]
                        self._q_changed.add(int(rows[i]))
                        o[i - j] = _COR
            outcome[j:e] = o
            parts_r.append(ur), parts_k.append(uk), parts_d.append(d)
            j = e
        if not parts_r:
            z = np.zeros(0, dtype=np.int64)
            return outcome, z, z, z.astype(np.int32)
        return (outcome, np.concatenate(parts_r).astype(np.int64), np.concatenate(parts_k).astype(np.int64),
                np.concatenate(parts_d).astype(np.int32))

    def _quarantine(self, r: int, kk: int, of: int, mm: float, why: str) -> tuple[int, int, int, int]:
        """Hold one implausible reading out of the sums: (outcome, row, bucket, delta of the bucket)."""
        h = int(round(mm * 100.0))  # half to even, like rint
        q = self._quar.setdefault(kk, {}).setdefault(r, {})
        prev = q.get(of)
        if prev is not None:
            if prev[0] == h:
                return _DUP, r, kk, 0
            q[of] = (h, why)
            self._q_changed.add(r)
            return _COR, r, kk, 0
        outcome, delta = _ACC, 0
        slot = kk % RING
        code = int(self._codes[slot, r])
        if code == of:  # a plausible reading held under this key: the bad value replaces it
            delta = -int(self._buckets[slot, r])
            self._buckets[slot, r] = 0
            self._codes[slot, r] = CODE_EMPTY
            outcome = _COR
        elif code == CODE_MULTI:
            d = self._multi[kk][r]
            if of in d:
                old = int(self._buckets[slot, r])
                del d[of]
                new = min(sum(d.values()), MAX_BUCKET)
                self._buckets[slot, r] = new
                delta = new - old
                outcome = _COR
        q[of] = (h, why)
        self._q_changed.add(r)
        return outcome, r, kk, delta

    def _report_quarantined(self, result: ProcessResult, rows, tc, rain, late, why, o_k) -> None:
        ids = self._ids
        for j, w in enumerate(why):
            if w is not None and o_k[j] != _DUP:
                result.quarantined.append(
                    Quarantined(self.feed, ids[int(rows[j])], int(tc[j]) / 100.0, float(rain[j]), w, bool(late[j])))

    def _quarantine_totals(self) -> dict[int, int]:
        tot: dict[int, int] = {}
        for rows in self._quar.values():
            for r, d in rows.items():
                if d:
                    tot[r] = tot.get(r, 0) + sum(h for h, _ in d.values())
        return tot

    def _quarantine_indicators(self, rows: list[int], stale: np.ndarray, ts: str) -> list[Indicator]:
        tot = self._quarantine_totals()
        return [Indicator(QUARANTINED, "72h", self._ids[r], ts, tot.get(r, 0) / 100.0, "mm", None,
                          bool(stale[r]), bool(self._unknown[r])) for r in rows]

    def quarantined(self) -> list[dict[str, Any]]:
        """The readings held out of the sums, by station then time (for engineers: the station's history)."""
        out = []
        for kk, rows in self._quar.items():
            for r, d in rows.items():
                for of, (h, why) in d.items():
                    t = ((kk - 1) * G_CS + of) / 100.0
                    out.append({"station": self._ids[r], "ts": format_ts(t), "rain_mm": h / 100.0, "reason": why,
                                "_k": (self._rank[r], t)})
        out.sort(key=lambda x: x.pop("_k"))
        return out

    def _too_frequent(self, result: ProcessResult, events: Sequence[Event], o_k: np.ndarray, kept, idx) -> None:
        """Rejections of readings refused because their bucket holds the most readings kept."""
        cap = self.max_readings_per_bucket
        for j in np.flatnonzero(o_k == _REJ).tolist():
            a = j if kept is None else int(kept[j])  # index among the admitted events
            ev = events[a]
            pos = a if idx is None else int(idx[a])
            detail = (
                f"station {ev.station!r} already has {cap} distinct readings in the 5-minute bucket of "
                f"{format_ts(ev.t)}; more than {cap} per station per 5 minutes are refused (max_readings_per_bucket)"
            )
            result.rejections.append(Rejection(Reason.TOO_FREQUENT, detail, self.feed, encode_event(ev), pos))
        result.rejections.sort(key=lambda r: r.position)

    def _store(
        self, rows: np.ndarray, k: np.ndarray, off: np.ndarray, amt: np.ndarray, k_new: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Put readings (row, bucket, offset_cs, hundredths; in arrival order) into their buckets.

        Returns the outcome of each reading and the net change of every
        bucket that changed: (outcome, rows, buckets, delta).  Buckets that
        were empty and get one reading of this batch take the vectorised
        path; the others (a key seen before, or several readings of one
        bucket) are resolved reading by reading, in order.
        """
        base = k_new - RING + 1
        key = rows * RING + (k - base)
        uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        urow = uk // RING
        uk_k = uk % RING + base
        uslot = uk_k % RING
        codes = self._codes[uslot, urow]
        fast = (cnt == 1) & (codes == CODE_EMPTY)
        m = len(key)
        outcome = np.zeros(m, dtype=np.int8)
        first = np.empty(len(uk), dtype=np.int64)
        first[inv] = np.arange(m, dtype=np.int64)  # the reading of a one-reading key
        if fast.all():
            e = first
            self._codes[uslot, urow] = off[e]
            self._buckets[uslot, urow] = amt[e]
            delta = amt[e].astype(np.int32)
            nz = delta != 0
            if not nz.all():
                return outcome, urow[nz], uk_k[nz], delta[nz]
            return outcome, urow, uk_k, delta
        fu = np.flatnonzero(fast)
        e = first[fu]
        f_row, f_k, f_slot = urow[fu], uk_k[fu], uslot[fu]
        self._codes[f_slot, f_row] = off[e]
        self._buckets[f_slot, f_row] = amt[e]
        f_delta = amt[e]

        su = np.flatnonzero(~fast)
        s_row, s_k, s_slot = urow[su], uk_k[su], uslot[su]
        s_code = codes[su].tolist()
        old_b = self._buckets[s_slot, s_row].astype(np.int64)
        s_b = old_b.tolist()
        slot_of = np.full(len(uk), -1, dtype=np.int64)
        slot_of[su] = np.arange(len(su), dtype=np.int64)
        ev = np.flatnonzero(~fast[inv])  # arrival order
        j_l = slot_of[inv[ev]].tolist()
        res: list[int] = []
        multi = self._multi
        for j, of, a, kk, r in zip(j_l, off[ev].tolist(), amt[ev].tolist(), k[ev].tolist(), rows[ev].tolist()):
            code = s_code[j]
            if code == CODE_EMPTY:
                s_code[j] = of
                s_b[j] = a
                res.append(_ACC)
                continue
            if code == of:  # one reading held, with this key
                if a == s_b[j]:
                    res.append(_DUP)
                else:
                    s_b[j] = a
                    res.append(_COR)
                continue
            if code == CODE_MULTI:
                d = multi[kk][r]
            else:  # one reading (or legacy sum) held under another key: list them
                d = {0 if code == CODE_LEGACY else code: s_b[j]}
                multi.setdefault(kk, {})[r] = d
                s_code[j] = CODE_MULTI
            prev = d.get(of)
            if prev is None:
                if len(d) >= self.max_readings_per_bucket:
                    res.append(_REJ)
                    continue
                res.append(_ACC)
            elif prev == a:
                res.append(_DUP)
                continue
            else:
                res.append(_COR)
            d[of] = a
            s_b[j] = min(sum(d.values()), MAX_BUCKET)
        outcome[ev] = res
        self._codes[s_slot, s_row] = s_code
        new_b = np.array(s_b, dtype=np.int64)
        self._buckets[s_slot, s_row] = new_b
        s_delta = new_b - old_b
        d_row = np.concatenate([f_row, s_row])
        d_k = np.concatenate([f_k, s_k])
        delta = np.concatenate([f_delta, s_delta]).astype(np.int32)
        nz = delta != 0
        return outcome, d_row[nz], d_k[nz], delta[nz]

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
        held = sorted(self._quarantine_totals(), key=self._rank.__getitem__)
        if held:
            st = np.zeros(self._cap, dtype=bool)
            st[:n] = stale
            out += self._quarantine_indicators(held, st, ts)
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        n = len(self._ids)
        return {
            "version": STATE_VERSION,
            "watermark": self._w,
            "k": self._k,
            "ds": self._ds,
            "ids": list(self._ids),
            "buckets": array_state(self._buckets[:, :n]),
            "codes": array_state(self._codes[:, :n]),
            "multi": [
                [kk, r, [[of, h] for of, h in d.items()]]
                for kk, rows in self._multi.items()
                for r, d in rows.items()
            ],
            "quarantine": [
                [kk, r, of, h, why]
                for kk, rows in self._quar.items()
                for r, d in rows.items()
                for of, (h, why) in d.items()
            ],
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
        self._n_unknown = 0
        self._multi = {}
        self._quar, self._q_changed = {}, set()
        self._limits_row = []
        self.__dict__.pop("_buckets", None)
        self._alloc(len(ids) + 64)
        self._register(ids)
        n = len(ids)
        self._buckets[:, :n] = array_from_state(state["buckets"])
        if "codes" in state:
            self._codes[:, :n] = array_from_state(state["codes"])
            for kk, r, entries in state["multi"]:
                self._multi.setdefault(int(kk), {})[int(r)] = {int(of): int(h) for of, h in entries}
        else:  # version 1: the buckets' readings are not known one by one
            self._codes[:, :n] = np.where(self._buckets[:, :n] > 0, CODE_LEGACY, CODE_EMPTY)
        for kk, r, of, h, why in state.get("quarantine", ()):  # versions 1 and 2 held none
            self._quar.setdefault(int(kk), {}).setdefault(int(r), {})[int(of)] = (int(h), str(why))
        self._sums[:, :n] = array_from_state(state["sums"])
        self._sent[:, :n] = array_from_state(state["sent"])
        self._sent_class[:n] = array_from_state(state["sent_class"])
        self._sent_stale[:n] = array_from_state(state["sent_stale"])
        self._last_t[:n] = array_from_state(state["last_t"])
        self._w, self._k, self._ds = state["watermark"], state["k"], state["ds"]
        missing = sorted(s for s in self.catalog.stations if s not in self._index)
        if missing:
            self._register(missing)
