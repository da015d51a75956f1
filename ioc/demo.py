"""Drives the seeded simulators in the embedded runtime.

Simulated time starts `backfill` hours before the wall clock, catches up at
once (so the wall has history when it opens), then runs at `speed` × real
time.  Progress travels with each batch into the journal, so a restart
resumes the simulators exactly where the processed input stopped: no event
is generated twice or skipped.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Any

from ioc.catalog import Catalog

CATCH_UP_STEP_S = 1800.0  # simulated seconds per batch while backfilling


class DemoFeed:
    def __init__(self, catalog: Catalog, seed: int, speed: float, backfill_h: float, tick_s: float = 0.25) -> None:
        self.catalog = catalog
        self.seed = seed
        self.speed = speed
        self.backfill_s = backfill_h * 3600.0
        self.tick_s = tick_s

    def _make(self, start: float) -> list[Any]:
        from sensors.simulate import demo_simulators

        return demo_simulators(self.catalog, seed=self.seed, start=start)

    async def run(self, runtime) -> None:
        state = runtime.sim_state
        if state.get("seed") == self.seed and "start" in state:
            start, until = float(state["start"]), float(state["until"])
            sims = self._make(start)
            for sim in sims:  # fast-forward: these events were processed before the restart
                sim.advance(until)
            catch_up_to = until
        else:
            now = time.time()
            start = (now - self.backfill_s) // 300 * 300
            until = start
            sims = self._make(start)
            catch_up_to = now
        while until < catch_up_to:
            until = min(until + CATCH_UP_STEP_S, catch_up_to)
            await self._emit(runtime, sims, start, until)
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            mono = time.monotonic()
            until += (mono - last) * self.speed
            last = mono
            await self._emit(runtime, sims, start, until)

    async def _emit(self, runtime, sims, start: float, until: float) -> None:
        batches = [sim.advance(until) for sim in sims]
        events = list(heapq.merge(*batches, key=lambda e: e.t))
        meta = {"sim": {"seed": self.seed, "start": start, "until": until}}
        await runtime.submit(events, source="simulator", meta=meta)
