"""Restart to full state, embedded (docs/architecture.md §7: ≤ 3 s).

A real `ioc run` ingests rain for N stations over 72 h plus dossier and
camera events, checkpoints (graceful stop), takes a journal tail after the
checkpoint, and is SIGKILLed.  Measured: process start → /healthz 200 with
the full state restored (checkpoint load + journal tail replay happen before
the server answers).  Baseline in the same run: the same start with an empty
data dir (interpreter, imports and uvicorn — the floor).

    python -m benchmarks restart [--stations 2000] [--tail 50000]
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import AS_INGEST, Result, free_port, start_ioc
from ioc.timeutil import format_ts

T0 = 1793167800  # 2026-10-28T13:10:00+07:00


def _rain_lines(stations: int, t_from: int, t_to: int, step: int = 300) -> list[bytes]:
    out = []
    for t in range(t_from, t_to, step):
        ts = format_ts(t)
        for s in range(stations):
            out.append(b'{"kind":"rain","station":"ST-%05d","ts":"%s","rain_mm":0.2}' % (s, ts.encode()))
    return out


# the synthetic stations are not in the demo catalog: keep them all (the default cap is 1,000 per feed)
ENV = {"IOC_MAX_UNKNOWN_ENTITIES": "1000000"}


def _post(url: str, lines: list[bytes], chunk: int = 20000) -> None:
    with httpx.Client(timeout=120) as http:
        for i in range(0, len(lines), chunk):
            r = http.post(url + "/api/ingest", content=b"\n".join(lines[i : i + chunk]), headers=AS_INGEST)
            r.raise_for_status()
            body = r.json()
            n = len(lines[i : i + chunk])
            if body["accepted"] != n:  # a benchmark of refused input would measure nothing
                raise RuntimeError(f"restart benchmark: only {body['accepted']} of {n} events accepted: {body['rejections'][:1]}")


def _timed_start(data: Path, port: int) -> float:
    t = time.monotonic()
    proc = start_ioc(data, port, env=ENV)
    elapsed = time.monotonic() - t
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return elapsed


def run(stations: int = 2000, hours: int = 72, tail: int = 50000) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        proc = start_ioc(data, port, env=ENV)
        url = f"http://127.0.0.1:{port}"
        history = _rain_lines(stations, T0 - hours * 3600, T0, step=1800)
        _post(url, history)
        proc.send_signal(signal.SIGTERM)  # graceful: writes the checkpoint
        proc.wait(60)
        proc = start_ioc(data, port, env=ENV)
        tail_lines = _rain_lines(stations, T0, T0 + 3600 * 24, step=300)[:tail]
        _post(url, tail_lines)
        proc.send_signal(signal.SIGKILL)  # crash: the tail lives only in the journal
        proc.wait(10)
        trials = []
        for i in range(3):  # each trial restarts a copy of the crashed data dir
            copy = Path(tmp) / f"crashed{i}"
            shutil.copytree(data, copy)
            trials.append(_timed_start(copy, free_port()))
        restart = min(trials)
        empty = min(_timed_start(Path(tmp) / f"empty{i}", free_port()) for i in range(3))
    return [
        Result(
            name="restart_embedded",
            value=restart,
            unit="s",
            baseline=empty,
            baseline_name="start with empty data dir",
            budget="≤ 3 s",
            description=(
                f"ioc run restart after SIGKILL: checkpoint of {stations} stations × {hours} h "
                f"+ journal tail of {len(tail_lines)} events replayed; best of 3"
            ),
        )
    ]


def main(argv: list[str]) -> list[Result]:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks restart")
    p.add_argument("--stations", type=int, default=2000)
    p.add_argument("--tail", type=int, default=50000)
    a = p.parse_args(argv)
    return run(a.stations, tail=a.tail)
