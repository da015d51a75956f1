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
from aiokafka.errors import TopicAlreadyExistsError

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
    def __init__(self, kafka_url: str) -> None:
        super().__init__(kafka_url, acks="all")

    async def send_records(self, indicators: Sequence[Indicator], alerts: Sequence[Alert]) -> None:
        if indicators:
            await self.send_keyed(INDICATORS_TOPIC, ((record_field(r).encode(), encode(r)) for r in indicators))
        if alerts:
            await self.send_keyed(ALERTS_TOPIC, ((record_field(a).encode(), encode(a)) for a in alerts))
