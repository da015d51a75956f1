"""Detectors beyond thresholds (pure: event time in, verdicts out).

- **Stale** (`StaleTracker`): an entity (rain station, camera) whose last
  reading is ≥ N minutes older than *its own feed's* watermark.  Because it is
  relative to the feed's watermark and not to the wall clock, a replay behaves
  exactly like the live run, and a feed that stops altogether (watermark frozen)
  does not make every sensor "stale" — that is a feed outage, not a sensor one.
- **Flatline** (`SensorTrack.flat_*`): the same non-ignored reading repeated
  for at least `min_readings` readings spanning `min_duration` (a stuck tipping
  bucket reporting 2.4 mm every 5 minutes for hours; a camera frozen on 17
  people).  Zero is ignored by default: a dry gauge legitimately reports 0.
- **Physically implausible readings** (`implausible_rain`, `implausible_camera`):
  a data-quality alert.  How such readings are treated in the sums: the
  processors (streams/) count **every valid reading** in the windows — a
  reading is only refused at the boundary when it is malformed (e.g. negative
  rain).  So a 900 mm "spike" *is* in the 1h…72h sums and may trigger the rain
  rules.  The engine therefore labels any rain alert whose window contains an
  implausible reading of the same station with `data_quality: suspect`, and
  raises `implausible_reading` so an operator can judge.  Recommendation: keep
  counting (never silently drop what a sensor said), and if a province wants
  such readings excluded, have the rain processor call `implausible_rain()` and
  dead-letter the reading with reason `invalid_value` — one function, shared.
- **Seasonal anomaly** (`HourOfWeekBaseline`, `HourlySeries`): per entity, the
  hourly volume (dossiers received per unit; mean people waiting per site) is
  compared with the median of the same hour of the week over the last weeks,
  scaled by the MAD (robust z).  `score_one` returns None while warming up
  (fewer than `min_history` weeks for that hour); a point flagged as anomalous
  is not learned, so an outage or a surge does not become the new normal.
  The API mirrors river's `learn_one`/`score_one`.
"""

from __future__ import annotations

import heapq
from statistics import median
from typing import Iterator

WEEK_H = 168
_LOCAL_OFFSET_S = 7 * 3600  # Asia/Ho_Chi_Minh, no DST


