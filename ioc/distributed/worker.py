"""Partition-owned pipelines with checkpoints: the body of a Faust worker.

Faust-agnostic (streams.app adapts Faust's events and rebalance signals), so
the protocol below is testable on its own.

One `streams.pipeline.Pipeline` per assigned input partition (topic,
partition), built on the slice of the catalog that partition owns
(`partition_catalog`), so partitions never overwrite each other's
entities.  The pipeline's event-time windows and alert state are the
embedded core's, unchanged.

Checkpoint / offset protocol, per partition:

1. On assignment: claim a new fencing epoch in Redis (INCR), load the
   checkpoint (state blob + `offset` = last input offset it includes), and
   `set_state` it.  Then fill the snapshot hash with the partition's
   current records where a key has no value yet.
2. Each batch: messages with offset <= the partition's processed offset are
   re-deliveries and are skipped (acked at once: their effect is in the
   state).  The rest are parsed and processed; output records go first to
   Kafka (ioc.indicators, and the alerts Redis has not seen), then to Redis
   in one fenced script (latest hash, alert dedupe, one delta on pub/sub).
3. Acks are held back: every message's reference count is raised before
   Faust's take() acks it, and only dropped (making the offset committable
   by Faust's consumer) after a checkpoint that covers it was written.
   So the committed offset never passes the last checkpoint: after a
   SIGKILL the next owner re-reads from at most checkpoint+1, skips what the
   checkpoint already holds, and re-processes the rest — no event lost, none
   counted twice in the windows.
4. A checkpoint is written every `checkpoint_batches` batches or
   `checkpoint_interval_s` seconds (and on revocation), after the outputs of
   everything it covers were published — under the partition's lock, so
   never between processing a batch and publishing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from ioc.catalog import Catalog
from ioc.metrics import WorkerMetrics
from ioc.distributed.partitioning import FEED_OF_TOPIC, partition_catalog
from ioc.distributed.redis_store import Fenced, RedisStore
from ioc.errors import Reason, Rejection
from ioc.events import Event, feed_of, parse_event
from ioc.records import Alert, Indicator
from streams.pipeline import Pipeline

log = logging.getLogger("ioc.worker")

STATE_VERSION = 1


class InMessage(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


def make_processor(feed: str, catalog: Catalog):
    if feed == "rain":
        from streams.rain import RainProcessor

        return RainProcessor(catalog)
    if feed == "dossier":
        from streams.dossiers import DossierProcessor

        return DossierProcessor(catalog)
    if feed == "camera":
        from streams.cameras import CameraProcessor

        return CameraProcessor(catalog)
    raise ValueError(f"unknown feed {feed!r}")


@dataclass
class Owned:
    topic: str
    partition: int
    feed: str
    pipeline: Pipeline
    epoch: int
    offset: int = -1  # last input offset processed (and published)
    checkpointed: int = -1  # last input offset covered by the checkpoint in Redis
    held: list[Any] = field(default_factory=list)  # messages whose ack waits for a checkpoint
    batches_since: int = 0
    last_checkpoint: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fenced: bool = False
    replay_cuts: list[int] = field(default_factory=list)  # cuts of the run being replayed, ascending
    carry: list[Any] = field(default_factory=list)  # read but not processed: waits for its replay cut


class PartitionWorker:
    def __init__(
        self,
        catalog: Catalog,
        store: RedisStore,
        metrics: WorkerMetrics,
        *,
        partitions: dict[str, int] | int,
        engine_factory: Callable[[Catalog], Any] | None = None,
        producer: Any = None,
        release: Callable[[Any], None] = lambda message: None,
        checkpoint_interval_s: float = 2.0,
        checkpoint_batches: int = 50,
        live_clock: bool = True,
        cut_every: int = 0,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.metrics = metrics
        self._partitions = partitions
        self.engine_factory = engine_factory
        self.producer = producer
        self.release = release  # drop the hold on a message → Faust may commit its offset
        self.checkpoint_interval_s = checkpoint_interval_s
        self.checkpoint_batches = checkpoint_batches
        self.live_clock = live_clock
        self.cut_every = cut_every  # > 0: also end core batches where offset // cut_every changes
        self.owned: dict[tuple[str, int], Owned] = {}
        self._loading: dict[tuple[str, int], asyncio.Task] = {}

    def n_partitions(self, topic: str) -> int:
        p = self._partitions
        return p if isinstance(p, int) else p[topic]

    # -- assignment ------------------------------------------------------
    async def assign(self, tps: Sequence[tuple[str, int]]) -> None:
        """New assignment: load every newly owned input partition (concurrently)."""
        t0 = time.perf_counter()
        self.metrics.rebalances.inc()
        wanted = {(t, p) for t, p in tps if t in FEED_OF_TOPIC}
        for tp in list(self.owned):
            if tp not in wanted:
                await self.revoke([tp])
        for tp in wanted:
            if tp not in self.owned and tp not in self._loading:
                self._loading[tp] = asyncio.ensure_future(self._load(*tp))
        tasks = [self._loading[tp] for tp in wanted if tp in self._loading]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.metrics.assigned.set(len(self.owned))
        self.metrics.recovery_seconds.set(time.perf_counter() - t0)

    async def _load(self, topic: str, partition: int) -> Owned:
        t0 = time.perf_counter()
        try:
            feed = FEED_OF_TOPIC[topic]
            sub = partition_catalog(self.catalog, feed, partition, self.n_partitions(topic))
            engine = self.engine_factory(sub) if self.engine_factory else None
            pipeline = Pipeline(sub, engine, processors={feed: make_processor(feed, sub)})
            epoch = await self.store.claim(topic, partition)
            cp = await self.store.load_checkpoint(topic, partition)
            owned = Owned(topic, partition, feed, pipeline, epoch)
            if cp is not None:
                if cp.state.get("version") != STATE_VERSION:
                    raise RuntimeError(f"{topic}[{partition}]: checkpoint version {cp.state.get('version')} not supported")
                pipeline.set_state(cp.state["pipeline"])
                owned.offset = owned.checkpointed = cp.offset
            owned.replay_cuts = await self.store.load_cuts(topic, partition, owned.offset)
            if cp is not None:
                # outputs published after the checkpoint are ahead of the restored state; the
                # processors only emit what changed since the state's last emission, so the
                # snapshot steps back to the checkpoint and the replay brings it forward again
                await self.store.overwrite(topic, partition, epoch, pipeline.flush())
            await self.store.fill_missing(topic, partition, epoch, [*pipeline.flush(), *_active(pipeline)])
            self.owned[(topic, partition)] = owned
            log.info("%s[%d]: epoch %d, checkpoint offset %d", topic, partition, epoch, owned.offset)
            return owned
        finally:
            self._loading.pop((topic, partition), None)
            self.metrics.recovery_hist.observe(time.perf_counter() - t0)

    async def revoke(self, tps: Sequence[tuple[str, int]]) -> None:
        for tp in tps:
            task = self._loading.pop(tp, None)
            if task is not None:
                task.cancel()
            owned = self.owned.pop(tp, None)
            if owned is None:
                continue
            try:
                async with owned.lock:
                    if owned.offset > owned.checkpointed and not owned.fenced:
                        await self._checkpoint(owned)
            except Exception:  # the next owner replays from the previous checkpoint
                log.exception("%s[%d]: checkpoint on revocation failed", *tp)
            owned.held.clear()
            owned.carry.clear()
            self.metrics.lag.remove(tp[0], str(tp[1])) if self._has_lag(tp) else None
        self.metrics.assigned.set(len(self.owned))

    def _has_lag(self, tp) -> bool:
        try:
            return (tp[0], str(tp[1])) in self.metrics.lag._metrics
        except AttributeError:
            return False

    async def _get(self, tp: tuple[str, int]) -> Owned | None:
        owned = self.owned.get(tp)
        if owned is not None:
            return owned
        task = self._loading.get(tp)
        if task is not None:
            try:
                return await task
            except Exception:
                return None
        return None

    # -- processing ------------------------------------------------------
    async def handle(
        self,
        messages: Sequence[InMessage],
        hold: Callable[[Any], None] = lambda m: None,
        is_assigned: Callable[[tuple[str, int]], bool] = lambda tp: False,
    ) -> None:
        """A batch from Faust's take(): split by partition, process each in offset order."""
        by_tp: dict[tuple[str, int], list[InMessage]] = {}
        for m in messages:
            by_tp.setdefault((m.topic, m.partition), []).append(m)
        for tp, msgs in by_tp.items():
            owned = await self._get(tp)
            if owned is None and not (tp in self._loading) and is_assigned(tp) and tp[0] in FEED_OF_TOPIC:
                # delivered before the assignment signal reached us: load it now
                self._loading[tp] = asyncio.ensure_future(self._load(*tp))
                owned = await self._get(tp)
                self.metrics.assigned.set(len(self.owned))
            if owned is None or owned.fenced:
                for m in msgs:
                    hold(m)  # never acked here: the partition's owner reads it from its checkpoint
                continue
            async with owned.lock:
                if self.owned.get(tp) is not owned:
                    for m in msgs:
                        hold(m)
                    continue
                try:
                    await self._process(owned, msgs, hold)
                except Fenced:
                    continue  # dropped: the new owner replays from the checkpoint

    async def _process(self, owned: Owned, msgs: list[InMessage], hold: Callable[[Any], None]) -> None:
        t0 = time.perf_counter()
        # hold every delivery above the checkpoint (re-deliveries too): Faust may commit an
        # offset only once a checkpoint covers it, whatever happens to this batch
        for m in msgs:
            if m.offset > owned.checkpointed:
                hold(m)
                owned.held.append(m)
        seen = {m.offset for m in owned.carry}
        fresh = [m for m in msgs if m.offset > owned.offset and m.offset not in seen]
        if len(fresh) < len(msgs):
            self.metrics.skipped.labels(owned.topic).inc(len(msgs) - len(fresh))
        if not fresh:
            return
        todo = sorted([*owned.carry, *fresh], key=lambda m: m.offset)
        chunks, owned.carry = _chunks(todo, owned.replay_cuts, self.cut_every)
        if not chunks:
            return
        fresh = [m for c in chunks for m in c]
        indicators: list[Indicator] = []
        alerts: list[Alert] = []
        rejections: list[Rejection] = []
        accepted = 0
        now = time.time() if self.live_clock else None
        for chunk in chunks:
            events: list[Event] = []
            for m in chunk:
                out = parse_event(m.value or b"", m.offset)
                if isinstance(out, Rejection):
                    rejections.append(out)
                elif feed_of(out) != owned.feed:
                    rejections.append(
                        Rejection(Reason.UNKNOWN_KIND, f"{feed_of(out)} event on {owned.topic}", feed_of(out), m.value or b"", m.offset)
                    )
                else:
                    events.append(out)
            result = owned.pipeline.process(events, now)
            indicators.extend(result.indicators)
            alerts.extend(result.alerts)
            rejections.extend(result.rejections)
            accepted += len(events) - len(result.rejections)
        cuts = [c[-1].offset for c in chunks]
        if owned.replay_cuts:
            owned.replay_cuts = [c for c in owned.replay_cuts if c > cuts[-1]]
        for r in rejections:
            self.metrics.rejected.labels(r.feed, str(r.reason)).inc()
        if accepted > 0:
            self.metrics.events.labels(owned.feed).inc(accepted)
        self.metrics.batch_size.observe(len(fresh))
        await self._publish(owned, indicators, alerts, cuts)
        owned.offset = fresh[-1].offset
        owned.batches_since += 1
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        if self._due(owned):
            await self._checkpoint(owned)

    async def _publish(self, owned: Owned, indicators: list[Indicator], alerts: list[Alert], cuts: list[int] = ()) -> None:
        try:
            if self.producer is not None:
                new_alerts = await self.store.unseen_alerts(alerts)
                await self.producer.send_records(_coalesce(indicators), new_alerts)
            wms = owned.pipeline.watermarks
            await self.store.publish(owned.topic, owned.partition, owned.epoch, indicators, alerts, wms, cuts)
        except Fenced:
            self._fence(owned)
            raise
        m = self.metrics
        m.records.labels("indicator").inc(len(indicators))
        m.records.labels("alert").inc(len(alerts))
        for feed, w in owned.pipeline.watermarks.items():
            m.watermark.labels(feed, str(owned.partition)).set(w)

    def _fence(self, owned: Owned) -> None:
        owned.fenced = True
        owned.held.clear()
        self.metrics.fenced.inc()
        if self.owned.get((owned.topic, owned.partition)) is owned:
            del self.owned[(owned.topic, owned.partition)]
        log.warning("%s[%d]: fenced, another worker owns it now", owned.topic, owned.partition)

    def _due(self, owned: Owned) -> bool:
        return owned.batches_since >= self.checkpoint_batches or (
            time.monotonic() - owned.last_checkpoint >= self.checkpoint_interval_s
        )

    async def _checkpoint(self, owned: Owned) -> None:
        t0 = time.perf_counter()
        state = {"version": STATE_VERSION, "pipeline": owned.pipeline.get_state()}
        try:
            await self.store.write_checkpoint(owned.topic, owned.partition, owned.epoch, owned.offset, state)
        except Fenced:
            self._fence(owned)
            raise
        owned.checkpointed = owned.offset
        owned.batches_since = 0
        owned.last_checkpoint = time.monotonic()
        covered = owned.offset
        keep = []
        for m in owned.held:
            if m.offset <= covered:
                self.release(m)
            else:
                keep.append(m)  # carried over, not processed yet
        owned.held = keep
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.set(time.perf_counter() - t0)

    async def checkpoint_idle(self) -> None:
        """Timer: checkpoint partitions with unsaved progress that saw no batch lately."""
        for owned in list(self.owned.values()):
            if owned.offset > owned.checkpointed and not owned.lock.locked() and self._due(owned):
                async with owned.lock:
                    if self.owned.get((owned.topic, owned.partition)) is owned and owned.offset > owned.checkpointed:
                        try:
                            await self._checkpoint(owned)
                        except Fenced:
                            pass

    async def checkpoint_all(self) -> None:
        for owned in list(self.owned.values()):
            async with owned.lock:
                if owned.offset > owned.checkpointed and not owned.fenced:
                    try:
                        await self._checkpoint(owned)
                    except Fenced:
                        pass

    def update_lag(self, highwater: Callable[[tuple[str, int]], int | None]) -> None:
        for tp, owned in self.owned.items():
            hw = highwater(tp)
            if hw is not None:
                self.metrics.lag.labels(tp[0], str(tp[1])).set(max(0, hw - owned.offset - 1))


