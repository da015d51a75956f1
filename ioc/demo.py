"""Drives the seeded simulators in the embedded runtime.

Simulated time starts at 07:00 of the previous working day (so dossiers and
queues have a working morning behind them), with a storm placed so that rain
alerts are live when the wall opens; it catches up at once, then runs at
`speed` × real time.  Progress travels with each batch into the journal, so a restart
resumes the simulators exactly where the processed input stopped: no event
is generated twice or skipped.

The simulated clock is the demo's live "now": input (HTTP included) more than
`Config.future_skew_s` ahead of it is refused as future-dated, exactly as
real input is refused against the wall clock outside the demo.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ioc.catalog import Catalog

CATCH_UP_STEP_S = 1800.0  # simulated seconds per batch while backfilling


class DemoFeed:
    def __init__(self, catalog: Catalog, seed: int, speed: float, tick_s: float = 0.25) -> None:
        self.catalog = catalog
        self.seed = seed
        self.speed = speed
        self.tick_s = tick_s
        self.until: float | None = None
        self._runtime = None

    def attach(self, runtime) -> None:
        """Make the simulated clock the runtime's live "now"."""
        self._runtime = runtime
        runtime.live_now = self.now

    def now(self) -> float:
        """Simulated time: how far the simulators have run (after a restart: where they stopped)."""
        if self.until is not None:
            return self.until
        state = self._runtime.sim_state if self._runtime is not None else {}
        if state.get("seed") == self.seed and "until" in state:
            return float(state["until"])
        return time.time()

    def _make(self, start: float, storm_at: float) -> list[Any]:
        from sensors.simulate import demo_simulators

        return demo_simulators(self.catalog, seed=self.seed, start=start, storm_at=storm_at)

    async def run(self, runtime) -> None:
        state = runtime.sim_state
        if state.get("seed") == self.seed and "start" in state:
            start, storm_at, until = float(state["start"]), float(state["storm_at"]), float(state["until"])
            sims = self._make(start, storm_at)
            for sim in sims:  # fast-forward: these events were processed before the restart
                sim.advance(until)
            catch_up_to = until
        else:
            from sensors.simulate import demo_start

            now = time.time()
            start, storm_at = demo_start(now)
            until = start
            sims = self._make(start, storm_at)
            catch_up_to = now
        self.start, self.storm_at = start, storm_at
        self.until = until
        while until < catch_up_to:
            until = min(until + CATCH_UP_STEP_S, catch_up_to)
            await self._emit(runtime, sims, until)
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            mono = time.monotonic()
            until += (mono - last) * self.speed
            last = mono
            await self._emit(runtime, sims, until)

    async def _emit(self, runtime, sims, until: float) -> None:
        from sensors.simulate import advance_all

        self.until = until
        events = advance_all(sims, until)
        meta = {"sim": {"seed": self.seed, "start": self.start, "storm_at": self.storm_at, "until": until}}
        await runtime.submit(events, source="simulator", meta=meta)
