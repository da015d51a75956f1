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
5. The checkpoint's offset, not the group's committed offset, says where a
   partition resumes: a partition's next processed offset must be exactly
   its processed offset + 1 (or the log's first offset with no checkpoint).
   A delivery past that (Redis restarted from an older snapshot or empty,
   so the checkpoint is behind what Kafka committed) makes the worker seek
   the partition back and re-process from there, after marking the alert
   transitions already in ioc.alerts since the checkpoint as published — a
   rolled-back Redis costs re-processing, never a skipped event or a second
   ioc.alerts record.
6. Outages: every Redis and Kafka call is retried with capped exponential
   backoff while the partition is owned (the stream waits; nothing is
   acked), `health` shows the dependency as down.  If Redis comes back
   without the partition's keys (`StateLost`) the owner re-claims the
   partition and re-writes the snapshot and a checkpoint from memory.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from ioc.catalog import Catalog
from ioc.metrics import WorkerMetrics
from ioc.distributed.partitioning import FEED_OF_TOPIC, partition_catalog
from ioc.distributed.ticks import PartitionClock, encode_tick, parse_tick, tick_due
from ioc.distributed.redis_store import TRANSIENT as REDIS_TRANSIENT, Fenced, RedisStore, StateLost, alert_id, transition_of
from ioc.errors import Reason, Rejection
from ioc.events import Event, feed_of, parse_event
from ioc.records import Alert, Indicator
from streams.pipeline import Pipeline

log = logging.getLogger("ioc.worker")

STATE_VERSION = 1

try:  # Kafka outage errors (the records producer); aiokafka is a dependency of the distributed extra
    from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
except ImportError:  # pragma: no cover
    KafkaError = KafkaConnectionError = KafkaTimeoutError = OSError  # type: ignore[misc,assignment]


def _kafka_transient(e: BaseException) -> bool:
    if isinstance(e, (KafkaConnectionError, KafkaTimeoutError, OSError, asyncio.TimeoutError)):
        return True
    return isinstance(e, KafkaError) and bool(getattr(e, "retriable", False))


def produce_once(producer: Any, alerts_since: Callable[[float], Any] | None, indicators: list[Indicator],
                 alerts: list[Alert]) -> Callable[[], Any]:
    """A produce to retry without writing an alert transition twice.

    A send that failed may still have reached the broker (the connection dropped after the
    write, before the acknowledgement).  So before every re-send, the transitions already in
    ioc.alerts since the first attempt are read back and left out; indicator records are
    latest-value and may repeat harmlessly.
    """
    pending = list(alerts)
    first_attempt_s: float | None = None

    async def attempt() -> None:
        nonlocal pending, first_attempt_s
        if first_attempt_s is None:
            first_attempt_s = time.time()
        elif pending and alerts_since is not None:
            present = {(alert_id(a), transition_of(a)) for a in await alerts_since(first_attempt_s - 60.0)}
            pending = [a for a in pending if (alert_id(a), transition_of(a)) not in present]
        await producer.send_records(indicators, pending)

    return attempt


class Revoked(Fenced):
    """The partition was revoked while a call waited for Redis or Kafka to come back."""


class Health:
    """Up/down per dependency (redis, kafka) for /healthz and ioc_worker_dependency_up."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics
        self.deps: dict[str, dict[str, Any]] = {}
        for dep in ("redis", "kafka"):
            self.up(dep)
        self.notes: dict[str, str] = {}  # e.g. redis persistence

    def up(self, dep: str) -> None:
        d = self.deps.get(dep)
        if d is not None and d["up"]:
            return
        if d is not None:
            log.warning("%s is back after %.1f s", dep, time.time() - d["since"])
        self.deps[dep] = {"up": True, "since": time.time(), "error": None}
        self.metrics.dependency_up.labels(dep).set(1)

    def down(self, dep: str, error: str) -> None:
        d = self.deps.get(dep)
        if d is not None and not d["up"]:
            d["error"] = error
            return
        log.warning("%s unavailable (%s); retrying with backoff", dep, error)
        self.deps[dep] = {"up": False, "since": time.time(), "error": error}
        self.metrics.dependency_up.labels(dep).set(0)
        self.metrics.dependency_outages.labels(dep).inc()

    def status(self) -> dict[str, Any]:
        ok = all(d["up"] for d in self.deps.values())
        return {
            "status": "ok" if ok else "degraded",
            "dependencies": {k: {"up": v["up"], "since": v["since"], "error": v["error"]} for k, v in self.deps.items()},
            **({"notes": dict(self.notes)} if self.notes else {}),
        }


class InMessage(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


def make_processor(feed: str, catalog: Catalog, rain_limits=None):
    """One feed's processor for one partition (the unknown-entity cap from IOC_MAX_UNKNOWN_ENTITIES;
    rain: `rain_limits` decide quarantine, as in the embedded pipeline)."""
    from ioc.config import unknown_entity_cap
    from streams.cameras import CameraProcessor
    from streams.dossiers import DossierProcessor
    from streams.rain import RainProcessor
    from streams.window import MAX_UNKNOWN_ENTITIES

    kinds = {"rain": RainProcessor, "dossier": DossierProcessor, "camera": CameraProcessor}
    if feed in kinds:
        cap = unknown_entity_cap()
        cap = MAX_UNKNOWN_ENTITIES if cap is None else cap
        if feed == "rain":
            return RainProcessor(catalog, cap, limits=rain_limits)
        return kinds[feed](catalog, cap)
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
    revoked: bool = False
    checkpoint_at: float = 0.0  # wall-clock time the loaded checkpoint was written (0 = none)
    log_start: int | None = None  # first offset of the partition's log, when looked up
    seeking: int | None = None  # offset a seek was requested to (a rewind after a Redis rollback)
    seek_at: float = 0.0
    rewound: bool = False  # ioc.alerts transitions since the checkpoint already marked as published
    rewind_until: int = -1  # the committed offset a rewind was started for (not one per timer tick)
    last_input: float = field(default_factory=time.monotonic)  # monotonic time of its last fresh message
    last_tick: float | None = None  # event time of the last watermark tick produced for it

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


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
        seek: Callable[[tuple[str, int], int], Any] | None = None,
        seek_done: Callable[[tuple[str, int]], None] = lambda tp: None,
        log_start: Callable[[tuple[str, int]], Any] | None = None,
        alerts_since: Callable[[float], Any] | None = None,
        backoff_s: tuple[float, float] = (0.1, 2.0),
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
        self.seek = seek  # async (tp, offset): rewind the consumer of a partition
        self.seek_done = seek_done  # the rewind reached the partition's state: back to normal delivery
        self.log_start = log_start  # async tp → first offset of the partition's log
        self.alerts_since = alerts_since  # async wall-clock s → alert records produced to ioc.alerts since then
        self.backoff_s = backoff_s
        self.health = Health(metrics)
        self._seen_lock = asyncio.Lock()
        self._seen_since: tuple[float, float] | None = None  # (since, monotonic time of the read)

    # -- retries ---------------------------------------------------------
    async def _retry(self, dep: str, what: str, fn: Callable[[], Any], owned: Owned | None = None):
        """`await fn()` until it does not fail with an outage of `dep`; aborts (Revoked) when the
        partition is revoked meanwhile."""
        delay, cap = self.backoff_s
        while True:
            try:
                res = await fn()
            except Exception as e:
                transient = isinstance(e, REDIS_TRANSIENT) if dep == "redis" else _kafka_transient(e)
                if not transient:
                    raise
                self.health.down(dep, f"{what}: {type(e).__name__}: {e}")
                self.metrics.retries.labels(dep).inc()
                if owned is not None and (owned.revoked or self.owned.get(owned.tp) is not owned):
                    raise Revoked(f"{owned.topic}[{owned.partition}] revoked during a {dep} outage") from e
                await asyncio.sleep(delay * random.uniform(0.75, 1.25))
                delay = min(delay * 2, cap)
                continue
            self.health.up(dep)
            return res

    async def _write(self, owned: Owned, what: str, fn: Callable[[], Any]):
        """A fenced Redis write for a partition: retried through outages; when Redis lost the
        partition's keys, re-claim it and restore what Redis lost from memory, then retry."""
        while True:
            try:
                return await self._retry("redis", what, fn, owned)
            except StateLost:
                await self._restore_lost(owned)
            except Revoked:
                raise
            except Fenced:
                self._fence(owned)
                raise

    async def _restore_lost(self, owned: Owned) -> None:
        t, p = owned.tp
        try:
            owned.epoch = await self._retry("redis", "reclaim", lambda: self.store.reclaim(t, p, owned.epoch), owned)
        except Revoked:
            raise
        except Fenced:
            self._fence(owned)
            raise
        self.metrics.state_lost.inc()
        log.warning("%s[%d]: Redis lost the partition's keys (restart without persistence? FLUSHALL?); "
                    "re-writing snapshot and checkpoint from memory, epoch %d", t, p, owned.epoch)
        pipeline = owned.pipeline
        records = [*pipeline.flush(), *_active(pipeline)]
        await self._retry("redis", "restore snapshot", lambda: self.store.publish(
            t, p, owned.epoch, [r for r in records if isinstance(r, Indicator)],
            [r for r in records if isinstance(r, Alert)], pipeline.watermarks), owned)
        owned.checkpointed = -1  # Redis holds no checkpoint now: write one as soon as possible
        owned.last_checkpoint = 0.0

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
            while True:
                try:
                    owned = await self._retry("redis", "load checkpoint", lambda: self._load_once(topic, partition))
                    break
                except StateLost:  # flushed between our claim and our first write: claim again
                    continue
            # transitions produced to ioc.alerts after the checkpoint (by the previous owner, or
            # before Redis lost them) are marked as published before the replay re-emits them
            await self._mark_published_since(owned.checkpoint_at)
            return owned
        finally:
            self._loading.pop((topic, partition), None)
            self.metrics.recovery_hist.observe(time.perf_counter() - t0)

    async def _load_once(self, topic: str, partition: int) -> Owned:
        feed = FEED_OF_TOPIC[topic]
        sub = partition_catalog(self.catalog, feed, partition, self.n_partitions(topic))
        engine = self.engine_factory(sub) if self.engine_factory else None
        limits = engine.rain_limits() if hasattr(engine, "rain_limits") else None
        pipeline = Pipeline(sub, engine, processors={feed: make_processor(feed, sub, limits)})
        epoch = await self.store.claim(topic, partition)
        cp = await self.store.load_checkpoint(topic, partition)
        owned = Owned(topic, partition, feed, pipeline, epoch)
        if cp is not None:
            if cp.state.get("version") != STATE_VERSION:
                raise RuntimeError(f"{topic}[{partition}]: checkpoint version {cp.state.get('version')} not supported")
            pipeline.set_state(cp.state["pipeline"])
            owned.offset = owned.checkpointed = cp.offset
            owned.checkpoint_at = cp.written_at
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

    async def revoke(self, tps: Sequence[tuple[str, int]]) -> None:
        for tp in tps:
            task = self._loading.pop(tp, None)
            if task is not None:
                task.cancel()
            owned = self.owned.pop(tp, None)
            if owned is None:
                continue
            owned.revoked = True  # a call waiting for Redis/Kafka to come back gives up
            try:
                await asyncio.wait_for(self._final_checkpoint(owned), timeout=3.0)
            except Exception:  # the next owner replays from the previous checkpoint
                log.warning("%s[%d]: no checkpoint on revocation; the next owner replays from the last one", *tp)
            owned.held.clear()
            owned.carry.clear()
            if owned.seeking is not None:
                self.seek_done(tp)
            self.metrics.lag.remove(tp[0], str(tp[1])) if self._has_lag(tp) else None
        self.metrics.assigned.set(len(self.owned))

    async def _final_checkpoint(self, owned: Owned) -> None:
        async with owned.lock:
            if owned.offset > owned.checkpointed and not owned.fenced:
                state = {"version": STATE_VERSION, "pipeline": owned.pipeline.get_state()}
                await self.store.write_checkpoint(owned.topic, owned.partition, owned.epoch, owned.offset, state)

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

    async def _contiguous(self, owned: Owned, msgs: list[InMessage], hold: Callable[[Any], None]) -> list[InMessage]:
        """The messages that continue the partition's state (next offset = processed + 1); a
        delivery past that is a rewind to do (Redis behind Kafka's committed offset): seek back."""
        nxt = (owned.carry[-1].offset if owned.carry else owned.offset) + 1
        out: list[InMessage] = []
        for m in msgs:
            if m.offset < nxt:
                out.append(m)  # a re-delivery: skipped below
            elif m.offset == nxt:
                out.append(m)
                nxt += 1
            else:
                break
        if len(out) == len(msgs):
            if owned.seeking is not None and nxt > owned.seeking:
                log.info("%s[%d]: rewound to offset %d", owned.topic, owned.partition, owned.seeking)
                owned.seeking = None
                self.seek_done(owned.tp)
            return out
        gap_at = msgs[len(out)].offset
        if owned.log_start is None or gap_at > owned.log_start:
            if self.log_start is not None:
                try:
                    owned.log_start = int(await self.log_start(owned.tp))
                except Exception:
                    owned.log_start = None
        if owned.log_start is not None and nxt < owned.log_start and gap_at <= owned.log_start:
            # the offsets before the log's start are gone (retention): nothing to re-read
            log.warning("%s[%d]: offsets %d..%d are no longer in the log; continuing from %d",
                        owned.topic, owned.partition, nxt, owned.log_start - 1, gap_at)
            self.metrics.offset_gaps.labels(owned.topic).inc()
            owned.carry.clear()
            owned.offset = gap_at - 1
            return await self._contiguous(owned, msgs, hold)
        owned.rewind_until = max(owned.rewind_until, gap_at)
        for m in msgs[len(out):]:
            hold(m)  # never acked: the rewind delivers these offsets again
        if self.seek is None:
            raise RuntimeError(f"{owned.topic}[{owned.partition}]: offset {gap_at} delivered after {nxt - 1} and no way to seek back")
        if owned.seeking != nxt or time.monotonic() - owned.seek_at > 5.0:
            await self._rewind(owned, nxt, f"offset {gap_at} delivered")
        return out

    async def _rewind(self, owned: Owned, nxt: int, why: str) -> None:
        """Seek the partition back to `nxt` (its state's next offset); Kafka is ahead of Redis."""
        log.warning("%s[%d]: %s but the state (checkpoint in Redis) ends at %d: Redis is behind "
                    "Kafka's committed offset; seeking back to %d", owned.topic, owned.partition, why, nxt - 1, nxt)
        self.metrics.rewinds.labels(owned.topic).inc()
        if not owned.rewound:
            await self._mark_published_since(owned.checkpoint_at)
            owned.rewound = True
        owned.seeking, owned.seek_at = nxt, time.monotonic()
        await self._retry("kafka", "seek", lambda: self.seek(owned.tp, max(nxt, owned.log_start or 0)), owned)

    async def check_positions(self, committed: Callable[[tuple[str, int]], int | None]) -> None:
        """Timer: a partition whose group offset is past its state's next offset is rewound even
        when nothing is delivered (the previous owner had consumed the whole log)."""
        if self.seek is None:
            return
        for owned in list(self.owned.values()):
            if owned.lock.locked() or owned.fenced or owned.seeking is not None:
                continue
            c = committed(owned.tp)
            nxt = (owned.carry[-1].offset if owned.carry else owned.offset) + 1
            if c is None or c <= nxt or c <= owned.rewind_until:
                continue
            async with owned.lock:
                if self.owned.get(owned.tp) is not owned or owned.seeking is not None:
                    continue
                owned.rewind_until = c
                try:
                    await self._rewind(owned, nxt, f"the group's committed offset is {c}")
                except Fenced:
                    pass

    async def _mark_published_since(self, since: float) -> None:
        """Alert transitions produced to ioc.alerts since `since` (wall clock, 0 = ever) → marked as
        published in Redis, so re-processing after a Redis rollback does not produce them again."""
        if self.alerts_since is None or self.producer is None:
            return
        # 5 minutes of margin (clocks), rounded down to 10 minutes: the partitions of one
        # assignment (checkpoints written seconds apart) share one read
        since = 0.0 if since <= 0 else (since - 300.0) // 600.0 * 600.0
        async with self._seen_lock:
            prev = self._seen_since
            if prev is not None and prev[0] <= since and time.monotonic() - prev[1] < 30.0:
                return
            t = time.monotonic()
            alerts = await self._retry("kafka", "read ioc.alerts", lambda: self.alerts_since(since))
            n = await self._retry("redis", "mark seen", lambda: self.store.mark_seen(alerts))
            self._seen_since = (since, t)
            log.warning("re-read %d ioc.alerts records since %.0f: %d transitions were missing in Redis", len(alerts), since, n)

    async def _process(self, owned: Owned, msgs: list[InMessage], hold: Callable[[Any], None]) -> None:
        t0 = time.perf_counter()
        msgs = await self._contiguous(owned, msgs, hold)
        if not msgs:
            return
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
                tick = parse_tick(m.value)
                if tick is not None:  # the feed's time, from a worker that saw this partition idle
                    if tick[0] == owned.feed:
                        if events:
                            result = owned.pipeline.process(events, now)
                            indicators.extend(result.indicators)
                            alerts.extend(result.alerts)
                            rejections.extend(result.rejections)
                            accepted += result.accepted
                            events = []
                        result = owned.pipeline.advance(owned.feed, tick[1])
                        indicators.extend(result.indicators)
                        alerts.extend(result.alerts)
                    continue
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
            accepted += result.accepted  # duplicates are neither accepted nor rejected
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
        owned.last_input = time.monotonic()
        owned.batches_since += 1
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        if self._due(owned):
            await self._checkpoint(owned)

    async def _publish(self, owned: Owned, indicators: list[Indicator], alerts: list[Alert], cuts: list[int] = ()) -> None:
        if self.producer is not None and (indicators or alerts):
            # Kafka first, then the Redis commit that marks the transitions as published; each
            # retried on its own, so an outage of either never produces a transition twice
            new_alerts = await self._retry("redis", "alert dedupe", lambda: self.store.unseen_alerts(alerts), owned)
            coalesced = _coalesce(indicators)
            await self._retry("kafka", "produce", produce_once(self.producer, self.alerts_since, coalesced, new_alerts), owned)
        wms = owned.pipeline.watermarks
        await self._write(owned, "publish", lambda: self.store.publish(
            owned.topic, owned.partition, owned.epoch, indicators, alerts, wms, cuts))
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
        await self._write(owned, "checkpoint", lambda: self.store.write_checkpoint(
            owned.topic, owned.partition, owned.epoch, owned.offset, state))
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

    async def tick_idle(self, idle_after_s: float) -> int:
        """Timer: a watermark tick into each owned partition idle for `idle_after_s` (wall clock) while
        the feed's watermark (all partitions, from Redis) is ahead of it (ioc.distributed.ticks).
        Needs the records producer; `idle_after_s` ≤ 0 turns ticks off.  Returns the ticks sent."""
        if self.producer is None or idle_after_s <= 0 or not self.owned:
            return 0
        send_to = getattr(self.producer, "send_to", None)
        if send_to is None:
            return 0
        feed_wm = await self.store.watermarks()
        now, sent = time.monotonic(), 0
        for owned in list(self.owned.values()):
            if owned.fenced or owned.seeking is not None or owned.carry or owned.lock.locked():
                continue
            clock = PartitionClock(owned.feed, owned.pipeline.watermarks.get(owned.feed), now - owned.last_input,
                                   owned.last_tick)
            t = tick_due(clock, feed_wm.get(owned.feed), idle_after_s)
            if t is None:
                continue
            await send_to(owned.topic, owned.partition, encode_tick(owned.feed, t))
            owned.last_tick = t
            self.metrics.ticks.labels(owned.feed).inc()
            sent += 1
        return sent

    async def probe(self) -> None:
        """Timer: PING Redis (an outage shows in health even with no traffic); re-write what Redis
        lost for idle partitions."""
        try:
            await self.store.ping()
        except Exception as e:
            if isinstance(e, REDIS_TRANSIENT):
                self.health.down("redis", f"ping: {type(e).__name__}: {e}")
                return
            raise
        self.health.up("redis")
        for owned in list(self.owned.values()):
            if owned.lock.locked() or owned.fenced:
                continue
            if owned.seeking is not None and self.seek is not None and time.monotonic() - owned.seek_at > 5.0:
                # a rewind that delivered nothing (its messages were dropped in flight): again
                owned.seek_at = time.monotonic()
                log.info("%s[%d]: rewinding to %d again", owned.topic, owned.partition, owned.seeking)
                try:
                    await self.seek(owned.tp, max(owned.seeking, owned.log_start or 0))
                except Exception:
                    log.exception("%s[%d]: seek failed", *owned.tp)
            try:
                exists = await self.store.r.exists(self.store.epoch_key(owned.topic, owned.partition))
            except Exception:
                return
            if not exists:
                async with owned.lock:
                    if self.owned.get(owned.tp) is owned:
                        try:
                            await self._restore_lost(owned)
                            if owned.offset >= 0:
                                await self._checkpoint(owned)
                        except Fenced:
                            pass

    async def checkpoint_all(self, timeout_s: float = 10.0) -> None:
        """Shutdown: checkpoint every partition with unsaved progress, giving up after `timeout_s`
        (during an outage; the next owner replays from the previous checkpoints)."""
        try:
            await asyncio.wait_for(self._checkpoint_all(), timeout_s)
        except (asyncio.TimeoutError, Exception):
            log.warning("final checkpoints not written in %.0f s; the next owner replays from the last ones", timeout_s)

    async def _checkpoint_all(self) -> None:
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
