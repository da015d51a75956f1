"""The whole pure core behind one call: events in, output records out.

Routes a batch by feed to its processor, hands the indicator records (and
the accepted events) to the alert engine, and returns everything in a fixed
order, so a replay of the same batches writes the same bytes.  Both the
embedded runtime and the Faust agents call `process`.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any, Protocol, Sequence

from ioc.catalog import Catalog
from ioc.errors import Reason, Rejection
from ioc.events import CameraEvent, DossierEvent, Event, RainEvent, encode_event
from ioc.records import Alert, Indicator
from streams.core import ProcessResult, Processor


class AlertSink(Protocol):
    def process(
        self, events: Sequence[Event], indicators: Sequence[Indicator], watermarks: dict[str, float]
    ) -> list[Alert]: ...


def default_processors(catalog: Catalog) -> dict[str, Processor]:
    from streams.cameras import CameraProcessor
    from streams.dossiers import DossierProcessor
    from streams.rain import RainProcessor

    return {
        "rain": RainProcessor(catalog),
        "dossier": DossierProcessor(catalog),
        "camera": CameraProcessor(catalog),
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
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.eval_step_s = eval_step_s
        self.processors = processors if processors is not None else default_processors(catalog)

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
            return self._process_segment(segments[0], now)
        result = ProcessResult()
        for segment in segments:
            result.extend(self._process_segment(segment, now))
        return result

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

    def _process_segment(self, events: Sequence[Event], now: float | None) -> ProcessResult:
        by_feed: dict[str, list[Event]] = {}
        for ev in events:
            by_feed.setdefault(_FEED_OF_TYPE[type(ev)], []).append(ev)
        result = ProcessResult()
        accepted: list[Event] = []
        for feed, processor in self.processors.items():
            batch = by_feed.get(feed)
            if not batch:
                continue
            out = processor.process(batch, now)
            result.indicators.extend(out.indicators)
            result.rejections.extend(out.rejections)
            if out.rejections:
                refused = {r.raw for r in out.rejections}
                accepted.extend(ev for ev in batch if encode_event(ev) not in refused)
            else:
                accepted.extend(batch)
        result.accepted = len(accepted)
        if self.engine is not None:
            result.alerts.extend(self.engine.process(accepted, result.indicators, self.watermarks))
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
    """Give processor rejections (future, too late) the input positions of their events."""
    if not rejections:
        return []
    by_raw: dict[bytes, int] = {}
    for ev, pos in zip(events, positions):
        by_raw.setdefault(encode_event(ev), pos)
    out = []
    for r in rejections:
        pos = by_raw.get(r.raw, r.position)
        out.append(Rejection(r.reason, r.detail, r.feed, r.raw, pos))
    return out


__all__ = ["Pipeline", "AlertSink", "default_processors", "reject_positions", "Reason"]