def hour_of_week(t: float) -> int:
    """0 = Monday 00:00–01:00 local time … 167 = Sunday 23:00–24:00."""
    ls = int(t // 1) + _LOCAL_OFFSET_S
    days = ls // 86400
    return ((days + 3) % 7) * 24 + (ls % 86400) // 3600  # 1970-01-01 was a Thursday


# ---------------------------------------------------------------- implausible


def implausible_rain(rain_mm: float, dt_s: float | None, max_reading_mm: float = 100.0,
                     max_rate_mm_h: float = 300.0, min_interval_s: float = 300.0) -> str | None:
    """Why a rain reading is physically implausible, or None.

    `dt_s` is the time since the station's previous reading (None for the
    first).  A single reading above `max_reading_mm` is implausible whatever
    the interval; otherwise the implied intensity over max(dt, min_interval)
    must stay below `max_rate_mm_h` (the world 1-hour record is ~305 mm).
    """
    if rain_mm > max_reading_mm:
        return "reading_too_large"
    if dt_s is not None and rain_mm > 0:
        rate = rain_mm * 3600.0 / max(dt_s, min_interval_s)
        if rate > max_rate_mm_h:
            return "rate_too_high"
    return None


def implausible_camera(waiting: int, counters_open: int, max_waiting: float = 500.0,
                       max_counters_open: float | None = None) -> str | None:
    if waiting > max_waiting:
        return "waiting_too_large"
    if max_counters_open is not None and counters_open > max_counters_open:
        return "more_counters_than_site_has"
    return None


# ---------------------------------------------------------------- per-sensor track


class SensorTrack:
    """What the engine remembers per rain station / camera."""

    __slots__ = ("last_t", "flat_value", "flat_first_t", "flat_last_t", "flat_n", "bad_t", "bad_reason",
                 "bad_reading", "bad_late")

    def __init__(self) -> None:
        self.last_t: float | None = None
        self.flat_value: float | None = None
        self.flat_first_t = 0.0
        self.flat_last_t = 0.0
        self.flat_n = 0
        self.bad_t: float | None = None
        self.bad_reason = ""
        self.bad_reading = 0.0
        self.bad_late = False

    def see_flat(self, t: float, v: float) -> None:
        """Feed one reading in event-time order (older readings are ignored)."""
        if self.flat_n and t <= self.flat_last_t:
            return
        if self.flat_n and v == self.flat_value:
            self.flat_n += 1
            self.flat_last_t = t
        else:
            self.flat_value, self.flat_first_t, self.flat_last_t, self.flat_n = v, t, t, 1

    def is_flat(self, min_readings: int, min_duration_s: float, ignore: tuple[float, ...]) -> bool:
        return (self.flat_n >= min_readings and self.flat_value not in ignore
                and self.flat_last_t - self.flat_first_t >= min_duration_s)

    def to_list(self) -> list:
        return [getattr(self, k) for k in self.__slots__]

    @classmethod
    def from_list(cls, x: list) -> "SensorTrack":
        tr = cls()
        for k, v in zip(cls.__slots__, x):
            setattr(tr, k, v)
        return tr


# ---------------------------------------------------------------- stale


class StaleTracker:
    """Entities silent for ≥ `threshold_s` relative to a watermark.

    A lazy min-heap of deadlines keeps `due()` cheap with thousands of
    stations: each entity has at most one heap entry; when it pops and the
    entity has reported since, it is re-scheduled instead of flagged.
    """

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.last: dict[str, float] = {}
        self.stale: set[str] = set()
        self._heap: list[tuple[float, str]] = []
        self._queued: set[str] = set()

    def seen(self, entity: str, t: float) -> bool:
        """Record a reading; True if the entity was stale and has now recovered."""
        prev = self.last.get(entity)
        if prev is None or t > prev:
            self.last[entity] = t
        if entity not in self._queued:
            self._queued.add(entity)
            heapq.heappush(self._heap, (self.last[entity] + self.threshold_s, entity))
        if entity in self.stale:
            self.stale.discard(entity)
            return True
        return False

    def expect(self, entity: str, since: float) -> None:
        """An entity known to exist (catalog) that has not reported: count silence from `since`."""
        if entity not in self.last:
            self.seen(entity, since)

    def due(self, watermark: float) -> list[tuple[str, float]]:
        """Entities that became stale at this watermark: [(entity, last_seen)], in a stable order."""
        out = []
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            _, entity = heapq.heappop(heap)
            last = self.last[entity]
            if last + self.threshold_s <= watermark:
                self._queued.discard(entity)
                if entity not in self.stale:
                    self.stale.add(entity)
                    out.append((entity, last))
            else:
                heapq.heappush(heap, (last + self.threshold_s, entity))
        out.sort(key=lambda x: (x[1], x[0]))
        return out

    def get_state(self) -> dict:
        return {"last": dict(self.last), "stale": sorted(self.stale)}

    def set_state(self, state: dict) -> None:
        self.last = dict(state.get("last", {}))
        self.stale = set(state.get("stale", []))
        self._heap, self._queued = [], set()
        for entity, last in sorted(self.last.items()):
            if entity not in self.stale:
                self._queued.add(entity)
                self._heap.append((last + self.threshold_s, entity))
        heapq.heapify(self._heap)


# ---------------------------------------------------------------- seasonal anomaly


class HourOfWeekBaseline:
    """Robust per-hour-of-week baseline for one series (river-style API).

    Each of the 168 hours of the week keeps its last `history` values.  The
    score is the robust z = (x − median) / max(1.4826·MAD, min_scale).
    """

    def __init__(self, history: int = 8, min_history: int = 3, min_scale: float = 1.0) -> None:
        self.history = history
        self.min_history = min_history
        self.min_scale = min_scale
        self.slots: dict[int, list[float]] = {}

    def learn_one(self, t: float, x: float) -> None:
        slot = self.slots.setdefault(hour_of_week(t), [])
        slot.append(float(x))
        if len(slot) > self.history:
            del slot[0]

    def expected(self, t: float) -> float | None:
        slot = self.slots.get(hour_of_week(t))
        if not slot or len(slot) < self.min_history:
            return None
        return float(median(slot))

    def score_one(self, t: float, x: float) -> float | None:
        """Signed robust z of x against its hour of week; None while warming up."""
        slot = self.slots.get(hour_of_week(t))
        if not slot or len(slot) < self.min_history:
            return None
        med = median(slot)
        mad = median(abs(v - med) for v in slot)
        scale = max(1.4826 * mad, self.min_scale)
        return (x - med) / scale

    def get_state(self) -> dict:
        return {str(k): list(v) for k, v in sorted(self.slots.items())}

    def set_state(self, state: dict) -> None:
        self.slots = {int(k): [float(x) for x in v] for k, v in state.items()}


class HourlySeries:
    """Hourly buckets per entity, closed when the feed's watermark passes their end.

    `count=True`: the value of an hour is the number of items (hours without
    any are 0 — a quiet hour is data).  `count=False`: the mean of the values
    seen in the hour (hours without readings are skipped, not 0).
    Readings for an hour already closed are ignored (the baseline is not
    rewritten by late data).
    """

    def __init__(self, count: bool, max_gap_h: int = WEEK_H) -> None:
        self.count = count
        self.max_gap_h = max_gap_h
        self.open_from: dict[str, int] = {}  # entity → first hour (epoch s) not yet closed
        self.first: dict[str, int] = {}  # entity → the hour it was first seen (partial, not learned)
        self.sums: dict[str, dict[int, list[float]]] = {}

    def add(self, entity: str, t: float, x: float = 1.0) -> None:
        h = int(t // 3600) * 3600
        start = self.open_from.get(entity)
        if start is None:
            self.open_from[entity] = h
            self.first[entity] = h
        elif h < start:
            return
        b = self.sums.get(entity)
        if b is None:
            b = self.sums[entity] = {}
        acc = b.get(h)
        if acc is None:
            acc = b[h] = [0.0, 0]
        acc[0] += x
        acc[1] += 1

    def close(self, watermark: float) -> Iterator[tuple[str, int, float, bool]]:
        """Yield (entity, hour_start, value, partial) for every hour that ended by `watermark`."""
        now_h = int(watermark // 3600) * 3600
        for entity in sorted(self.open_from):
            start = self.open_from[entity]
            if start >= now_h:
                continue
            if (now_h - start) // 3600 > self.max_gap_h:
                start = now_h - self.max_gap_h * 3600
            buckets = self.sums.get(entity, {})
            for h in range(start, now_h, 3600):
                acc = buckets.pop(h, None)
                if self.count:
                    value = acc[0] if acc else 0.0
                elif acc and acc[1]:
                    value = acc[0] / acc[1]
                else:
                    continue
                yield entity, h, value, h == self.first.get(entity)
            for h in [h for h in buckets if h < now_h]:
                del buckets[h]
            self.open_from[entity] = now_h

    def get_state(self) -> dict:
        return {
            "open_from": dict(self.open_from),
            "first": dict(self.first),
            "sums": {e: {str(h): acc for h, acc in b.items()} for e, b in self.sums.items() if b},
        }

    def set_state(self, state: dict) -> None:
        self.open_from = {k: int(v) for k, v in state.get("open_from", {}).items()}
        self.first = {k: int(v) for k, v in state.get("first", {}).items()}
        self.sums = {e: {int(h): list(acc) for h, acc in b.items()} for e, b in state.get("sums", {}).items()}
