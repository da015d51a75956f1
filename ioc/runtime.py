"""The embedded runtime: feeds → in-process bus → pipeline → hub, in one
asyncio process, with a write-ahead journal and periodic checkpoints in the
data dir.

Processing is one task consuming the bus, so the pure core never needs a
lock; HTTP ingest awaits its own batch to report per-event rejections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import msgspec

from ioc.catalog import Catalog
from ioc.config import Config
from ioc.errors import Rejection
from ioc.events import Event, feed_of
from ioc.hub import Hub
from ioc.journal import (
    Checkpoint,
    DeadLetters,
    Journal,
    read_checkpoint,
    write_checkpoint,
)
from ioc.metrics import KnownIds, Metrics
from ioc.records import Alert, Indicator
from streams.pipeline import Pipeline, reject_positions

log = logging.getLogger("ioc.runtime")

CHECKPOINT_VERSION = 1


async def cancel_and_wait(tasks: list[asyncio.Task]) -> None:
    """Cancel background tasks and wait until each has finished (whatever it raised)."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


class AppBackend(Protocol):
    """What the web app (ioc.api) needs from a runtime, embedded or distributed."""

    hub: Hub
    metrics: Metrics
    catalog: Catalog
    started: bool

    def watermarks(self) -> dict[str, float]: ...

    def snapshot(self) -> tuple[list[bytes], list[bytes]]: ...

    async def submit(
        self, events: list[Event], rejections: Sequence[Rejection] = (), source: str = "http",
        positions: list[int] | None = None, wait: bool = False, meta: dict | None = None,
    ) -> list[Rejection]: ...


@dataclass
class Submission:
    events: list[Event]
    rejections: list[Rejection]
    source: str
    positions: list[int] | None = None
    future: asyncio.Future | None = None
    received: float = field(default_factory=time.perf_counter)
    meta: dict | None = None


