"""The demo's clock (ioc/demo.py, issue 16): at speed 1 the demo backfills from the previous working
morning up to the wall clock, then its time IS the wall clock (so the newest simulated events are at
"now" and a person's event at "now" lands in the current windows); a speed above 1 races ahead; a restart
backfills the time it was down.  The wall clock is injected (a fixed "now"), the simulators are real."""

from __future__ import annotations

import asyncio

from ioc.catalog import demo_catalog
from ioc.demo import DemoFeed
from ioc.events import encode_event
from ioc.timeutil import parse_ts

NOW = parse_ts("2026-12-03T10:02:30+07:00")  # a Thursday morning: every feed is reporting


class Runtime:
    """What DemoFeed needs of the embedded runtime: sim_state, feeds, submit()."""

    def __init__(self, sim_state: dict | None = None) -> None:
        self.sim_state = sim_state or {}
        self.feeds: list = []
        self.events: list = []
        self.metas: list[dict] = []

    async def submit(self, events, source, meta):
        assert source == "simulator"
        self.events.extend(events)
        self.metas.append(meta["sim"])


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def newest(events, kind: str) -> float:
    return max(ev.t for ev in events if type(ev).__name__.lower().startswith(kind))


async def _reach(feed: DemoFeed, target: float) -> None:
    for _ in range(2000):
        await asyncio.sleep(0.005)
        if feed.until is not None and feed.until >= target:
            return
    raise AssertionError(f"the demo reached {feed.until}, not {target}")


def drive(feed: DemoFeed, rt: Runtime, steps) -> None:
    """Run the feed in one event loop; `steps` is an async function(reach) that moves the clock."""

    async def main():
        task = asyncio.create_task(feed.run(rt))
        try:
            await steps(lambda target: _reach(feed, target))
        finally:
            task.cancel()

    asyncio.run(main())


def test_speed_one_backfills_to_now_then_follows_the_wall_clock():
    clock = Clock(NOW)
    rt = Runtime()
    feed = DemoFeed(demo_catalog(), seed=42, tick_s=0.01, clock=clock)
    feed.attach(rt)
    assert rt.demo == {"speed": 1.0}
    seen = {}

    async def steps(reach):
        await reach(NOW)
        seen["now"], seen["n"], seen["state"] = feed.now(), len(rt.events), dict(rt.metas[-1])
        clock.t = NOW + 90  # later: 90 real seconds are 90 demo seconds
        await reach(NOW + 90)

    drive(feed, rt, steps)
    assert seen["now"] == NOW
    first = rt.events[: seen["n"]]
    assert rt.metas[0]["start"] == parse_ts("2026-12-02T07:00:00+07:00")  # the previous working morning
    assert NOW - 300 < newest(first, "rain") <= NOW  # gauges report every 5 minutes
    assert NOW - 60 < newest(first, "camera") <= NOW  # counters every minute in office hours
    assert max(ev.t for ev in first) <= NOW
    # the storm is under way when the wall opens (3 h before now), so rain alerts are live at once
    assert rt.metas[-1]["storm_at"] == NOW - 3 * 3600
    assert feed.now() == NOW + 90
    assert NOW + 30 < newest(rt.events, "camera") <= NOW + 90

    # a restart an hour later backfills the hour it was down, from where the journal says it stopped
    clock.t = NOW + 3600
    rt2 = Runtime(sim_state=seen["state"])
    again = DemoFeed(demo_catalog(), seed=42, tick_s=0.01, clock=clock)
    again.attach(rt2)
    assert again.now() == NOW  # before it runs: where it stopped
    drive(again, rt2, lambda reach: reach(NOW + 3600))
    assert again.now() == NOW + 3600
    assert NOW + 3300 < newest(rt2.events, "rain") <= NOW + 3600
    # nothing generated twice: the restart resumes where the first run's journal stopped (late uploads
    # from a link outage may carry older event times, but they were not sent before)
    first_run = {encode_event(ev) for ev in rt.events[: seen["n"]]}
    assert rt2.events and not first_run & {encode_event(ev) for ev in rt2.events}


def test_a_faster_demo_races_ahead_of_the_wall_clock():
    clock = Clock(NOW)
    rt = Runtime()
    feed = DemoFeed(demo_catalog(), seed=42, speed=60.0, tick_s=0.01, clock=clock)
    feed.attach(rt)
    assert rt.demo == {"speed": 60.0}

    async def steps(reach):
        await reach(NOW)
        clock.t = NOW + 10  # ten real seconds: ten demo minutes
        await reach(NOW + 600)

    drive(feed, rt, steps)
    assert feed.now() == NOW + 600
