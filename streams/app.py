"""The Faust app of the distributed mode (docs/architecture.md §1): `faust -A streams.app worker`
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

Outages of Redis or the broker do not stop the worker: every call is
retried with backoff while the stream waits (nothing is acked meanwhile),
`ioc_worker_dependency_up{dependency}` and `/healthz` on the metrics port
show the outage, and processing resumes by itself (docs/scaling.md,
"Outages").

Settings come from the environment only (IOC_KAFKA_URL, IOC_REDIS_URL,
IOC_PARTITIONS, IOC_CATALOG, IOC_RULES_DIR, IOC_METRICS_PORT, ...; see
ioc.distributed.settings), because Faust imports this module by name.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

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
    # Faust keeps nothing of ours on disk (state lives in Redis), but it creates its table
    # directory anyway: under the temp dir, not in whatever directory the worker was started from
    datadir=str(Path(tempfile.gettempdir()) / f"{settings.app_id}-faust"),
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
            seek=_seek,
            seek_done=_seek_done,
            log_start=_log_start,
            alerts_since=_alerts_since,
        )
        _state["worker"] = w
    return w


class _ReadOffsets(dict):
    """Faust's consumer drops a fetched message at or below the partition's read offset, which
    its fetcher moves forward as it hands messages over.  Messages fetched before a rewind and
    handed over after it would move it past the rewind and the re-read messages would be
    dropped; while a partition rewinds, its read offset stays None (deliver everything: the
    worker itself skips what it has and holds what does not follow its state)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.rewinding: set = set()

    def __missing__(self, key):
        return None

    def __setitem__(self, tp, offset) -> None:
        super().__setitem__(tp, None if tp in self.rewinding else offset)


def _install_read_offsets() -> None:
    consumer = app.consumer
    if not isinstance(consumer._read_offset, _ReadOffsets):
        consumer._read_offset = _ReadOffsets(consumer._read_offset)


async def _seek(tp, offset: int) -> None:
    """Rewind one input partition (the worker's state is behind what the group committed)."""
    from faust.types import TP

    t = TP(tp[0], tp[1])
    _install_read_offsets()
    app.consumer._read_offset.rewinding.add(t)
    await app.consumer.seek(t, offset)


def _committed(tp) -> int | None:
    """The group's committed offset (next to read) of a partition, as Faust last read or wrote it."""
    from faust.types import TP

    try:
        return app.consumer._committed_offset.get(TP(tp[0], tp[1]))
    except Exception:
        return None


def _seek_done(tp) -> None:
    from faust.types import TP

    ro = app.consumer._read_offset
    if isinstance(ro, _ReadOffsets):
        ro.rewinding.discard(TP(tp[0], tp[1]))


async def _log_start(tp) -> int:
    from faust.types import TP

    t = TP(tp[0], tp[1])
    return int((await app.consumer.earliest_offsets(t))[t])


async def _alerts_since(since_s: float):
    from ioc.distributed.kafka_io import read_alerts_since

    return await read_alerts_since(settings.kafka_url, since_s)


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
    try:
        await w.probe()
        await w.checkpoint_idle()
        await w.check_positions(_committed)
        await w.tick_idle(settings.idle_partition_s)
        await _probe_kafka(w)
    except Exception:  # never let the timer die: the next tick retries
        log.exception("housekeeping failed")
    consumer = app.consumer

    def highwater(tp):
        from faust.types import TP

        try:
            return consumer.highwater(TP(tp[0], tp[1]))
        except Exception:
            return None

    w.update_lag(highwater)


async def _probe_kafka(w) -> None:
    """Metadata request through the records producer every 2 s: broker outages show in health."""
    producer = _state.get("producer")
    import time as _time

    if producer is None or _time.monotonic() - float(_state.get("kafka_probe_at", 0.0)) < 2.0:
        return
    _state["kafka_probe_at"] = _time.monotonic()
    import asyncio

    try:
        await asyncio.wait_for(producer.producer.client.fetch_all_metadata(), timeout=3.0)  # type: ignore[attr-defined]
    except Exception as e:
        w.health.down("kafka", f"metadata: {type(e).__name__}: {e}")
        return
    w.health.up("kafka")


