"""The backend of `ioc api` in the distributed mode (ioc.runtime.AppBackend).

Each API replica mirrors Redis into a local Hub: it subscribes to the
deltas channel first, then loads the latest-record hash (the snapshot), and
publishes every delta into the hub, which fans out to its WebSocket clients
with the usual per-client coalescing.  Deltas carry Redis' global sequence
number; a gap (a pub/sub message lost, e.g. on a reconnect) makes the
replica reload the hash, so a replica is never silently behind.  Any number
of replicas can run side by side.

POST /api/ingest validates the body here and produces the accepted events
to the input topics; events refused later by a worker (future-dated, too
late) are counted in the worker's metrics, not in this response.  Its
`BatchReport` (ioc.runtime) therefore lists only validation rejections:
duplicates and corrections are decided later by the worker that owns the
events' partition.

If Redis loses its data (a restart without persistence), its delta
sequence starts again from 1: a replica that sees a sequence number not
above its own checks Redis' counter and reloads the snapshot when it went
backwards.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Sequence

import msgspec

from ioc.catalog import Catalog
from ioc.distributed.kafka_io import EventProducer, ensure_topics
from ioc.distributed.redis_store import RedisStore
from ioc.distributed.settings import DistSettings
from ioc.errors import Rejection
from ioc.events import Event, feed_of
from ioc.hub import Hub
from ioc.metrics import Metrics
from ioc.records import decode
from ioc.runtime import cancel_and_wait

try:
    from ioc.runtime import BatchReport

    _HAS_REPORT = True
except ImportError:  # pragma: no cover - until ioc.runtime defines it (then submit answers a list, as it does)
    _HAS_REPORT = False

    @dataclass
    class BatchReport:  # type: ignore[no-redef]
        rejections: list[Rejection]
        duplicates: list[int] = field(default_factory=list)
        corrected: list[int] = field(default_factory=list)

log = logging.getLogger("ioc.api")


class _Delta(msgspec.Struct):
    seq: int
    records: list[msgspec.Raw]


class RedisBackend:
    def __init__(self, settings: DistSettings, catalog: Catalog, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.metrics = metrics or Metrics()
        self.hub = Hub(on_coalesced=self.metrics.ws_records_coalesced.inc)
        self.store = RedisStore(settings.redis_url, settings.redis_prefix)
        self.producer: EventProducer | None = None
        self.started = False
        self.redis_seq = 0
        self._watermarks: dict[str, float] = {}
        self._tasks: list[asyncio.Task] = []
        self._decoder = msgspec.json.Decoder(_Delta)
        self._producer_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------
    async def start(self) -> None:
        self._pubsub = self.store.r.pubsub()
        await self._pubsub.subscribe(self.store.channel)
        await self._resync()
        self._tasks.append(asyncio.create_task(self._listen(), name="ioc-redis-deltas"))
        self._tasks.append(asyncio.create_task(self._poll_watermarks(), name="ioc-redis-watermarks"))
        self.started = True

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        try:
            await self._pubsub.aclose()
        except Exception:
            pass
        if self.producer is not None:
            await self.producer.stop()
        await self.store.close()

    async def _resync(self) -> None:
        seq, raws = await self.store.snapshot()
        records = []
        for raw in raws:
            try:
                records.append(decode(raw))
            except msgspec.DecodeError:
                continue
        self.hub.publish(records)
        self.redis_seq = seq

    async def _listen(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception:  # connection lost: resubscribe, then reload the snapshot
                log.warning("redis pub/sub lost; resubscribing")
                await asyncio.sleep(0.5)
                try:
                    self._pubsub = self.store.r.pubsub()
                    await self._pubsub.subscribe(self.store.channel)
                    await self._resync()
                except Exception:
                    pass
                continue
            if msg is None or msg.get("type") != "message":
                continue
            try:
                delta = self._decoder.decode(msg["data"])
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if delta.seq <= self.redis_seq:
                if await self._seq_reset():
                    await self._resync()  # Redis lost its data: its counter started again
                continue  # already in the snapshot we loaded
            if delta.seq > self.redis_seq + 1:
                await self._resync()  # missed messages
                if delta.seq <= self.redis_seq:
                    continue
            self.redis_seq = delta.seq
            self.hub.publish([decode(bytes(r)) for r in delta.records])

    async def _seq_reset(self) -> bool:
        try:
            cur = int(await self.store.r.get(self.store.seq_key) or 0)
        except Exception:
            return False
        return cur < self.redis_seq

    async def _poll_watermarks(self) -> None:
        while True:
            try:
                self._watermarks = await self.store.watermarks()
                for feed, wm in self._watermarks.items():
                    self.metrics.watermark.labels(feed).set(wm)
            except Exception:
                pass
            await asyncio.sleep(1.0)

    # -- AppBackend ----------------------------------------------------
    def watermarks(self) -> dict[str, float]:
        return dict(self._watermarks)

    def snapshot(self) -> tuple[list[bytes], list[bytes]]:
        return self.hub.snapshot_records()

    async def submit(
        self,
        events: list[Event],
        rejections: Sequence[Rejection] = (),
        source: str = "http",
        positions: list[int] | None = None,
        wait: bool = False,
        meta: dict | None = None,
    ) -> "BatchReport | list[Rejection]":
        """Validate-rejections counted, events produced; with wait=True a BatchReport (like the
        embedded runtime's) whose duplicates/corrected are empty: the workers decide those."""
        for r in rejections:
            self.metrics.events_rejected.labels(r.feed, str(r.reason)).inc()
        if events:
            async with self._producer_lock:
                if self.producer is None:
                    await ensure_topics(self.settings.kafka_url, self.settings.partitions)
                    producer = EventProducer(self.settings.kafka_url, self.catalog)
                    await producer.start()
                    self.producer = producer
            await self.producer.send_events(events)
            counts: dict[str, int] = {}
            for ev in events:
                counts[feed_of(ev)] = counts.get(feed_of(ev), 0) + 1
            for f, n in counts.items():
                self.metrics.events_ingested.labels(f).inc(n)
        if wait and _HAS_REPORT:
            return BatchReport(rejections=list(rejections), duplicates=[], corrected=[])
        return list(rejections)
