"""Watermark ticks: the feed's time reaches a partition whose entities are silent.

A partition's watermark is the latest event time it has seen.  When every
gauge of one partition falls silent, its watermark stops while the other
partitions' move on, and its stale-sensor alerts, pending conditions and
overdue deadlines would wait for its next event.  So a worker that owns such
a partition, once it has had no message for `idle_after_s` (wall clock),
produces a tick into that partition's own input log carrying the feed's
watermark (the highest over all partitions, from Redis).  The owner applies
the tick in order with the events (`Pipeline.advance`), so a replay of the
log, a restart or a new owner reaches exactly the same state: the tick is
input, not a timer inside the core (docs/scaling.md, "Idle partitions").

A feed whose partitions are all silent does not move: there is no later
event time anywhere to move it to, as in the embedded mode.  A partition
that never had an event gets no tick: nothing in it can be stale yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ioc.timeutil import format_ts, parse_ts

TICK_KIND = "watermark"
_PREFIX = b'{"kind":"watermark"'


def encode_tick(feed: str, t: float) -> bytes:
    """The tick record: `{"kind": "watermark", "feed": "rain", "ts": "…+07:00"}`."""
    return msgspec.json.encode({"kind": TICK_KIND, "feed": feed, "ts": format_ts(t)})


def parse_tick(raw: bytes | None) -> tuple[str, float] | None:
    """(feed, epoch s) of a tick record; None for anything else (an event, or garbage the event
    parser rejects with its reason)."""
    if not raw or not raw.startswith(_PREFIX):
        return None
    try:
        obj = msgspec.json.decode(raw)
        feed, ts = obj["feed"], obj["ts"]
        if not isinstance(feed, str) or not isinstance(ts, str):
            return None
        return feed, parse_ts(ts)
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class PartitionClock:
    """What the tick decision needs to know of one owned partition."""

    feed: str
    watermark: float | None  # None: no event yet
    idle_s: float  # wall-clock seconds since its last message (event or tick)
    last_tick: float | None  # event time of the last tick this worker produced for it


def tick_due(p: PartitionClock, feed_watermark: float | None, idle_after_s: float, min_step_s: float = 1.0) -> float | None:
    """The event time to tick partition `p` to, or None: only an idle partition behind the feed's
    watermark by at least `min_step_s`, and never the same time twice (the tick may still be in flight)."""
    if feed_watermark is None or p.watermark is None or p.idle_s < idle_after_s:
        return None  # a partition that never had an event has nothing to go stale
    if feed_watermark - p.watermark < min_step_s:
        return None
    if p.last_tick is not None and feed_watermark <= p.last_tick:
        return None
    return feed_watermark
