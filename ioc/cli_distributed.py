"""Distributed-mode subcommands of `ioc` (registered by ioc.cli):

  ioc worker    a Faust worker of streams.app (scale by starting more)
  ioc api       web app, WebSockets and REST fed from Redis (any number of replicas)
  ioc ingest    publish JSONL event files to the input topics
  ioc simulate  run the seeded demo simulators and publish their events

Kafka and Redis come from --kafka/--redis or IOC_KAFKA_URL/IOC_REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from ioc import cli_types as t


def _common(p: argparse.ArgumentParser, redis: bool = True) -> None:
    p.add_argument("--kafka", dest="kafka_url", default=None, help="Kafka bootstrap URL, e.g. kafka://127.0.0.1:9092 (default $IOC_KAFKA_URL)")
    if redis:
        p.add_argument("--redis", dest="redis_url", default=None, help="Redis URL (default $IOC_REDIS_URL or redis://127.0.0.1:6379/0)")
        p.add_argument("--redis-prefix", default=None, help="prefix of every Redis key (default $IOC_REDIS_PREFIX or 'ioc')")
    p.add_argument("--catalog", dest="catalog_path", type=t.readable_file, default=None, help="catalog YAML (default $IOC_CATALOG or the demo province)")
    p.add_argument("--partitions", type=t.positive_int, default=None, help="partitions of the topics when they are created (default $IOC_PARTITIONS or 4)")


def _settings(args: argparse.Namespace):
    from ioc.config import input_paths
    from ioc.distributed.settings import ENV, _conv, load_settings
    from ioc.errors import UserError

    keys = (
        "kafka_url", "redis_url", "redis_prefix", "catalog_path", "rules_dir", "partitions", "app_id",
        "metrics_port", "batch_size", "batch_within_s", "checkpoint_interval_s", "checkpoint_batches",
        "require_redis_aof", "idle_partition_s",
    )
    flags = {k: getattr(args, k, None) for k in keys}
    for field, var in ENV.items():  # a bad IOC_* value names the variable, before anything starts
        raw = os.environ.get(var)
        if flags.get(field) is not None or not raw:
            continue
        try:
            _conv(field, raw)
        except ValueError:
            raise UserError(f"{var}={raw!r}: expected a number (fix it or unset {var})") from None
    flags["catalog_path"], rules_dir = input_paths(flags["catalog_path"], flags["rules_dir"])
    if hasattr(args, "rules_dir"):  # only the worker evaluates rules
        flags["rules_dir"] = rules_dir
    return load_settings(**flags)


def _catalog(path: Path | None):
    from ioc.catalog import demo_catalog, load_catalog

    return load_catalog(path) if path else demo_catalog()


# -- worker -----------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    s = _settings(args)
    if args.no_kafka_output:
        from dataclasses import replace

        s = replace(s, kafka_output=False)
    os.environ.update(s.to_env())
    os.environ.setdefault("IOC_LOG_LEVEL", args.log_level)
    _catalog(s.catalog_path)  # fail early, with a clear message, on a bad catalog or rules
    from ioc.wiring import build_rules

    build_rules(s.rules_dir)
    from streams.app import main

    main()
    return 0


# -- api ----------------------------------------------------------------------
def cmd_api(args: argparse.Namespace) -> int:
    from ioc.api import create_app
    from ioc.serve import run_loop, server
    from ioc.distributed.backend import RedisBackend

    s = _settings(args)
    catalog = _catalog(s.catalog_path)
    listener = t.bind_listener(args.host, args.port)  # a port in use: one line, before anything is printed
    backend = RedisBackend(s, catalog)
    from ioc.alerts_api import install_token_redaction
    from ioc.auth.setup import redis_authenticator
    from ioc.config import build_config

    config = build_config()  # IOC_*_TOKEN, IOC_METRICS_TOKEN, IOC_INGEST_RATE_PER_S / _BURST
    # principals in Redis: every replica sees the same ones (`ioc users ... --redis URL`)
    auth = redis_authenticator(s.redis_url, s.redis_prefix, config.env_tokens(), backend.metrics)
    install_token_redaction()
    app = create_app(backend, auth=auth, metrics_token=config.metrics_token.reveal() if config.metrics_token else None,
                     ingest_rate_per_s=config.ingest_rate_per_s, ingest_burst=config.ingest_burst)

    async def serve() -> None:
        await backend.start()
        url = f"http://{args.host}:{args.port}"
        print(f"IOC api (Redis-fed): wall {url}/  metrics {url}/metrics  redis prefix {s.redis_prefix!r}", flush=True)
        try:
            await server(app, args.host, args.port, args.log_level).serve(sockets=[listener])
        finally:
            await backend.stop()
            auth.close()

    run_loop(serve())
    return 0


# -- ingest -------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from ioc.distributed.kafka_io import EventProducer, ensure_topics
    from ioc.replay import InputFiles

    s = _settings(args)
    catalog = _catalog(s.catalog_path)
    inputs = InputFiles(args.files, "ingest")
    if not inputs.check():
        return 2

    async def run() -> int:
        await ensure_topics(s.kafka_url, s.partitions)
        producer = EventProducer(s.kafka_url, catalog)
        await producer.start()
        sent = bad = 0
        try:
            for batch in inputs.batches(args.chunk):  # positions are 1-based line numbers
                for r in batch.rejections:
                    print(f"{batch.source}:{r.position}: {r.reason}: {r.detail}", file=sys.stderr)
                bad += len(batch.rejections)
                sent += await producer.send_events(batch.events)
        finally:
            await producer.stop()
        print(f"published {sent} events, skipped {bad} invalid lines", file=sys.stderr)
        return inputs.finish() or (0 if sent or not bad else 1)

    return asyncio.run(run())


# -- simulate -----------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    import time

    from ioc.distributed.kafka_io import EventProducer, ensure_topics
    from sensors.simulate import advance_all, demo_simulators

    s = _settings(args)
    catalog = _catalog(s.catalog_path)

    async def run() -> int:
        await ensure_topics(s.kafka_url, s.partitions)
        producer = EventProducer(s.kafka_url, catalog)
        await producer.start()
        now = time.time()
        start = (now - args.backfill_h * 3600.0) // 300 * 300
        sims = demo_simulators(catalog, seed=args.seed, start=start)
        until, total = start, 0
        try:
            while until < now:  # catch up at once, so the wall has history
                until = min(until + 1800.0, now)
                total += await producer.send_events(advance_all(sims, until))
            print(f"simulate: backfilled {total} events; running at {args.speed:g}x", file=sys.stderr, flush=True)
            last = time.monotonic()
            t_end = None if args.duration_s is None else time.monotonic() + args.duration_s
            while t_end is None or time.monotonic() < t_end:
                await asyncio.sleep(args.tick_s)
                mono = time.monotonic()
                until += (mono - last) * args.speed
                last = mono
                events = advance_all(sims, until)
                if events:
                    await producer.send_events(events)
        finally:
            await producer.stop()
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


def add_commands(sub) -> None:
    w = sub.add_parser(
        "worker",
        help="start a Faust worker of the distributed mode (scale out by starting more)",
        description="Consume ioc.rain/ioc.dossiers/ioc.cameras, run the core per partition, "
        "publish to ioc.indicators/ioc.alerts and Redis. Same as `faust -A streams.app worker` with IOC_* set.",
    )
    _common(w)
    w.add_argument("--rules", dest="rules_dir", type=t.rules_path, default=None, help="directory of alert rule YAML files")
    w.add_argument("--app-id", default=None, help="Faust app id = Kafka consumer group (default $IOC_APP_ID or ioc-monitor)")
    w.add_argument("--metrics-port", type=t.tcp_port_or_off, default=None, help="Prometheus /metrics port of this worker (default 9108; 0 = off)")
    w.add_argument("--batch-size", type=t.positive_int, default=None, help="events per take() batch (default 2000)")
    w.add_argument("--batch-within", dest="batch_within_s", type=t.positive_float, default=None, help="max seconds to fill a batch (default 0.2)")
    w.add_argument("--checkpoint-interval", dest="checkpoint_interval_s", type=t.positive_float, default=None, help="seconds between partition checkpoints (default 2)")
    w.add_argument("--checkpoint-batches", type=t.positive_int, default=None, help="batches between partition checkpoints (default 50)")
    w.add_argument("--idle-partition", dest="idle_partition_s", type=t.non_negative_float, default=None,
                   help="seconds a partition may be silent before it gets the feed's watermark from the others "
                        "(default $IOC_IDLE_PARTITION_S or 10; 0 = off)")
    w.add_argument("--require-redis-aof", action="store_const", const=True, default=None,
                   help="refuse to start unless Redis runs with appendonly yes (default $IOC_REQUIRE_REDIS_AOF; "
                        "without it the worker warns and exports ioc_worker_redis_aof_enabled 0)")
    w.add_argument("--no-kafka-output", action="store_true", help="publish records to Redis only, not to ioc.indicators/ioc.alerts")
    w.add_argument("--log-level", default="warning", choices=t.LOG_LEVELS[:-1], help="log level (default warning)")
    w.set_defaults(func=cmd_worker)

    a = sub.add_parser(
        "api",
        help="serve the wall, WebSockets and REST from Redis (run any number of replicas)",
        description="Snapshot from the Redis hash, live deltas from Redis pub/sub; POST /api/ingest validates and produces to Kafka.",
    )
    _common(a)
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    a.add_argument("--port", type=t.tcp_port, default=8000, help="port to listen on (default 8000)")
    a.add_argument("--log-level", default="warning", choices=t.LOG_LEVELS, help="uvicorn log level (default warning)")
    a.set_defaults(func=cmd_api)

    i = sub.add_parser(
        "ingest",
        help="publish JSONL event files to the input topics",
        description="Validate each line; invalid lines are reported on stderr with their line numbers and skipped.",
    )
    i.add_argument("files", nargs="+", type=Path, help="JSONL files of input events")
    _common(i, redis=False)
    i.add_argument("--chunk", type=t.positive_int, default=10000, help="lines per produced batch (default 10000)")
    i.set_defaults(func=cmd_ingest)

    m = sub.add_parser(
        "simulate",
        help="run the seeded demo simulators and publish their events to Kafka",
        description="A feed for the distributed demo: backfills some hours at once, then runs at --speed x real time.",
    )
    _common(m, redis=False)
    m.add_argument("--seed", type=int, default=42, help="simulator seed (default 42)")
    m.add_argument("--speed", type=t.positive_float, default=60.0, help="simulated seconds per real second (default 60)")
    m.add_argument("--backfill-h", type=t.non_negative_float, default=12.0, help="hours of history published at start (default 12)")
    m.add_argument("--tick", dest="tick_s", type=t.positive_float, default=0.5, help="real seconds between batches (default 0.5)")
    m.add_argument("--duration", dest="duration_s", type=t.non_negative_float, default=None, help="stop after this many real seconds (default: run forever)")
    m.set_defaults(func=cmd_simulate)
