"""Window + event-identity state for 10,000 rain stations with 72 h of
5-minute buckets (docs/architecture.md, budgets: ≤ 40 MiB for keys + windows).

A RainProcessor is fed 72 h of readings for every station, one reading per
station every `--step-min` minutes (default 5: the usual gauge cadence, one
reading per 5-minute bucket), each reading at the end of its bucket, as
gauges report.  Measured two ways: its numpy arrays (`nbytes`: the uint16
bucket ring, the uint16 identity codes beside it, running sums and
per-station flags) and everything it allocated (tracemalloc, which adds the
per-station Python structures and the overflow map of buckets holding
several readings — empty at a 5-minute cadence).  Baseline in the same run:
the plain per-event implementation (deques of (t, mm) per station,
benchmarks.baseline.RainDeques) holding the same 72 h at the same cadence,
measured with tracemalloc on a subset of stations and scaled linearly to
10,000 (it keeps every reading, so it could recognise keys too).

    python -m benchmarks memory [--stations 10000] [--step-min 5]
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

    names = [f"ST-{s:05d}" for s in range(stations)]
    for t in range(T0, T0 + hours * 3600, step_s):
        ts = datetime.fromtimestamp(t, LOCAL_TZ)
        yield [RainEvent(station=name, ts=ts, rain_mm=0.4) for name in names]


def measure_processor(stations: int, step_s: int) -> tuple[float, float, int]:
    from streams.rain import RainProcessor

    catalog = make_catalog(stations=stations)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    proc = RainProcessor(catalog)
    for batch in _events(stations, 72, step_s):
        proc.process(batch)
        del batch
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return proc.nbytes / MIB, traced / MIB, proc.multi_entries


def measure_deques(stations: int, step_s: int, sample: int = 300) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    d = RainDeques()
    for t in range(T0, T0 + 72 * 3600, step_s):
        for s in range(sample):
            q = d.readings[f"ST-{s:05d}"]
            q.append((float(t), 0.4))
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return traced / MIB * stations / sample


def run(stations: int = 10_000, step_min: int = 5) -> list[Result]:
    nbytes, traced, multi = measure_processor(stations, step_min * 60)
    deques = measure_deques(stations, step_min * 60)
    cadence = f"one reading per station every {step_min} min"
    return [
        Result("rain_state_memory", nbytes, "MiB", deques, "per-event deques (scaled)", "≤ 40 MiB",
               f"keys + windows for {stations:,} stations × 864 five-minute buckets (72 h), {cadence}: numpy arrays "
               f"(uint16 hundredths-of-a-mm ring + uint16 identity codes + running sums)",
               {"overflow_readings": multi}),
        Result("rain_state_memory_traced", traced, "MiB", deques, "per-event deques (scaled)", "≤ 40 MiB",
               f"everything the RainProcessor allocated for {stations:,} stations fed 72 h ({cadence}), tracemalloc: "
               f"arrays + identity overflow map ({multi:,} readings) + per-station Python structures",
               {"overflow_readings": multi}),
    ]


def main(argv: list[str]) -> list[Result]:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks memory")
    p.add_argument("--stations", type=int, default=10_000)
    p.add_argument("--step-min", type=int, default=5)
    a = p.parse_args(argv)
    return run(a.stations, a.step_min)
