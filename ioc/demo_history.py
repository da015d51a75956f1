"""DEMO DATA: a month of trend history for `ioc run --demo`, before the simulation's start.

The live demo simulates from 07:00 of the previous working day (ioc.demo); the trend views want
30 days of dossiers and the usual queue of earlier working days.  This module generates them with
the same seeded simulators, at a coarser grain, and they are stored in the history marked
``source = 'demo'`` (ioc.history):

- dossiers: `DossierSimulator` over the `BACKFILL_DAYS` days before the start, run through a
  throwaway `DossierProcessor` (the real core, so roll-ups and on-time are the processor's); the
  last ``day`` values per unit and day are kept;
- queues: for each of the latest `QUEUE_DAYS` working days (Mon–Fri) of those days, a fresh
  `CameraSimulator` from 07:00 to 18:00 only (outside office hours the simulator reports empty halls, so nothing is lost for the
  usual-queue median but the hours themselves, which are left without history).

It takes ~5 s of CPU, so it runs in a child process (`python -m ioc.demo_history`) at a low
CPU priority (nice 10), started once per data dir after the demo has caught up: start-up and the
event loop are not slowed by it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("ioc.demo_history")

BACKFILL_DAYS = 30
QUEUE_DAYS = 12  # working days of queue history: the usual is the median of the latest 10 (ioc.trends_api)
QUEUE_FROM_H, QUEUE_TO_H = 7, 18  # simulated hours of each working day (local time)


def generate(catalog: Any, seed: int, start: float) -> dict[str, list[list]]:
    """{"dossiers": [[unit, day, received, processed, on_time_rate], ...],
        "queue": [[site, hour_epoch_s, waiting_mean, minutes], ...]} for the days before `start`."""
    from sensors.simulate import CameraSimulator, DossierSimulator
    from sensors.simulate.worktime import at, local_date
    from streams.dossiers import DossierProcessor
    from datetime import time as dtime

    first_day = local_date(start) - timedelta(days=BACKFILL_DAYS)
    begin = at(first_day, dtime(0, 0))
    start_day = local_date(start).isoformat()
    events = DossierSimulator(catalog, seed=seed, start=begin).advance(start)
    events.sort(key=lambda e: e.t)
    proc = DossierProcessor(catalog)
    cols = {"dossier_received": 0, "dossier_processed": 1, "dossier_on_time_rate": 2}
    days: dict[tuple[str, str], list] = {}
    by_day: dict[str, list] = {}
    for ev in events:  # one batch per local day: its last emission holds the whole day's counts
        by_day.setdefault(local_date(ev.t).isoformat(), []).append(ev)
    for _day, batch in sorted(by_day.items()):
        for r in proc.process(batch, None).indicators:
            if r.window == "day" and r.period and r.name in cols and r.period < start_day:
                days.setdefault((r.entity, r.period), [None, None, None])[cols[r.name]] = r.value
    dossiers = [[u, d, *v] for (u, d), v in sorted(days.items())]
    queue: list[list] = []
    work_days = []
    d = first_day
    while d.isoformat() < start_day:
        if d.weekday() < 5:
            work_days.append(d)
        d += timedelta(days=1)
    for d in work_days[-QUEUE_DAYS:]:
        t0, t1 = at(d, dtime(QUEUE_FROM_H, 0)), at(d, dtime(QUEUE_TO_H, 0))
        sums: dict[tuple[str, int], int] = {}
        for ev in CameraSimulator(catalog, seed=seed, start=t0).advance(t1):
            key = (ev.site, int(ev.t // 60))
            sums[key] = sums.get(key, 0) + int(ev.waiting)
        hours: dict[tuple[str, int], list[int]] = {}
        for (site, minute), total in sums.items():
            hour = minute * 60 // 3600 * 3600
            if t0 <= hour < t1:
                hours.setdefault((site, hour), []).append(total)
        queue += [[s, h, round(sum(v) / len(v), 3), len(v)] for (s, h), v in sorted(hours.items())]
    return {"dossiers": dossiers, "queue": queue}


class DemoHistoryFeed:
    """Runs beside the DemoFeed (added by DemoFeed.attach): once the demo knows its start, the
    backfill is generated in a child process and written to the runtime's history, once per
    (seed, start) — a restart finds it done."""

    def __init__(self, demo: Any) -> None:
        self.demo = demo

    async def run(self, runtime: Any) -> None:
        store = getattr(runtime, "history", None)
        if store is None:
            return
        # after the demo's catch-up (simulated time has reached the wall clock): not competing with it
        for _ in range(600):
            if getattr(self.demo, "start", None) is not None and (self.demo.until or 0) >= time.time() - 5:
                break
            await asyncio.sleep(0.1)
        if getattr(self.demo, "start", None) is None:
            return
        key = f"{self.demo.seed}:{self.demo.start:.0f}"
        if await asyncio.to_thread(store.meta, "demo_backfill") == key:
            return
        cmd = [sys.executable, "-m", "ioc.demo_history", "--seed", str(self.demo.seed), "--start",
               repr(self.demo.start)]
        catalog_path = getattr(getattr(runtime, "config", None), "catalog_path", None)
        if catalog_path is not None:
            cmd += ["--catalog", str(catalog_path)]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
            raise
        if proc.returncode != 0:
            log.error("demo history backfill failed (exit %s): %s", proc.returncode, err.decode(errors="replace")[-2000:])
            return
        from ioc.history import write_demo_rows

        rows = json.loads(out)
        write_demo_rows(store, key, rows["dossiers"], rows["queue"])
        log.info("demo history: %d dossier days, %d queue hours (demo data)", len(rows["dossiers"]), len(rows["queue"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ioc.demo_history", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--start", type=float, required=True, help="the demo's simulated start, epoch seconds")
    p.add_argument("--catalog", type=Path, default=None)
    a = p.parse_args(argv)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # demo data in the background: behind the live monitor for the CPU
    from ioc.catalog import demo_catalog, load_catalog

    catalog = load_catalog(a.catalog) if a.catalog else demo_catalog()
    sys.stdout.write(json.dumps(generate(catalog, a.seed, a.start)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
