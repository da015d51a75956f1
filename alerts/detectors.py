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
  a data-quality alert for the engineers.  A rain reading beyond its
  station's `RainLimits` is **quarantined** by the rain processor
  (streams/rain.py): accepted (it is valid JSON, its key is kept so a re-send
  is a duplicate and a good value from the gateway a correction) but kept out
  of every window sum, so it can never raise or escalate a rain alert.  The
  processor reports it (`ProcessResult.quarantined`) and the engine raises
  `implausible_reading` from that report: `implausible_rain()` is the one
  definition, applied once.  Camera readings are still only flagged.
- **Anomalies** on any indicator series: alerts/anomaly/ (the `anomaly` rule kind).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Mapping


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


@dataclass(frozen=True, slots=True)
class RainLimits:
    """The physical limits a rain reading must stay within (docs/domain.md §2, "Implausible readings").

    Defaults sit at the world-record rainfall for the interval: no single
    reading above 200 mm (the 15-minute record is 198 mm), and no implied
    intensity above 400 mm/h over max(interval, 10 min) (the 1-hour record is
    305 mm in 42 min; the 5-minute record, 61.7 mm, stays within the 66.7 mm
    that 400 mm/h allows over the 10-minute floor).
    """

    max_reading_mm: float = 200.0
    max_rate_mm_h: float = 400.0
    min_interval_s: float = 600.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "RainLimits":
        """From an `implausible` rule's params (the keys of this class; missing keys keep the defaults)."""
        d = cls()
        return cls(float(params.get("max_reading_mm", d.max_reading_mm)),
                   float(params.get("max_rate_mm_h", d.max_rate_mm_h)),
                   float(params.get("min_interval_s", d.min_interval_s)))

    def with_station(self, max_reading_mm: float | None, max_rate_mm_h: float | None) -> "RainLimits":
        """These limits with a station's own (catalog) limits where it has them."""
        if max_reading_mm is None and max_rate_mm_h is None:
            return self
        return RainLimits(self.max_reading_mm if max_reading_mm is None else float(max_reading_mm),
                          self.max_rate_mm_h if max_rate_mm_h is None else float(max_rate_mm_h),
                          self.min_interval_s)

    @property
    def prefilter_mm(self) -> float:
        """A reading at or below this is plausible whatever its interval (lets the hot path skip the check)."""
        return min(self.max_reading_mm, self.max_rate_mm_h * self.min_interval_s / 3600.0) * (1 - 1e-9)

    def why(self, rain_mm: float, dt_s: float | None) -> str | None:
        return implausible_rain(rain_mm, dt_s, self.max_reading_mm, self.max_rate_mm_h, self.min_interval_s)


def implausible_camera(waiting: int, counters_open: int, max_waiting: float = 500.0,
                       max_counters_open: float | None = None) -> str | None:
    if waiting > max_waiting:
        return "waiting_too_large"
    if max_counters_open is not None and counters_open > max_counters_open:
        return "more_counters_than_site_has"
    return None


# what each reason means, for the alert's message (alerts/rules/data_quality.yaml: {reason})
REASON_TEXT: dict[str, dict[str, str]] = {
    "reading_too_large": {"vi": "lớn hơn mức một lần đo có thể ghi được", "en": "more than one reading can hold"},
    "rate_too_high": {"vi": "cường độ mưa suy ra vượt giới hạn vật lý",
                      "en": "the rain rate it implies is beyond the physical limit"},
    "waiting_too_large": {"vi": "nhiều người hơn một khung hình camera có thể chứa",
                          "en": "more people than one camera view can hold"},
    "more_counters_than_site_has": {"vi": "nhiều quầy mở hơn số quầy của điểm một cửa",
                                    "en": "more open counters than the site has"},
}


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
