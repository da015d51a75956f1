"""Which indicator series an `anomaly` rule may watch, and how it samples one in event time.

The indicators and windows come from the processors themselves (streams/), so a rule naming one that
does not exist is refused when the rules load (docs/architecture.md lists what each means).  A rule samples its
series every `step` of event time (aligned on local time, Asia/Ho_Chi_Minh): `transform: value` takes the
latest value (queue length now, rain over the last hour), `transform: increase` the growth of a counter
over the step (dossiers received per hour from the day's running count; a drop is the counter's daily
reset, so the increase is the new count).
"""

from __future__ import annotations

import math

from streams.cameras import WINDOW as _QUEUE_WINDOW
from streams.dossiers import WINDOWS as _DOSSIER_WINDOWS
from streams.rain import WINDOWS as _RAIN_WINDOWS

LOCAL_OFFSET_S = 7 * 3600.0  # Asia/Ho_Chi_Minh, no DST
MAX_STEPS_PER_ADVANCE = 48  # a watermark jump past more boundaries samples only the latest ones

# (indicator, window) → (feed, entity kind)
KNOWN_SERIES: dict[tuple[str, str], tuple[str, str]] = {}
for _w, _ in _RAIN_WINDOWS:
    KNOWN_SERIES[("rain_mm", _w)] = ("rain", "station")
KNOWN_SERIES[("rain_day_mm", "rain_day")] = ("rain", "station")
for _w in _DOSSIER_WINDOWS:
    for _name in ("dossier_received", "dossier_processed", "dossier_online_rate", "dossier_digitization_rate",
                  "dossier_online_payment_rate", "dossier_on_time_rate"):
        KNOWN_SERIES[(_name, _w)] = ("dossier", "unit")
for _name in ("dossier_open", "dossier_overdue_open"):
    KNOWN_SERIES[(_name, "now")] = ("dossier", "unit")
KNOWN_SERIES[("unit_score", "year")] = ("dossier", "unit")
for _name in ("queue_waiting_avg", "queue_waiting_max"):
    KNOWN_SERIES[(_name, _QUEUE_WINDOW)] = ("camera", "site")
for _name in ("queue_waiting", "queue_counters_open", "queue_wait_est_s"):
    KNOWN_SERIES[(_name, "now")] = ("camera", "site")

TRANSFORMS = ("value", "increase")


def boundary_after(t_s: float, step_s: float) -> float:
    """The first step boundary strictly after t_s (boundaries aligned on local midnight)."""
    lt = t_s + LOCAL_OFFSET_S
    return (math.floor(lt / step_s) + 1) * step_s - LOCAL_OFFSET_S


class StepSampler:
    """One entity's sampling clock: `due(watermark, latest)` yields (boundary, sample) for each step that ended.

    The first boundary is the one after the entity was first seen (a partial first step is not a sample).
    State is two numbers, kept by the engine in its checkpoints.
    """

    __slots__ = ("step_s", "increase", "next_t", "last")

    def __init__(self, step_s: float, increase: bool, next_t: float | None = None, last: float | None = None):
        self.step_s = step_s
        self.increase = increase
        self.next_t = next_t
        self.last = last

    def due(self, watermark: float, latest: float) -> list[tuple[float, float]]:
        if self.next_t is None:
            self.next_t = boundary_after(watermark, self.step_s)
            self.last = latest
            return []
        if watermark < self.next_t:
            return []
        n = int((watermark - self.next_t) // self.step_s) + 1
        first = self.next_t + max(0, n - MAX_STEPS_PER_ADVANCE) * self.step_s
        times = [first + i * self.step_s for i in range(min(n, MAX_STEPS_PER_ADVANCE))]
        self.next_t += n * self.step_s
        if not self.increase:
            return [(b, latest) for b in times]
        prev = self.last if self.last is not None else latest
        inc = latest - prev if latest >= prev else latest  # a drop: the counter was reset (a new day)
        self.last = latest
        return [(b, inc if i == 0 else 0.0) for i, b in enumerate(times)]

    def to_list(self) -> list:
        return [self.next_t, self.last]
