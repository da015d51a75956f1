"""Kafka producers of the distributed runtime (aiokafka), outside Faust.

`EventProducer` publishes input events to ioc.rain / ioc.dossiers /
ioc.cameras keyed by entity (see ioc.distributed.partitioning), as their
wire JSON.  `RecordProducer` publishes output records to ioc.indicators and
ioc.alerts keyed by record key.  Both build one batch per partition with
aiokafka's batch API, which costs a few µs per message instead of a future
per message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from ioc.catalog import Catalog
from ioc.distributed.partitioning import (
    ALERTS_TOPIC,
    INDICATORS_TOPIC,
    INPUT_TOPICS,
    key_of,
    partition_of,
    topic_of,
)
from ioc.distributed.redis_store import record_field
from ioc.distributed.settings import bootstrap_servers
from ioc.events import Event, encode_event
from ioc.records import Alert, Indicator, encode

log = logging.getLogger("ioc.kafka")

ALL_TOPICS = (*INPUT_TOPICS, INDICATORS_TOPIC, ALERTS_TOPIC)


async def ensure_topics(kafka_url: str, partitions: int, names: Sequence[str] = ALL_TOPICS, timeout_s: float = 30.0) -> None:
    """Create the topics with `partitions` partitions where they do not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_url), request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def read_alerts_since(kafka_url: str, since_s: float, timeout_s: float = 20.0) -> list[Alert]:
    """Every alert record produced to ioc.alerts since `since_s` (wall clock; 0 = from the
    beginning), all partitions, up to the current end (the worker marks them as published
    before a partition replays: ioc.distributed.worker)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ioc.records import decode

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(kafka_url), enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=int(timeout_s * 1000))
    await c.start()
    try:
        parts = c.partitions_for_topic(ALERTS_TOPIC)
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(ALERTS_TOPIC) or set()
        tps = [TopicPartition(ALERTS_TOPIC, p) for p in sorted(parts)]
        if not tps:
            return []
        c.assign(tps)
        end = await c.end_offsets(tps)
        start = await c.beginning_offsets(tps)
        if since_s > 0:
            try:
                found = await c.offsets_for_times({tp: int(since_s * 1000) for tp in tps})
                start = {tp: (found[tp].offset if found.get(tp) is not None else end[tp]) for tp in tps}
            except Exception:  # a broker without ListOffsets by time: read it all
                log.info("offsets_for_times unsupported; reading ioc.alerts from the beginning")
        todo = [tp for tp in tps if start[tp] < end[tp]]
        for tp in tps:
            c.seek(tp, start[tp])
        out: list[Alert] = []
        pos = dict(start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(pos[tp] < end[tp] for tp in todo):
            if loop.time() > deadline:
                raise KafkaTimeoutError(f"ioc.alerts not read to its end in {timeout_s} s")
            batch = await c.getmany(*todo, timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    pos[tp] = m.offset + 1
                    try:
                        rec = decode(m.value)
                    except Exception:
                        continue
                    if isinstance(rec, Alert):
                        out.append(rec)
        return out
    finally:
        await c.stop()


class _BatchingProducer:
    def __init__(self, kafka_url: str, **kw) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(kafka_url),
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=8 * 1024 * 1024,
            **kw,
        )
        self._partitions: dict[str, int] = {}

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def partitions(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is None:
            parts = await self.producer.partitions_for(topic)
            n = self._partitions[topic] = len(parts)
        return n

    async def send_keyed(self, topic: str, items: Iterable[tuple[bytes, bytes]]) -> int:
        """Send (key, value) pairs, partitioned like Kafka's default partitioner; waits for the acks."""
        n_parts = await self.partitions(topic)
        by_part: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in items:
            by_part.setdefault(partition_of(key, n_parts), []).append((key, value))
        futures = []
        sent = 0
        for part, pairs in by_part.items():
            batch = self.producer.create_batch()
            for key, value in pairs:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await self.producer.send_batch(batch, topic, partition=part))
                    batch = self.producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"message of {len(value)} bytes does not fit in a batch")
                sent += 1
            futures.append(await self.producer.send_batch(batch, topic, partition=part))
        if futures:
            await asyncio.gather(*futures)
        return sent


    async def send_to(self, topic: str, partition: int, value: bytes) -> None:
        """One record into one given partition (a watermark tick: ioc.distributed.ticks); waits for the ack."""
        await (await self.producer.send(topic, value, partition=partition))


class EventProducer(_BatchingProducer):
    def __init__(self, kafka_url: str, catalog: Catalog) -> None:
        super().__init__(kafka_url, acks="all")
        self.catalog = catalog

    async def send_events(self, events: Sequence[Event]) -> int:
        by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
        for ev in events:
            by_topic.setdefault(topic_of(ev), []).append((key_of(ev, self.catalog).encode(), encode_event(ev)))
        n = 0
        for topic, items in by_topic.items():
            n += await self.send_keyed(topic, items)
        return n


class RecordProducer(_BatchingProducer):
    """Output records.  `idempotent` (IOC_KAFKA_IDEMPOTENCE=1; on in docker-compose) lets the
    broker drop a batch aiokafka re-sends after a lost acknowledgement; brokers without
    idempotent producers (the test broker) get at-least-once records, each carrying its alert
    id and transition, and the worker reads the topic back before any re-send of its own."""

    def __init__(self, kafka_url: str, *, idempotent: bool = False, request_timeout_s: float = 40.0) -> None:
        super().__init__(kafka_url, acks="all", enable_idempotence=idempotent,
                         request_timeout_ms=int(request_timeout_s * 1000))

    async def send_records(self, indicators: Sequence[Indicator], alerts: Sequence[Alert]) -> None:
        if indicators:
            await self.send_keyed(INDICATORS_TOPIC, ((record_field(r).encode(), encode(r)) for r in indicators))
        if alerts:
            await self.send_keyed(ALERTS_TOPIC, ((record_field(a).encode(), encode(a)) for a in alerts))
