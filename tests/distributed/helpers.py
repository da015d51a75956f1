"""Reference results (the embedded core in-process) and readers of the distributed outputs."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from pathlib import Path

from ioc.catalog import Catalog
from ioc.distributed.engine import engine_factory
from ioc.distributed.partitioning import partition_of, key_of, topic_of
from ioc.events import parse_lines
from streams.pipeline import Pipeline

# rules whose transitions do not depend on where batches are cut, on this input
ROBUST_RULES = {"rain_3h_intense", "rain_24h_very_heavy", "rain_level_station", "queue_long"}
# workers and the embedded reference load the built-in pack plus rules/ (a per-gauge `levels` rule)
RULES_DIR = Path(__file__).parent / "rules"


def embedded(catalog: Catalog, jsonl: bytes, batch: int = 200):
    """Final indicator value per key and every alert, from streams.pipeline.Pipeline in-process."""
    events, _ = parse_lines(jsonl.splitlines())
    make = engine_factory(RULES_DIR)
    p = Pipeline(catalog, make(catalog) if make else None)
    latest: dict[tuple, dict] = {}
    alerts: list[dict] = []
    for rec in p.flush():
        latest[rec.key] = json.loads(_enc(rec))
    for i in range(0, len(events), batch):
        r = p.process(events[i : i + batch], None)
        for rec in r.indicators:
            latest[rec.key] = json.loads(_enc(rec))
        alerts.extend(json.loads(_enc(a)) for a in r.alerts)
    return latest, alerts


def _enc(rec) -> bytes:
    from ioc.records import encode

    return encode(rec)


def final_watermarks(catalog: Catalog, jsonl: bytes, partitions: int) -> dict[str, float]:
    """'feed:partition' → the largest event time in that input partition."""
    events, _ = parse_lines(jsonl.splitlines())
    feed = {"ioc.rain": "rain", "ioc.dossiers": "dossier", "ioc.cameras": "camera"}
    out: dict[str, float] = {}
    for ev in events:
        k = f"{feed[topic_of(ev)]}:{partition_of(key_of(ev, catalog), partitions)}"
        out[k] = max(out.get(k, float("-inf")), ev.t)
    return out


def indicator_values(records: list[dict]) -> dict[tuple, object]:
    return {(r["name"], r["window"], r["entity"]): r["value"] for r in records if r.get("type", "indicator") == "indicator"}


def transitions(alerts: list[dict], rules: set[str] | None = None) -> collections.Counter:
    return collections.Counter(
        (a["rule"], a["entity"], a["state"], a["severity"]) for a in alerts if rules is None or a["rule"] in rules
    )


def final_alert_states(alerts: list[dict]) -> dict[tuple, str]:
    """(rule, entity) → state of its newest alert record (by event time, then resolved last)."""
    out: dict[tuple, tuple] = {}
    for a in alerts:
        k = (a["rule"], a["entity"])
        rank = (a["ts"], a["state"] == "resolved")
        if k not in out or rank >= out[k][0]:
            out[k] = (rank, a["state"])
    return {k: v[1] for k, v in out.items()}


def wait_until_processed(cluster, workers, watermarks: dict[str, float], timeout_s: float = 60.0) -> None:
    """Every input partition's watermark in Redis reached its final value and no live worker lags."""
    r = cluster.redis()
    key = f"{cluster.prefix}:watermarks"
    deadline = time.monotonic() + timeout_s
    seen: dict = {}
    while time.monotonic() < deadline:
        seen = {k.decode(): float(v) for k, v in r.hgetall(key).items()}
        if all(seen.get(k, float("-inf")) >= w for k, w in watermarks.items()):
            live = [w for w in workers if w.alive()]
            try:
                lag = sum(w.metric("ioc_worker_consumer_lag") for w in live)
                owned = sum(w.metric("ioc_worker_assigned_partitions") for w in live)
            except Exception:
                lag, owned = 1, 0
            if lag == 0 and owned == 12:
                time.sleep(1.5)  # one more lag sample: nothing left behind the watermark
                if sum(w.metric("ioc_worker_consumer_lag") for w in live) == 0:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"not processed in {timeout_s}s; watermarks {seen} want {watermarks}\n{cluster.logs()}")


def read_topic(kafka_url: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a topic, all partitions, from the beginning to the current end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ioc.distributed.settings import bootstrap_servers

    async def run():
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(kafka_url), enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            parts = c.partitions_for_topic(topic) or set()
            if not parts:
                await c._client.force_metadata_update()
                parts = c.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            end = await c.end_offsets(tps)
            out = []
            pos = {tp: 0 for tp in tps}
            deadline = time.monotonic() + 20
            while any(pos[tp] < end[tp] for tp in tps) and time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=500)
                for tp, msgs in batch.items():
                    for m in msgs:
                        out.append((m.key, m.value))
                        pos[tp] = m.offset + 1
            return out
        finally:
            await c.stop()

    return asyncio.run(run())
