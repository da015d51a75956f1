"""Window state for 10,000 rain stations with 72 h of 5-minute buckets
(DESIGN §7: ≤ 25 MiB).

Measured two ways on a RainProcessor fed 72 h of readings for every station:
its numpy window arrays (`nbytes`) and everything it allocated (tracemalloc,
which includes the per-station Python structures).  Baseline in the same
run: the plain per-event implementation (deques of (t, mm) per station,
benchmarks.baseline.RainDeques) holding the same 72 h, measured with
tracemalloc on a subset of stations and scaled linearly to 10,000.

    python -m benchmarks memory [--stations 10000] [--step-min 60]
"""

from __future__ import annotations

import gc
import tracemalloc

from benchmarks.baseline import RainDeques
from benchmarks.common import Result
from benchmarks.data import T0, make_catalog
from ioc.events import RainEvent
from ioc.timeutil import LOCAL_TZ

MIB = 1024 * 1024


def _events(stations: int, hours: int, step_s: int):
    from datetime import datetime

    for t in range(T0, T0 + hours * 3600, step_s):
        ts = datetime.fromtimestamp(t, LOCAL_TZ)
        yield [RainEvent(station=f"ST-{s:05d}", ts=ts, rain_mm=0.4) for s in range(stations)]


def measure_processor(stations: int, step_s: int) -> tuple[float, float]:
    from streams.rain import RainProcessor

    catalog = make_catalog(stations=stations)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    proc = RainProcessor(catalog)
    for batch in _events(stations, 72, step_s):
        proc.process(batch)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return proc.nbytes / MIB, traced / MIB


def measure_deques(stations: int, sample: int = 300) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    d = RainDeques()
    for t in range(T0, T0 + 72 * 3600, 300):
        for s in range(sample):
            q = d.readings[f"ST-{s:05d}"]
            q.append((float(t), 0.4))
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return traced / MIB * stations / sample


def run(stations: int = 10_000, step_min: int = 60) -> list[Result]:
    nbytes, traced = measure_processor(stations, step_min * 60)
    deques = measure_deques(stations)
    return [
        Result("rain_state_memory", nbytes, "MiB", deques, "per-event deques (scaled)", "≤ 25 MiB",
               f"{stations:,} stations × 864 five-minute buckets (72 h): numpy window state (uint16 hundredths of a mm ring + running sums)"),
        Result("rain_state_memory_traced", traced, "MiB", deques, "per-event deques (scaled)", "",
               f"everything the RainProcessor allocated for {stations:,} stations fed 72 h (one reading per station every {step_min} min), tracemalloc"),
    ]


def main(argv: list[str]) -> list[Result]:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks memory")
    p.add_argument("--stations", type=int, default=10_000)
    p.add_argument("--step-min", type=int, default=60)
    a = p.parse_args(argv)
    return run(a.stations, a.step_min)
