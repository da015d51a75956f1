"""Drives the seeded simulators in the embedded runtime.

Simulated time starts at 07:00 of the previous working day (so dossiers and
queues have a working morning behind them), with a storm placed so that rain
alerts are live when the wall opens; it catches up to the wall clock at once
(the backfill), then runs at `speed` × real time.  At speed 1 (the default)
the demo's time IS the wall clock, so an event a person posts with the
current time lands in the current windows; a restart backfills the time it
was down.  A speed above 1 races ahead of the wall clock (shown on the wall
and the console as "demo ×N").  Progress travels with each batch into the
journal, so a restart resumes the simulators exactly where the processed
input stopped: no event is generated twice or skipped.

The simulated clock is the demo's live "now": input (HTTP included) more than
`Config.future_skew_s` ahead of it is refused as future-dated, exactly as
real input is refused against the wall clock outside the demo.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable

from ioc.catalog import Catalog

CATCH_UP_STEP_S = 1800.0  # simulated seconds per batch while backfilling


class DemoFeed:
    def __init__(self, catalog: Catalog, seed: int, speed: float = 1.0, tick_s: float = 0.25,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self.seed = seed
        self.speed = speed
        self.tick_s = tick_s
        self.clock = clock  # the wall clock (a test passes a fixed one)
        self.until: float | None = None
        self._runtime = None

    def attach(self, runtime) -> None:
        """Make the simulated clock the runtime's live "now"; tell /healthz (the walls) the speed."""
        self._runtime = runtime
        runtime.live_now = self.now
        runtime.demo = {"speed": self.speed}
        if os.environ.get("IOC_DEMO_HISTORY", "1").strip().lower() not in ("0", "false", "no", "off"):
            from ioc.demo_history import DemoHistoryFeed

            # a month of trend history before the start (demo data); IOC_DEMO_HISTORY=0 skips it (its ~7 s of CPU)
            runtime.feeds.append(DemoHistoryFeed(self))

    def now(self) -> float:
        """Simulated time: how far the simulators have run (after a restart: where they stopped)."""
        if self.until is not None:
            return self.until
        state = self._runtime.sim_state if self._runtime is not None else {}
        if state.get("seed") == self.seed and "until" in state:
            return float(state["until"])
        return self.clock()

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
        else:
            from sensors.simulate import demo_start

            start, storm_at = demo_start(self.clock())
            until = start
            sims = self._make(start, storm_at)
        self.start, self.storm_at = start, storm_at
        self.until = until
        until = await self._backfill(runtime, sims, until)
        # live: demo time = anchor + elapsed wall time × speed (at speed 1, after the backfill: the wall clock)
        anchor_demo, anchor_wall = until, min(until, self.clock())
        while True:
            await asyncio.sleep(self.tick_s)
            until = max(until, anchor_demo + (self.clock() - anchor_wall) * self.speed)
            await self._emit(runtime, sims, until)

    async def _backfill(self, runtime, sims, until: float) -> float:
        """Catch up with the wall clock in CATCH_UP_STEP_S batches, including the time the backfill itself
        took, until less than a tick is left; returns the demo time reached (≥ the wall clock then)."""
        wall = self.clock()
        while wall - until >= self.tick_s:
            while until < wall:
                until = min(until + CATCH_UP_STEP_S, wall)
                await self._emit(runtime, sims, until)
            wall = self.clock()
        if until < wall:  # the last sliver: the live loop's first tick starts from the wall clock
            until = wall
            await self._emit(runtime, sims, until)
        return until

    async def _emit(self, runtime, sims, until: float) -> None:
        from sensors.simulate import advance_all

        self.until = until
        events = advance_all(sims, until)
        meta = {"sim": {"seed": self.seed, "start": self.start, "storm_at": self.storm_at, "until": until}}
        await runtime.submit(events, source="simulator", meta=meta)
