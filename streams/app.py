"""The Faust app of the distributed mode (DESIGN §1): `faust -A streams.app worker`
or `ioc worker` (which sets the IOC_* environment and starts the same app).

Agents consume ioc.rain, ioc.dossiers and ioc.cameras (raw JSON values,
keyed by station, root unit and site; see ioc.distributed.partitioning) in
batches with `stream.take_events(n, within=...)` and hand them to one
`streams.pipeline.Pipeline` per assigned partition
(ioc.distributed.worker.PartitionWorker): the embedded core's event-time
windows and alert engine, not Faust's windowed tables.  State is
recovered from per-partition checkpoints in Redis, and Faust may commit an
offset only once a checkpoint covers it (held acks), so a SIGKILL loses
nothing and counts nothing twice.  Outputs go to ioc.indicators,
ioc.alerts and Redis (latest hash + pub/sub deltas).

Settings come from the environment only (IOC_KAFKA_URL, IOC_REDIS_URL,
IOC_PARTITIONS, IOC_CATALOG, IOC_RULES_DIR, IOC_METRICS_PORT, ...; see
ioc.distributed.settings), because Faust imports this module by name.
"""

from __future__ import annotations

import logging
import os
import sys

import faust

from ioc.metrics import WorkerMetrics
from ioc.distributed.partitioning import INPUT_TOPICS
from ioc.distributed.settings import faust_broker, load_settings

log = logging.getLogger("ioc.app")

settings = load_settings()

app = faust.App(
    settings.app_id,
    broker=faust_broker(settings.kafka_url),
    store="memory://",
    value_serializer="raw",
    key_serializer="raw",
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    broker_rebalance_timeout=3.0,
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    broker_commit_interval=1.0,
    consumer_auto_offset_reset="earliest",
    stream_wait_empty=False,  # held acks are released by checkpoints, not awaited at shutdown
    web_enabled=False,  # worker metrics are served by prometheus_client on --metrics-port
    producer_linger=0.005,
    stream_buffer_maxsize=max(4096, 2 * settings.batch_size),
    broker_max_poll_records=max(500, settings.batch_size),
)

topics = {
    name: app.topic(name, key_type=bytes, value_type=bytes, partitions=settings.partitions, value_serializer="raw", key_serializer="raw")
    for name in INPUT_TOPICS
}

metrics = WorkerMetrics()
_state: dict[str, object] = {}


def worker():
    """The PartitionWorker of this process (created on first use, inside the running loop)."""
    w = _state.get("worker")
    if w is None:
        from ioc.catalog import demo_catalog, load_catalog
        from ioc.distributed.redis_store import RedisStore
        from ioc.distributed.worker import PartitionWorker
        from ioc.distributed.engine import engine_factory

        catalog = load_catalog(settings.catalog_path) if settings.catalog_path else demo_catalog()
        store = RedisStore(settings.redis_url, settings.redis_prefix)
        w = PartitionWorker(
            catalog,
            store,
            metrics,
            partitions=settings.partitions,
            engine_factory=engine_factory(settings.rules_dir),
            producer=_state.get("producer"),
            release=_release,
            checkpoint_interval_s=settings.checkpoint_interval_s,
            checkpoint_batches=settings.checkpoint_batches,
            live_clock=settings.live_clock,
            cut_every=settings.cut_every,
        )
        _state["worker"] = w
    return w


def _hold(message) -> None:
    message.incref()  # take_events() acks after the batch: this keeps the offset uncommitted


def _is_assigned(tp) -> bool:
    from faust.types import TP

    try:
        return TP(tp[0], tp[1]) in app.consumer.assignment()
    except Exception:
        return False


def _release(message) -> None:
    message.message.ack(app.consumer)


@app.on_partitions_assigned.connect
async def on_assigned(sender, assigned, **kwargs) -> None:
    await _ensure_outputs()
    await worker().assign([(tp.topic, tp.partition) for tp in assigned])


@app.on_partitions_revoked.connect
async def on_revoked(sender, revoked, **kwargs) -> None:
    await worker().revoke([(tp.topic, tp.partition) for tp in revoked])


class _Msg:
    __slots__ = ("topic", "partition", "offset", "value", "message")

    def __init__(self, message) -> None:
        self.message = message
        self.topic = message.topic
        self.partition = message.partition
        self.offset = message.offset
        self.value = message.value


async def _consume(stream) -> None:
    from ioc.distributed.redis_store import Fenced

    async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        msgs = [_Msg(ev.message) for ev in events]
        try:
            await worker().handle(msgs, hold=lambda m: _hold(m.message), is_assigned=_is_assigned)
        except Fenced:
            continue
        except Exception:
            # processed but maybe not published: the only safe state is the checkpoint
            log.exception("batch failed; exiting so the partitions are recovered from their checkpoints")
            logging.shutdown()
            os._exit(3)


@app.agent(topics["ioc.rain"], name="ioc-rain")
async def rain_agent(stream) -> None:
    await _consume(stream)


@app.agent(topics["ioc.dossiers"], name="ioc-dossiers")
async def dossier_agent(stream) -> None:
    await _consume(stream)


@app.agent(topics["ioc.cameras"], name="ioc-cameras")
async def camera_agent(stream) -> None:
    await _consume(stream)


@app.timer(interval=1.0)
async def housekeeping() -> None:
    w = _state.get("worker")
    if w is None:
        return
    await w.checkpoint_idle()
    consumer = app.consumer

    def highwater(tp):
        from faust.types import TP

        try:
            return consumer.highwater(TP(tp[0], tp[1]))
        except Exception:
            return None

    w.update_lag(highwater)


async def _ensure_outputs() -> None:
    """Output topics, the records producer and the metrics endpoint, once, before the first batch."""
    if _state.get("outputs"):
        return
    _state["outputs"] = True
    from ioc.distributed.kafka_io import RecordProducer, ensure_topics

    await ensure_topics(settings.kafka_url, settings.partitions)
    if settings.kafka_output:
        producer = RecordProducer(settings.kafka_url)
        await producer.start()
        _state["producer"] = producer
        worker().producer = producer  # type: ignore[attr-defined]


async def _stop_outputs() -> None:
    w = _state.get("worker")
    if w is not None:
        await w.checkpoint_all()  # type: ignore[attr-defined]
    producer = _state.pop("producer", None)
    if producer is not None:
        await producer.stop()  # type: ignore[attr-defined]


def main() -> None:
    """Start a worker for this app in this process (what `ioc worker` calls)."""
    from faust.worker import Worker

    class IocWorker(Worker):
        async def on_first_start(self) -> None:
            if settings.metrics_port:
                from prometheus_client import start_http_server

                start_http_server(settings.metrics_port, registry=metrics.registry)
            await super().on_first_start()

        async def on_stop(self) -> None:
            try:
                await _stop_outputs()
            finally:
                await super().on_stop()

    print(
        f"ioc worker {settings.app_id}: kafka {settings.kafka_url}, redis prefix {settings.redis_prefix!r}, "
        f"{settings.partitions} partitions, metrics :{settings.metrics_port}",
        file=sys.stderr,
        flush=True,
    )
    IocWorker(app, loglevel=os.environ.get("IOC_LOG_LEVEL", "warning"), quiet=True).execute_from_commandline()