def _chunks(msgs: list[InMessage], replay_cuts: list[int], every: int) -> tuple[list[list[InMessage]], list[InMessage]]:
    """Split offset-ordered messages into the core's batches → (batches, carried-over tail).

    The core's outputs (alert start times and so alert ids, intermediate
    values) depend on where its batches end.  Every published batch end is
    recorded in Redis with the outputs (``P:cuts``); a partition replayed
    after a crash cuts at exactly those offsets, and keeps a tail that has not
    reached its recorded cut for the next delivery, so it reproduces the
    crashed run's outputs record for record.  Past the last recorded cut the
    batch ends where the delivery does (and, with `every` > 0, also where
    offset // every changes).
    """
    out: list[list[InMessage]] = []
    i = 0
    cuts = iter(replay_cuts)
    cut = next(cuts, None)
    cur: list[InMessage] = []
    while i < len(msgs) and cut is not None:
        m = msgs[i]
        if m.offset > cut:  # the cut's own message was a rejection-free skip: move on
            if cur:
                out.append(cur)
                cur = []
            cut = next(cuts, None)
            continue
        cur.append(m)
        i += 1
        if m.offset == cut:
            out.append(cur)
            cur = []
            cut = next(cuts, None)
    if cut is not None:
        return out, cur  # wait for the rest of the replayed batch
    rest = cur + msgs[i:]
    if rest:
        if every > 0:
            block = None
            for m in rest:
                b = m.offset // every
                if b != block:
                    out.append([])
                    block = b
                out[-1].append(m)
        else:
            out.append(rest)
    return out, []


def _active(pipeline: Pipeline) -> list[Alert]:
    engine = pipeline.engine
    return list(engine.active()) if engine is not None and hasattr(engine, "active") else []


def _coalesce(indicators: list[Indicator]) -> list[Indicator]:
    """Newest record per key (a batch can update a key more than once)."""
    latest: dict[tuple, Indicator] = {}
    for rec in indicators:
        k = rec.key
        latest.pop(k, None)
        latest[k] = rec
    return list(latest.values())