async def _check_redis_persistence() -> None:
    """Warn (or, with --require-redis-aof, refuse to start) when Redis keeps nothing on disk.

    Correctness does not depend on it (a partition resumes from its checkpoint's offset, and a
    rolled-back Redis means re-processing from Kafka), but without AOF a Redis restart throws
    away every checkpoint: each partition is re-processed from the start of its log, which
    takes long and, past the topics' retention, loses history (docs/scaling.md)."""
    import asyncio

    w = worker()
    delay = 0.2
    while True:
        try:
            conf = await w.store.persistence()
            break
        except Exception as e:
            w.health.down("redis", f"CONFIG GET: {type(e).__name__}: {e}")
            await asyncio.sleep(delay)
            delay = min(2 * delay, 5.0)
    w.health.up("redis")
    aof = conf.get("appendonly")
    metrics.redis_aof.set(1 if aof == "yes" else 0 if aof == "no" else -1)
    if aof == "yes":
        w.health.notes["redis_persistence"] = f"appendonly yes, appendfsync {conf.get('appendfsync', '?')}"
        return
    msg = (
        "Redis runs without appendonly (AOF): a Redis restart loses every partition checkpoint and the "
        "workers re-process each partition from the start of its Kafka log (docs/scaling.md)"
        if aof == "no"
        else "cannot read Redis' persistence settings (CONFIG GET refused); make sure it runs with appendonly yes"
    )
    w.health.notes["redis_persistence"] = msg
    if settings.require_redis_aof and aof != "yes":
        print(f"ioc worker: {msg}; refusing to start (--require-redis-aof)", file=sys.stderr, flush=True)
        logging.shutdown()
        os._exit(2)
    log.warning(msg)


async def _ensure_outputs() -> None:
    """Output topics, the records producer and the metrics endpoint, once, before the first batch."""
    if _state.get("outputs"):
        return
    _state["outputs"] = True
    from ioc.distributed.kafka_io import RecordProducer, ensure_topics

    w = worker()
    await w._retry("kafka", "create topics", lambda: ensure_topics(settings.kafka_url, settings.partitions))
    if settings.kafka_output:
        producer = RecordProducer(settings.kafka_url, idempotent=settings.kafka_idempotence)
        await w._retry("kafka", "start producer", producer.start)
        _state["producer"] = producer
        worker().producer = producer  # type: ignore[attr-defined]


async def _stop_outputs() -> None:
    w = _state.get("worker")
    if w is not None:
        await w.checkpoint_all()  # type: ignore[attr-defined]
    producer = _state.pop("producer", None)
    if producer is not None:
        await producer.stop()  # type: ignore[attr-defined]


def _serve_metrics(port: int) -> None:
    """/metrics (Prometheus) and /healthz (JSON: status ok|degraded, dependencies) in a thread."""
    import json
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import make_wsgi_app

    prom = make_wsgi_app(metrics.registry)

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            w = _state.get("worker")
            body = w.health.status() if w is not None else {"status": "starting"}
            body["assigned_partitions"] = len(w.owned) if w is not None else 0
            raw = json.dumps(body).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))])
            return [raw]
        return prom(environ, start_response)

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = make_server("", port, wsgi, Server, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, name="ioc-metrics", daemon=True).start()


def main() -> None:
    """Start a worker for this app in this process (what `ioc worker` calls)."""
    from faust.worker import Worker

    class IocWorker(Worker):
        async def on_first_start(self) -> None:
            if settings.metrics_port:
                _serve_metrics(settings.metrics_port)
            _install_read_offsets()  # before the fetcher starts: it binds the dict's methods
            await _check_redis_persistence()
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
