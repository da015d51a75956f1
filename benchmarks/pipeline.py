"""Embedded pipeline throughput: JSON bytes → indicators + alerts (encoded
output records), per feed and mixed, events/s on one core (docs/architecture.md §7:
≥ 250,000 events/s).

Baselines in the same run: the JSON decode alone into typed events (the
floor), and a plain per-event Python implementation of the same windows
(benchmarks.baseline: json.loads + dicts and deques).

Every case runs at each batch size (default 4096 and 16384, reported as
separate rows with the batch size in the name): the cost per output record
dominates, and a larger batch coalesces more updates of one key into one
record, so the two figures differ a lot.  Times are CPU time of this process
(time.process_time, best of 3), which a busy machine disturbs less than wall
time; the pipeline is single-threaded.

    python -m benchmarks pipeline [--events 400000] [--batch 4096,16384]
"""

from __future__ import annotations

import gc
import time

from benchmarks.baseline import PerEventPipeline
from benchmarks.data import camera_lines, dossier_lines, make_catalog, mixed_lines, only, rain_lines
from benchmarks.common import Result
from ioc.events import parse_lines
from ioc.records import encode


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def pipeline_rate(lines: list[bytes], batch: int, with_alerts: bool = True) -> float:
    from ioc.wiring import build_pipeline, build_replay_engine

    catalog = make_catalog()

    def run() -> None:
        engine = build_replay_engine(catalog, None) if with_alerts else None
        pipeline = build_pipeline(catalog, engine)
        for i in range(0, len(lines), batch):
            events, _ = parse_lines(lines[i : i + batch])
            result = pipeline.process(events)
            for rec in result.records:
                encode(rec)

    return len(lines) / _best_of(run)


def decode_rate(lines: list[bytes], batch: int) -> float:
    def run() -> None:
        for i in range(0, len(lines), batch):
            parse_lines(lines[i : i + batch])

    return len(lines) / _best_of(run)


def per_event_rate(lines: list[bytes]) -> float:
    return len(lines) / _best_of(lambda: PerEventPipeline().process(lines), repeats=1)


def run(n: int = 400_000, batches: tuple[int, ...] = (4096, 16384)) -> list[Result]:
    cases = {
        "mixed": mixed_lines(n),
        "rain": only(rain_lines(n)),
        "camera": only(camera_lines(n // 2)),
        "dossier": only(dossier_lines(n // 4)),
    }
    out = []
    for name, lines in cases.items():
        naive = per_event_rate(lines)
        for batch in batches:
            rate = pipeline_rate(lines, batch)
            floor = decode_rate(lines, batch)
            desc = (
                f"{len(lines):,} {name} events as JSONL bytes, batches of {batch}: msgspec decode + validation, "
                f"event-time windows, indicators, alert rules, output records encoded; 1,000 stations, 111 units, "
                f"20 sites; one core, CPU time, best of 3"
            )
            out.append(Result(f"pipeline_{name} @batch {batch}", rate, "events/s", naive,
                              "per-event Python (json + dicts/deques)",
                              "≥ 250,000 events/s" if name == "mixed" else "", desc,
                              {"batch": batch, "decode_only_events_per_s": round(floor),
                               "share_of_decode_floor": round(rate / floor, 3)}))
            out.append(Result(f"decode_only_{name} @batch {batch}", floor, "events/s", rate, "full pipeline", "",
                              "JSON decode + validation into typed events alone (the floor)", {"batch": batch}))
    return out


def main(argv: list[str]) -> list[Result]:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks pipeline")
    p.add_argument("--events", type=int, default=400_000)
    p.add_argument("--batch", default="4096,16384", help="batch sizes, comma-separated (one row each)")
    a = p.parse_args(argv)
    return run(a.events, tuple(int(b) for b in str(a.batch).split(",") if b.strip()))
