"""Pure differencing of Vrain-style accumulated rain into interval readings.

A Vrain-style feed gives, per station, the rain accumulated since 19:00
local of the current hydro-met rain day (19:00 → 19:00, see
ioc.timeutil.rain_day_start).  `VrainDiffer.update(poll_t, readings)` turns
successive polls into RainEvents: rain_mm = the accumulation's increase
since the station's previous poll, ts = this poll's time.

Rules, per station (every case has a table test):

- first poll of a station (no previous value): emit nothing, remember the
  value.  The accumulation since 19:00 may cover up to 24 h; dropping it
  into one 5-minute interval would fake a 3-hour intensity alert.
  `first_poll="since_reset"` emits it anyway (useful when the accumulation
  is known to be fresh, e.g. right after 19:00), ts = the poll time.
- same rain day, value grew or stayed: emit the delta (0 mm included: a
  zero reading proves the station is alive; no data is not zero).
- a missed poll / a station absent from a poll: nothing is emitted for it
  then; its next delta covers the longer interval (still one reading at the
  later poll time).  If the gap exceeds `max_gap_s` (default 3 h) the delta
  is not emitted (its time distribution is unknown and lumping hours of rain
  into one interval would fake intensity alerts); the station is re-based.
- the poll is in a later rain day than the previous one (the 19:00 reset
  lies between them): the new value *is* the rain since 19:00, so emit it
  (if the gap since the previous poll is within `max_gap_s`).  The rain
  between the previous poll and 19:00 is unknown and lost; polls every 5
  minutes keep that loss to the last few minutes of the day.  A poll at
  exactly 19:00:00 belongs to the new rain day.
- the value decreased within one rain day (a glitch or an unscheduled
  counter reset): reject with Reason.INVALID_VALUE ("counter decreased"),
  emit nothing, and re-base on the new value so later deltas are right.
  Decreases within `tolerance_mm` (rounding of the feed) count as 0 mm.
- a decrease is never negative rain: whether the provider reset its
  counter or corrected a spurious tip, the rain that fell in between is
  unknown, so the interval gets no reading (the rejection says so).
- across a restart (`get_state`/`set_state`, persisted by
  sensors.vrain.VrainPoller's `state_path`) the previous accumulation is
  kept, so the first poll after a restart differences against it (within
  `max_gap_s`) instead of skipping or re-counting the day.
- a poll not later than the station's previous one (a cached or repeated
  response): ignored for that station.
- a negative or non-finite accumulation: rejected (NEGATIVE_VALUE /
  INVALID_VALUE) and not remembered.
- a poll time outside the accepted years (2000..2099): every reading of it
  is rejected (BAD_TIMESTAMP) and nothing is remembered.
- every emitted reading passes the bounds of ioc.events.parse_event (e.g.
  rain per reading); one that does not is a rejection with its reason (the
  station is still re-based on the new accumulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Mapping

import msgspec

from ioc.errors import Reason, Rejection
from ioc.events import RainEvent, parse_event
from ioc.timeutil import LOCAL_TZ, format_ts, rain_day_start

from .replay import T_MAX, T_MIN


def _event(station: str, ts: datetime, rain_mm: float, raw: bytes) -> RainEvent | Rejection:
    """A RainEvent validated like any other input, or the Rejection saying why not."""
    wire = {"kind": "rain", "station": station, "ts": ts.isoformat(), "rain_mm": rain_mm}
    out = parse_event(msgspec.json.encode(wire))
    if isinstance(out, Rejection):
        return Rejection(out.reason, f"station {station}: {out.detail}", "rain", raw)
    return out  # type: ignore[return-value]


@dataclass
class _Last:
    t: float
    value_mm: float
    rain_day: float


@dataclass
class DiffStats:
    emitted: int = 0
    first_seen: int = 0
    resets: int = 0
    decreases: int = 0
    gaps: int = 0
    repeated: int = 0


class VrainDiffer:
    def __init__(
        self,
        *,
        first_poll: Literal["skip", "since_reset"] = "skip",
        max_gap_s: float = 3 * 3600.0,
        tolerance_mm: float = 0.05,
    ) -> None:
        self.first_poll = first_poll
        self.max_gap_s = max_gap_s
        self.tolerance_mm = tolerance_mm
        self._last: dict[str, _Last] = {}
        self.stats = DiffStats()

    def forget(self, station: str) -> None:
        self._last.pop(station, None)

    def get_state(self) -> dict[str, list[float]]:
        """{station: [poll time, accumulation mm, rain-day start]}: what a restart needs not to double-count."""
        return {k: [v.t, v.value_mm, v.rain_day] for k, v in self._last.items()}

    def set_state(self, state: Mapping[str, object]) -> int:
        """Restore `get_state()` output; malformed entries are skipped (the station is then first-seen). Returns the kept count."""
        self._last = {}
        for station, v in state.items():
            if (isinstance(station, str) and isinstance(v, (list, tuple)) and len(v) == 3
                    and all(type(x) in (int, float) and math.isfinite(x) for x in v)
                    and T_MIN <= v[0] < T_MAX and v[1] >= 0):  # type: ignore[operator]
                self._last[station] = _Last(float(v[0]), float(v[1]), float(v[2]))  # type: ignore[arg-type]
        return len(self._last)

    def update(
        self, poll_t: float, readings: Mapping[str, float], raw: Mapping[str, bytes] | None = None
    ) -> tuple[list[RainEvent], list[Rejection]]:
        """Difference one poll: readings = {station id: mm accumulated since 19:00} at poll_t.

        `raw` optionally gives each station's raw JSON for rejections.
        """
        events: list[RainEvent] = []
        rejections: list[Rejection] = []
        if not (isinstance(poll_t, (int, float)) and T_MIN <= poll_t < T_MAX):
            for station in readings:
                raw_b = raw.get(station, b"") if raw else b""
                rejections.append(Rejection(Reason.BAD_TIMESTAMP, f"station {station}: poll time {poll_t!r} is outside "
                                            "the years 2000..2099", "rain", raw_b))
            return events, rejections
        ts = datetime.fromtimestamp(poll_t, LOCAL_TZ)
        day = rain_day_start(poll_t)
        for station, value in readings.items():
            raw_b = raw.get(station, b"") if raw else b""
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                rejections.append(Rejection(Reason.INVALID_VALUE, f"station {station}: accumulation {value!r} is not a finite number", "rain", raw_b))
                continue
            if value < 0:
                rejections.append(Rejection(Reason.NEGATIVE_VALUE, f"station {station}: accumulation {value} mm is negative", "rain", raw_b))
                continue
            last = self._last.get(station)
            if last is not None and poll_t <= last.t:
                self.stats.repeated += 1
                continue
            self._last[station] = _Last(poll_t, float(value), day)
            if last is None:
                self.stats.first_seen += 1
                if self.first_poll == "since_reset":
                    out = _event(station, ts, round(float(value), 3), raw_b)
                    (rejections if isinstance(out, Rejection) else events).append(out)  # type: ignore[arg-type]
                continue
            if poll_t - last.t > self.max_gap_s:
                self.stats.gaps += 1
                continue
            if day != last.rain_day:
                self.stats.resets += 1
                delta = float(value)
            else:
                delta = float(value) - last.value_mm
                if delta < -self.tolerance_mm:
                    self.stats.decreases += 1
                    rejections.append(
                        Rejection(
                            Reason.INVALID_VALUE,
                            f"station {station}: rain counter decreased from {last.value_mm} to {value} mm "
                            f"at {format_ts(poll_t)} outside the 19:00 reset",
                            "rain",
                            raw_b,
                        )
                    )
                    continue
            out = _event(station, ts, round(max(0.0, delta), 3), raw_b)
            (rejections if isinstance(out, Rejection) else events).append(out)  # type: ignore[arg-type]
        self.stats.emitted += len(events)
        return events, rejections
