"""Event → client latency and server memory per connection, 1,000 and 10,000
WebSocket clients (docs/architecture.md §7: p99 ≤ 50 ms and ≤ 250 ms).

The server is a real `ioc run` (uvicorn) subprocess; clients run in separate
processes; an event is POSTed to /api/ingest and its latency is the time
until each client has received the record (time.monotonic is system-wide on
Linux).  Baseline in the same run: a bare `websockets` server broadcasting a
message of the same size to the same clients (the floor for Python fan-out
on this machine).  Compression is off on both.

    python -m benchmarks fanout [--clients 1000,10000] [--events 30]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import AS_INGEST, AS_VIEWER, VIEWER_TOKEN, Result, free_port, percentile, rss_bytes, start_ioc

MARK = re.compile(rb'"entity":"BENCH-(\d+)"')
BASE_TS = 1793167800  # 2026-10-28T13:10:00+07:00


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _client_main(url: str, n: int, ready, results, go_home) -> None:
    _raise_nofile()
    from websockets.asyncio.client import connect

    async def one(i: int, seen: dict[int, list[float]], sem: asyncio.Semaphore, connected: list[int]) -> None:
        async with sem:
            ws = await connect(url, compression=None, open_timeout=60, max_size=None, ping_interval=None)
            await ws.recv()  # snapshot
        connected[0] += 1
        if connected[0] == n:
            ready.put(n)
        mine: set[int] = set()  # first receipt only: later re-sends (e.g. a stale flag) are not deliveries
        try:
            async for msg in ws:
                data = msg.encode() if isinstance(msg, str) else msg
                if b"BENCH-" in data:
                    now = time.monotonic()
                    for m in set(MARK.findall(data)):
                        k = int(m)
                        if k not in mine:
                            mine.add(k)
                            seen.setdefault(k, []).append(now)
        except Exception:
            pass

    async def main() -> None:
        seen: dict[int, list[float]] = {}
        sem = asyncio.Semaphore(100)
        connected = [0]
        tasks = [asyncio.create_task(one(i, seen, sem, connected)) for i in range(n)]
        while go_home.empty():
            await asyncio.sleep(0.1)
        results.put(seen)
        for t in tasks:
            t.cancel()

    asyncio.run(main())


def _baseline_server(port: int, payload_size: int) -> None:
    """Bare websockets broadcast: a control client sends 'i', every other client gets a message naming BENCH-i."""
    _raise_nofile()
    from websockets.asyncio.server import broadcast, serve

    clients = set()
    pad = "x" * max(0, payload_size - 60)

    async def handler(ws):
        if ws.request.path.startswith("/control"):
            async for msg in ws:
                body = '{"type":"delta","seq":%s,"records":[{"entity":"BENCH-%s","pad":"%s"}]}' % (msg, msg, pad)
                broadcast(clients, body)
            return
        clients.add(ws)
        try:
            await ws.send('{"type":"snapshot","records":[]}')
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main():
        async with serve(handler, "127.0.0.1", port, compression=None, max_size=None, ping_interval=None):
            await asyncio.Future()

    asyncio.run(main())


def _run_clients(url: str, total: int, procs: int):
    ctx = mp.get_context("spawn")
    ready, results, go_home = ctx.Queue(), ctx.Queue(), ctx.Queue()
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=_client_main, args=(url, n, ready, results, go_home), daemon=True) for n in per if n]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=300)
    return workers, results, go_home


def _collect(workers, results, go_home, sends: dict[int, float], total: int) -> list[float]:
    for _ in workers:
        go_home.put(1)
    latencies: list[float] = []
    received = 0
    for _ in workers:
        seen = results.get(timeout=120)
        for i, times in seen.items():
            if i in sends:
                received += len(times)
                latencies.extend((t - sends[i]) * 1000 for t in times)
    for w in workers:
        w.join(10)
        if w.is_alive():
            w.kill()
    expected = total * len(sends)
    if received < expected:
        print(f"  warning: {expected - received} of {expected} deliveries missing", file=sys.stderr)
    return latencies


def measure_ioc(total: int, events: int, procs: int) -> tuple[list[float], float, int]:
    import httpx

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_ioc(Path(tmp) / "data", port)
        try:
            rss0 = rss_bytes(server.pid)
            # each client signs in with the viewer token (?token=), as a script does; walls use the cookie
            workers, results, go_home = _run_clients(f"ws://127.0.0.1:{port}/ws?topics=rain&token={VIEWER_TOKEN}",
                                                     total, procs)
            time.sleep(1.0)
            rss1 = rss_bytes(server.pid)
            sends: dict[int, float] = {}
            payload = 0
            with httpx.Client() as http:
                for i in range(events):
                    ev = {"kind": "rain", "station": f"BENCH-{i}", "ts": _ts(BASE_TS + 300 * i), "rain_mm": 1.0}
                    sends[i] = time.monotonic()
                    http.post(f"http://127.0.0.1:{port}/api/ingest", json=ev, headers=AS_INGEST)
                    time.sleep(0.25 if total < 5000 else 1.0)
                time.sleep(2.0)
                payload = len(http.get(f"http://127.0.0.1:{port}/api/snapshot", headers=AS_VIEWER).content) // max(1, 8 * events)
            latencies = _collect(workers, results, go_home, sends, total)
            return latencies, (rss1 - rss0) / total, payload
        finally:
            server.terminate()
            server.wait(20)


def measure_baseline(total: int, events: int, procs: int, payload: int) -> list[float]:
    from websockets.sync.client import connect

    port = free_port()
    ctx = mp.get_context("spawn")
    srv = ctx.Process(target=_baseline_server, args=(port, payload * 8), daemon=True)
    srv.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            control = connect(f"ws://127.0.0.1:{port}/control")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        workers, results, go_home = _run_clients(f"ws://127.0.0.1:{port}/ws", total, procs)
        time.sleep(1.0)
        sends = {}
        for i in range(events):
            sends[i] = time.monotonic()
            control.send(str(i))
            time.sleep(0.25 if total < 5000 else 1.0)
        time.sleep(2.0)
        return _collect(workers, results, go_home, sends, total)
    finally:
        control.close()
        srv.kill()


def _ts(epoch: int) -> str:
    from ioc.timeutil import format_ts

    return format_ts(epoch)


def run(clients: list[int] | None = None, events: int = 30, procs: int = 4) -> list[Result]:
    out: list[Result] = []
    for total in clients or [1000, 10000]:
        lat, mem_per_conn, payload = measure_ioc(total, events, procs)
        base = measure_baseline(total, events, procs, payload)
        budget = "p99 ≤ 50 ms" if total <= 1000 else "p99 ≤ 250 ms"
        setup = (
            f"{total} WebSocket clients in {procs} processes on the same 2-core machine, {events} events POSTed "
            f"to /api/ingest; latency = POST start → record received by each client; compression off"
        )
        for q in (50, 99):
            out.append(
                Result(
                    name=f"fanout_{total}_p{q}",
                    value=percentile(lat, q),
                    unit="ms",
                    baseline=percentile(base, q),
                    baseline_name="bare websockets broadcast",
                    budget=budget if q == 99 else "",
                    description=setup,
                    extra={"deliveries": len(lat), "baseline_deliveries": len(base)},
                )
            )
        out.append(
            Result(
                name=f"fanout_{total}_server_memory_per_connection",
                value=mem_per_conn / 1024,
                unit="KiB",
                description=f"server RSS growth after {total} clients connected and got their snapshot, per connection",
            )
        )
    return out


def main(argv: list[str]) -> list[Result]:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks fanout")
    p.add_argument("--clients", default="1000,10000")
    p.add_argument("--events", type=int, default=30)
    p.add_argument("--procs", type=int, default=4)
    a = p.parse_args(argv)
    return run([int(x) for x in a.clients.split(",")], a.events, a.procs)