class Runtime:
    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        pipeline: Pipeline,
        metrics: Metrics | None = None,
        hub: Hub | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.pipeline = pipeline
        self.metrics = metrics or Metrics()
        self.hub = hub or Hub(on_coalesced=self.metrics.ws_records_coalesced.inc, fresh_indicators=pipeline.flush)
        self.clock = clock
        self.known = KnownIds(set(catalog.stations), set(catalog.units), set(catalog.sites))
        data = Path(config.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.data_dir = data
        self.journal = Journal(data / "journal", fsync=config.journal_fsync)
        self.dead_letters = DeadLetters(data / "dead-letter.jsonl")
        self.checkpoint_path = data / "checkpoint.msgpack"
        self.queue: asyncio.Queue[Submission] = asyncio.Queue(maxsize=1024)
        self.tasks: list[asyncio.Task] = []
        self.feeds: list[Any] = []  # objects with async run(runtime) / state for checkpoints
        self.sim_state: dict[str, Any] = {}
        self.live_now: Callable[[], float | None] = lambda: None if config.demo else clock()
        self.on_alerts: list[Callable[[list[Alert]], None]] = []
        self.engine_initial_state: dict | None = None  # set by the alerting adapter
        self.apply_op: Callable[[dict], None] = lambda op: None
        self.restored_events = 0
        self._pending_puts: set[asyncio.Future] = set()
        self._write: asyncio.Future | None = None  # checkpoint write in flight
        self.started = False

    # -- lifecycle -----------------------------------------------------
    def restore(self) -> None:
        """Checkpoint + journal tail → the state at the moment the process died."""
        cp = read_checkpoint(self.checkpoint_path)
        segment, offset = 0, 0
        if cp is not None:
            if cp.version != CHECKPOINT_VERSION:
                raise RuntimeError(f"{self.checkpoint_path}: checkpoint version {cp.version} is not supported")
            self.pipeline.set_state(cp.pipeline)
            self.sim_state = dict(cp.extra.get("sim", {}))
            segment, offset = cp.journal_segment, cp.journal_offset
        elif self.engine_initial_state is not None and self.pipeline.engine is not None:
            # no checkpoint: the whole journal is replayed, so the engine starts from nothing too
            self.pipeline.engine.set_state(self.engine_initial_state)
        for events, meta in self.journal.read_from(segment, offset):
            if meta and "sim" in meta:
                self.sim_state = dict(meta["sim"])
            if meta and "op" in meta:
                self.apply_op(meta["op"])
            if events:
                self.restored_events += len(events)
                self._run_pipeline(events, None, "journal")
        self.hub.publish([*self.pipeline.flush(), *self._active_alerts()])

    def _active_alerts(self) -> list[Alert]:
        engine = self.pipeline.engine
        return list(engine.active()) if engine is not None and hasattr(engine, "active") else []

    async def start(self) -> None:
        self.restore()
        self.tasks.append(asyncio.create_task(self._consume(), name="ioc-bus"))
        self.tasks.append(asyncio.create_task(self._checkpoint_loop(), name="ioc-checkpoint"))
        for feed in self.feeds:
            self.tasks.append(asyncio.create_task(feed.run(self), name=f"ioc-feed-{type(feed).__name__}"))
        self.started = True

    async def stop(self) -> None:
        await cancel_and_wait(self.tasks)
        self.tasks.clear()
        if self._write is not None:
            with contextlib.suppress(Exception):
                await self._write
        # drain what was accepted but not yet processed
        while not self.queue.empty():
            self._handle(self.queue.get_nowait())
        self.checkpoint()
        self.journal.close()
        self.dead_letters.close()

    # -- input ---------------------------------------------------------
    async def submit(
        self,
        events: list[Event],
        rejections: Sequence[Rejection] = (),
        source: str = "http",
        positions: list[int] | None = None,
        wait: bool = False,
        meta: dict | None = None,
    ) -> list[Rejection]:
        """Queue a batch; with wait=True return every rejection of it (parse + processing)."""
        fut = asyncio.get_running_loop().create_future() if wait else None
        await self.queue.put(Submission(list(events), list(rejections), source, positions, fut, meta=meta))
        if fut is None:
            return list(rejections)
        return await fut

    def sink(self, source: str) -> Callable[[list[Event], list[Rejection]], None]:
        """A synchronous sink for feed adapters: queues the batch (waits if the bus is full, never drops)."""

        def deliver(events: list[Event], rejections: list[Rejection]) -> None:
            sub = Submission(list(events), list(rejections), source)
            try:
                self.queue.put_nowait(sub)
            except asyncio.QueueFull:
                self._pending_puts.add(t := asyncio.ensure_future(self.queue.put(sub)))
                t.add_done_callback(self._pending_puts.discard)

        return deliver

    # -- processing ----------------------------------------------------
    async def _consume(self) -> None:
        while True:
            sub = await self.queue.get()
            try:
                self._handle(sub)
            except Exception as exc:  # never let one batch stop the stream
                log.exception("batch from %s failed", sub.source)
                if sub.future is not None and not sub.future.done():
                    sub.future.set_exception(exc)

    def _handle(self, sub: Submission) -> None:
        rejections = list(sub.rejections)
        if sub.meta and "sim" in sub.meta:
            self.sim_state = dict(sub.meta["sim"])
        if sub.events or sub.meta:
            self.journal.append(sub.events, sub.meta)
        if sub.events:
            rejections.extend(self._run_pipeline(sub.events, sub.positions, sub.source))
        self._reject(sub.rejections, sub.source)
        self.metrics.processing_lag.observe(time.perf_counter() - sub.received)
        if sub.future is not None and not sub.future.done():
            sub.future.set_result(rejections)

    def _run_pipeline(
        self, events: list[Event], positions: list[int] | None, source: str
    ) -> list[Rejection]:
        result = self.pipeline.process(events, self.live_now())
        late = result.rejections
        if late:
            late = reject_positions(late, events, positions or list(range(len(events))))
            self._reject(late, source)
        counts: dict[str, int] = {}
        for ev in events:
            f = feed_of(ev)
            counts[f] = counts.get(f, 0) + 1
        for r in late:
            counts[r.feed] = counts.get(r.feed, 0) - 1
        m = self.metrics
        for f, n in counts.items():
            if n > 0:
                m.events_ingested.labels(f).inc(n)
        m.batch_size.observe(len(events))
        for feed, wm in self.pipeline.watermarks.items():
            m.watermark.labels(feed).set(wm)
        m.observe_indicators(result.indicators, self.known)
        if result.alerts:
            m.observe_alerts(result.alerts)
            for cb in self.on_alerts:
                cb(result.alerts)
        self.hub.publish(result.records)
        return late

    def _reject(self, rejections: Sequence[Rejection], source: str) -> None:
        if not rejections:
            return
        for r in rejections:
            self.metrics.events_rejected.labels(r.feed, str(r.reason)).inc()
        self.dead_letters.write(rejections, source)

    def journal_op(self, op: dict) -> None:
        """An operator action, journaled in order with the events before it is applied."""
        self.journal.append([], meta={"op": op})

    def publish_updates(self, alerts: list[Alert]) -> None:
        """Lifecycle updates made outside the bus (acks) go to the walls too."""
        if alerts:
            self.hub.publish(alerts)

    # -- checkpoints ---------------------------------------------------
    def _capture(self) -> tuple[bytes, int]:
        """State + journal position, taken between batches so they agree; encoded at once."""
        segment, offset = self.journal.rotate()
        cp = Checkpoint(
            version=CHECKPOINT_VERSION,
            journal_segment=segment,
            journal_offset=offset,
            pipeline=self.pipeline.get_state(),
            extra={"sim": self.sim_state},
        )
        return msgspec.msgpack.encode(cp), segment

    def checkpoint(self) -> None:
        t0 = time.perf_counter()
        data, segment = self._capture()
        write_checkpoint(self.checkpoint_path, data)
        self._checkpointed(segment, t0)

    async def checkpoint_async(self) -> None:
        """The write and fsync run in a thread: a slow disk must not stall every WebSocket client."""
        t0 = time.perf_counter()
        data, segment = self._capture()
        # shielded: if this task is cancelled, the write still completes and stop() waits for it,
        # so an older checkpoint can never land after the final one
        self._write = asyncio.ensure_future(asyncio.to_thread(write_checkpoint, self.checkpoint_path, data))
        await asyncio.shield(self._write)
        self._checkpointed(segment, t0)

    def _checkpointed(self, segment: int, t0: float) -> None:
        self.journal.prune_before(segment)  # only once the checkpoint covering them is on disk
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.set(time.perf_counter() - t0)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.checkpoint_interval_s)
            # the capture runs between batches: the consumer task and this one share the loop
            await self.checkpoint_async()

    # -- reads ---------------------------------------------------------
    def watermarks(self) -> dict[str, float]:
        return self.pipeline.watermarks

    def snapshot(self) -> tuple[list[bytes], list[bytes]]:
        return self.hub.snapshot_records()


def indicators_only(records) -> list[Indicator]:
    return [r for r in records if isinstance(r, Indicator)]
