"""The whole pure core behind one call: events in, output records out.

Routes a batch by feed to its processor, hands the indicator records (and
the accepted events) to the alert engine, and returns everything in a fixed
order, so a replay of the same batches writes the same bytes.  Both the
embedded runtime and the Faust agents call `process`.

Positions: `process(events)` returns one `Outcome` per event of `events`
(``result.outcome``, int8, input order) and rejections whose ``position``
is the index of their event in `events`; a caller holding the events'
positions in a body or file maps them with ``positions[r.position]``
(`reject_positions`).  Only ACCEPTED and CORRECTED events reach the alert
engine (a duplicate changes nothing, so it must not re-trigger anything).
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any, Protocol, Sequence

import numpy as np

from ioc.catalog import Catalog
from ioc.errors import Reason, Rejection
from ioc.events import CameraEvent, DossierEvent, Event, RainEvent
from ioc.records import Alert, Indicator
from streams.core import OUTCOME_DTYPE, Outcome, ProcessResult, Processor
from streams.window import MAX_UNKNOWN_ENTITIES


class AlertSink(Protocol):
    """`quarantined` (passed only when non-empty): readings held out of the sums, for data-quality alerts."""

    def process(
        self, events: Sequence[Event], indicators: Sequence[Indicator], watermarks: dict[str, float], *,
        quarantined: Sequence[Any] = (),
    ) -> list[Alert]: ...


def default_processors(catalog: Catalog, max_unknown_entities: int = MAX_UNKNOWN_ENTITIES,
                       rain_limits: Any = None) -> dict[str, Processor]:
    """The three feeds' processors; each keeps at most `max_unknown_entities` ids missing from the catalog;
    `rain_limits` (alerts.detectors.RainLimits, default its defaults) decides which rain readings are quarantined."""
    from streams.cameras import CameraProcessor
    from streams.dossiers import DossierProcessor
    from streams.rain import RainProcessor

    return {
        "rain": RainProcessor(catalog, max_unknown_entities, limits=rain_limits),
        "dossier": DossierProcessor(catalog, max_unknown_entities),
        "camera": CameraProcessor(catalog, max_unknown_entities),
    }


_get_t = attrgetter("t")
_FEED_OF_TYPE = {RainEvent: "rain", DossierEvent: "dossier", CameraEvent: "camera"}


class Pipeline:
    def __init__(
        self,
        catalog: Catalog,
        engine: AlertSink | None = None,
        processors: dict[str, Processor] | None = None,
        eval_step_s: int = 300,
        max_unknown_entities: int = MAX_UNKNOWN_ENTITIES,
        rain_limits: Any = None,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.eval_step_s = eval_step_s
        if rain_limits is None and engine is not None and hasattr(engine, "rain_limits"):
            rain_limits = engine.rain_limits()  # the implausible_reading rule's: one definition for both
        self.processors = (processors if processors is not None
                           else default_processors(catalog, max_unknown_entities, rain_limits))

    @property
    def watermarks(self) -> dict[str, float]:
        return {feed: p.watermark for feed, p in self.processors.items() if p.watermark is not None}

    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult:
        """Process one batch; events keep their arrival order within each feed.

        Rules are evaluated at least once per `eval_step_s` of event time: the
        batch is cut where the running watermark enters a new step, so a
        threshold crossed and cleared inside one long replay batch still fires
        (within one step a rain window only grows, so its batch-end value is
        its maximum).  The result is the same whatever the batch size.
        """
        segments = self.segments(events)
        if len(segments) == 1:
            return self._process_segment(events, now, 0)
        result = ProcessResult()
        outcome = np.empty(len(events), dtype=OUTCOME_DTYPE)
        start = 0
        for segment in segments:
            out = self._process_segment(segment, now, start)
            outcome[start : start + len(segment)] = out.outcome
            out.outcome = None
            result.extend(out)
            start += len(segment)
        result.outcome = outcome
        return result

    def process_segment(self, events: Sequence[Event], now: float | None = None) -> ProcessResult:
        """A batch already cut at step boundaries (a journaled segment) as one, without cutting it again:
        a restart then reproduces the live run's evaluation points exactly, even where an event that
        opened a step in the live batch was refused there."""
        return self._process_segment(events, now, 0)

    def segments(self, events: Sequence[Event]) -> list[Sequence[Event]]:
        """The batch cut at each `eval_step_s` step of the running watermark."""
        step = self.eval_step_s
        wms = self.watermarks
        cur = math.ceil(max(wms.values()) / step) if wms else None
        horizon = 86400 // step  # future-dated events (refused later) must not open steps
        cuts: list[int] = []
        for i, t in enumerate(map(_get_t, events)):
            b = math.ceil(t / step)
            if cur is None:
                cur = b
            elif b > cur and b <= cur + horizon:
                cuts.append(i)
                cur = b
        if not cuts:
            return [events]
        bounds = [0, *cuts, len(events)]
        return [events[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]

    def _process_segment(self, events: Sequence[Event], now: float | None, offset: int) -> ProcessResult:
        """One segment (events[offset:...] of the caller's batch): by feed, then the alert engine."""
        types = list(map(type, events))
        kinds = set(types)
        by_feed: dict[str, tuple[Sequence[Event], list[int] | None]] = {}
        if len(kinds) == 1:
            by_feed[_FEED_OF_TYPE[types[0]]] = (events, None)  # idx None: the identity
        else:
            for ty in kinds:
                idx_t = [i for i, x in enumerate(types) if x is ty]
                by_feed[_FEED_OF_TYPE[ty]] = ([events[i] for i in idx_t], idx_t)
        result = ProcessResult()
        outcome = np.empty(len(events), dtype=OUTCOME_DTYPE)
        accepted: list[Event] = []
        for feed, processor in self.processors.items():
            entry = by_feed.get(feed)
            if entry is None:
                continue
            batch, idx = entry
            out = processor.process(batch, now)
            result.indicators.extend(out.indicators)
            result.quarantined.extend(out.quarantined)
            o = out.outcome
            if o is None:  # a processor that does not report outcomes: its rejections only
                o = np.zeros(len(batch), dtype=OUTCOME_DTYPE)
                o[[r.position for r in out.rejections]] = Outcome.REJECTED
            if idx is None:
                outcome = np.asarray(o, dtype=OUTCOME_DTYPE)
            else:
                outcome[idx] = o
            if out.rejections:
                result.rejections.extend(
                    Rejection(r.reason, r.detail, r.feed, r.raw, offset + (r.position if idx is None else idx[r.position]))
                    for r in out.rejections
                )
            if (o == Outcome.ACCEPTED).all():
                accepted.extend(batch)
            else:
                keep = ((o == Outcome.ACCEPTED) | (o == Outcome.CORRECTED)).tolist()
                accepted.extend(ev for ev, k in zip(batch, keep) if k)
        if not by_feed:
            outcome = np.zeros(0, dtype=OUTCOME_DTYPE)
        result.set_outcome(outcome)
        if self.engine is not None:
            if result.quarantined:
                result.alerts.extend(self.engine.process(accepted, result.indicators, self.watermarks,
                                                         quarantined=result.quarantined))
            else:
                result.alerts.extend(self.engine.process(accepted, result.indicators, self.watermarks))
        return result

    def advance(self, feed: str, t: float) -> ProcessResult:
        """Move one feed's watermark to t (epoch s) with no event, then evaluate the alert engine.

        Why: in the distributed mode a partition whose entities are all silent sees no event, so
        its time would stop while the feed's time moves on in the other partitions; the workers
        put a watermark tick into its input log instead (ioc.distributed.ticks, docs/scaling.md),
        and that tick arrives here.  A time at or behind the feed's watermark changes nothing.
        """
        processor = self.processors.get(feed)
        advance_to = getattr(processor, "advance_to", None)
        if advance_to is None:
            return ProcessResult().set_outcome(np.zeros(0, dtype=OUTCOME_DTYPE))
        result = advance_to(t)
        if self.engine is not None:
            result.alerts.extend(self.engine.process([], result.indicators, self.watermarks))
        return result

    def flush(self) -> list[Indicator]:
        """Every current indicator at each feed's watermark."""
        out: list[Indicator] = []
        for processor in self.processors.values():
            out.extend(processor.flush())
        return out

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"processors": {f: p.get_state() for f, p in self.processors.items()}}
        if self.engine is not None and hasattr(self.engine, "get_state"):
            state["engine"] = self.engine.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        for feed, sub in state.get("processors", {}).items():
            if feed in self.processors:
                self.processors[feed].set_state(sub)
        if "engine" in state and self.engine is not None and hasattr(self.engine, "set_state"):
            self.engine.set_state(state["engine"])


def reject_positions(rejections: list[Rejection], events: Sequence[Event], positions: Sequence[int]) -> list[Rejection]:
    """Give `Pipeline.process` rejections the caller's positions of their events.

    ``r.position`` is the index of the event in the `events` given to
    `Pipeline.process`; `positions[i]` is event i's position in the body or
    file.  (`events` is unused: kept for the callers' signature.)
    """
    if not rejections:
        return []
    return [Rejection(r.reason, r.detail, r.feed, r.raw, positions[r.position]) for r in rejections]


__all__ = ["Pipeline", "AlertSink", "Outcome", "default_processors", "reject_positions", "Reason"]
