"""Shared machinery of the seeded simulators.

A simulator generates on a fixed internal tick (its "chunk": 5 minutes for
rain, 1 minute for cameras, one local day for dossiers) in a fixed order
from a seeded RNG, and queues every generated event under its *arrival*
time.  `advance(until)` generates chunks until `until` is covered and
returns the queued events that have arrived by then, ordered by
(arrival, generation order).  Output therefore depends only on the seed,
the catalog and `start`, never on how the span is chopped into calls.

Arrival time equals event time except for rain readings held back by a
gauge link outage: they arrive (are returned) when the link comes back,
with their original, earlier event time — late data, as in the field.
"""

from __future__ import annotations

import heapq
import math
import random
from datetime import datetime
from typing import Protocol

from ioc.events import Event
from ioc.timeutil import LOCAL_TZ


class Simulator(Protocol):
    feed: str
    start: float
    now: float

    def advance(self, until: float) -> list[Event]: ...


class ChunkedSimulator:
    """Base class: subclasses implement `_generate(chunk_start) -> chunk_end`."""

    feed = "unknown"

    def __init__(self, start: float) -> None:
        self.start = float(start)
        self.now = float(start)  # the last `until` returned up to
        self._generated_to = float(start)
        self._queue: list[tuple[float, int, Event]] = []
        self._seq = 0

    def _push(self, arrival: float, event: Event) -> None:
        heapq.heappush(self._queue, (arrival, self._seq, event))
        self._seq += 1

    def _generate(self, chunk_start: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def advance(self, until: float) -> list[Event]:
        """Events arriving in (previous until, until], in arrival order."""
        until = float(until)
        if until <= self.now:
            return []
        while self._generated_to < until:
            self._generated_to = self._generate(self._generated_to)
        out: list[Event] = []
        q = self._queue
        while q and q[0][0] <= until:
            out.append(heapq.heappop(q)[2])
        self.now = until
        return out

    @property
    def pending(self) -> int:
        """Generated events not yet returned (future lifecycle steps, buffered readings)."""
        return len(self._queue)


def dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, LOCAL_TZ)


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw: Knuth below 30, normal approximation above."""
    if lam <= 0.0:
        return 0
    if lam < 30.0:
        limit = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
