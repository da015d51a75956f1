"""Outages under a running `ioc worker` (real tansu broker, real redis-server, workers as
processes): Redis restarts, Redis losing its data, a broker outage.  Each run ends compared
with the embedded streams.pipeline.Pipeline on the same input: same final indicators, and
ioc.alerts holds every transition (escalations included) exactly once."""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import httpx
import pytest

from ioc.catalog import demo_catalog
from tests.distributed.data import make_events, to_jsonl
from tests.distributed.helpers import (
    ROBUST_RULES,
    embedded,
    final_watermarks,
    indicator_values,
    read_topic,
    transitions,
    wait_until_processed,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4
SLOW = ("--batch-size", "20", "--checkpoint-interval", "0.3")  # mid-stream for a few seconds


@pytest.fixture(scope="module")
def catalog():
    return demo_catalog()


def health(worker) -> dict:
    return httpx.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=3).json()


def dep_up(worker, dep: str) -> float:
    return worker.metric("ioc_worker_dependency_up", f'dependency="{dep}"')


def wait_for(cond, timeout_s: float, what: str, logs=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            v = cond()
        except Exception:
            v = None
        if v:
            return v
        time.sleep(0.05)
    raise TimeoutError(f"{what} not within {timeout_s} s\n{logs()}")


def events_done(worker) -> float:
    try:
        return worker.metric("ioc_worker_events_total")
    except Exception:
        return 0.0


def transition_key(a: dict) -> tuple:
    return (a["id"], a["state"], a.get("started"), a["severity"] if a["state"] == "firing" else "",
            (a.get("labels") or {}).get("level", "") if a["state"] == "firing" else "")


def assert_like_embedded(cluster, catalog, jsonl: bytes, escalations: bool = False,
                         client_resends: bool = False) -> None:
    """`client_resends`: the broker's connections were cut mid-request, so the Kafka client may
    have re-sent a batch the broker had written; the test broker has no idempotent producers
    to drop it (docs/scaling.md), so there a transition may appear twice on ioc.alerts, as the
    very same record.  Everything else stays exact."""
    ref_latest, ref_alerts = embedded(catalog, jsonl)
    r = cluster.redis()
    latest = [json.loads(v) for v in r.hvals(f"{cluster.prefix}:latest")]
    got = indicator_values([x for x in latest if x["type"] == "indicator"])
    want = {k: v["value"] for k, v in ref_latest.items()}
    assert set(got) == set(want), (len(set(want) - set(got)), len(set(got) - set(want)))
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, f"{len(wrong)} of {len(want)} indicator windows wrong, e.g. {list(wrong.items())[:5]}"
    topic = [json.loads(v) for _, v in read_topic(cluster.kafka, "ioc.alerts")]
    dups = {k: n for k, n in collections.Counter(map(transition_key, topic)).items() if n > 1}
    if client_resends:
        copies: dict = {}
        for a in topic:
            copies.setdefault(transition_key(a), []).append(a)
        assert all(all(c == v[0] for c in v) for v in copies.values()), "a repeated transition differs"
        topic = [v[0] for v in copies.values()]
    else:
        assert not dups, f"transitions produced twice to ioc.alerts: {dups}"
    assert transitions(topic, ROBUST_RULES) == transitions(ref_alerts, ROBUST_RULES)
    if escalations:
        esc = [a for a in topic if a["rule"] == "rain_level_station" and a["state"] == "firing"
               and a.get("labels", {}).get("level") == "2"]
        want_esc = [a for a in ref_alerts if a["rule"] == "rain_level_station" and a["state"] == "firing"
                    and a.get("labels", {}).get("level") == "2"]
        assert want_esc, "the input escalates rain_level_station to level 2"
        assert len(esc) == len({a["entity"] for a in want_esc}), (len(esc), len(want_esc))
        # each escalated alert: the level-1 firing and the level-2 escalation, same id
        for a in esc:
            same = [b for b in topic if b["id"] == a["id"] and b["state"] == "firing"]
            assert sorted(b["labels"]["level"] for b in same) == ["1", "2"], same


def input_file(catalog, tmp_path, **kw) -> tuple[list, bytes, Path]:
    """The test stream: its events, its JSONL bytes and the file `ioc ingest` reads."""
    events = make_events(catalog, steps=120, **kw)
    jsonl = to_jsonl(events)
    path = tmp_path / "input.jsonl"
    path.write_bytes(jsonl)
    return events, jsonl, path


def quarter_way(cluster, path: Path, events: list):
    """One slow worker, the stream ingested, and a quarter of it processed."""
    w = cluster.worker(*SLOW)
    assert cluster.ingest(path).returncode == 0
    wait_for(lambda: events_done(w) >= 0.25 * len(events), 60, "a quarter processed", cluster.logs)
    return w


def test_redis_restart_under_running_worker(cluster_on, private_redis, catalog, tmp_path):
    """Redis (AOF, fsync always) is SIGKILLed mid-stream and comes back 3 s later: the worker
    stays up, shows the outage, resumes by itself, and ends like the embedded core."""
    server = private_redis("--appendonly", "yes", "--appendfsync", "always")
    cluster = cluster_on(server.url)
    events, jsonl, path = input_file(catalog, tmp_path, storm_mm=10.0)  # storm escalates rain_level_station 1 → 2
    w = quarter_way(cluster, path, events)
    assert health(w)["status"] == "ok" and dep_up(w, "redis") == 1
    wait_for(lambda: w.metric("ioc_worker_redis_aof_enabled") == 1, 10, "persistence checked", cluster.logs)

    server.crash()
    t_down = time.monotonic()
    wait_for(lambda: dep_up(w, "redis") == 0, 10, "redis shown down", cluster.logs)
    detected = time.monotonic() - t_down
    h = health(w)
    assert h["status"] == "degraded" and h["dependencies"]["redis"]["up"] is False, h
    stalled = events_done(w)
    time.sleep(3.0)
    assert w.alive(), w.log()
    assert events_done(w) - stalled <= 2 * 20 * 3  # at most the batches in flight

    server.start()
    t_up = time.monotonic()
    wait_for(lambda: dep_up(w, "redis") == 1, 20, "redis shown up again", cluster.logs)
    wait_for(lambda: events_done(w) > stalled + 40, 20, "processing resumed", cluster.logs)
    resumed = time.monotonic() - t_up
    assert health(w)["status"] == "ok"
    wait_until_processed(cluster, [w], final_watermarks(catalog, jsonl, PARTITIONS), timeout_s=60)
    assert w.alive() and w.metric("ioc_worker_dependency_outages_total", 'dependency="redis"') >= 1
    assert events_done(w) == len(events)  # nothing processed twice, nothing skipped
    assert_like_embedded(cluster, catalog, jsonl, escalations=True)
    print(f"redis outage: shown down after {detected:.2f} s, processing resumed {resumed:.2f} s after Redis started")


def test_redis_losing_its_data_mid_stream(cluster_on, private_redis, catalog, tmp_path):
    """A Redis without persistence restarts empty under a running worker (it re-writes its
    state from memory), then later the worker is SIGKILLed and Redis flushed (checkpoints gone,
    Kafka's committed offsets ahead): the replacement rewinds every partition to the start of
    its log instead of skipping, and no indicator window ends wrong."""
    server = private_redis("--appendonly", "no")
    cluster = cluster_on(server.url)
    events, jsonl, path = input_file(catalog, tmp_path)
    a = cluster.worker(*SLOW)
    wait_for(lambda: a.metric("ioc_worker_redis_aof_enabled") == 0, 10, "persistence checked", cluster.logs)
    assert "appendonly" in health(a)["notes"]["redis_persistence"]
    assert cluster.ingest(path).returncode == 0
    wait_for(lambda: events_done(a) >= 0.25 * len(events), 60, "a quarter processed", cluster.logs)

    server.crash()  # no AOF, no RDB: it comes back empty
    server.start()
    wait_for(lambda: a.metric("ioc_worker_redis_state_lost_total") >= 1, 20, "state re-written", cluster.logs)
    wait_for(lambda: events_done(a) >= 0.6 * len(events), 60, "60 % processed", cluster.logs)
    assert a.alive()
    a.kill()
    cluster.redis().flushall()  # checkpoints gone while Kafka's committed offsets are ahead

    b = cluster.worker(*SLOW)
    wait_until_processed(cluster, [b], final_watermarks(catalog, jsonl, PARTITIONS), timeout_s=90)
    assert b.metric("ioc_worker_rewinds_total") >= 1
    assert b.metric("ioc_worker_events_total") == len(events)  # every partition re-processed from offset 0
    assert_like_embedded(cluster, catalog, jsonl)


def test_broker_outage_under_running_worker(proxied_broker, cluster_on, redis_base_url, catalog, tmp_path):
    """Every broker connection dropped and refused for 4 s (what a broker restart looks like to
    its clients; the test broker keeps topics in memory, so a real restart would empty them):
    the worker stays up, shows kafka down, resumes, and ends like the embedded core."""
    kafka, proxy = proxied_broker
    cluster = cluster_on(redis_base_url, kafka)
    events, jsonl, path = input_file(catalog, tmp_path, storm_mm=10.0)
    w = quarter_way(cluster, path, events)
    proxy.cut()
    t_down = time.monotonic()
    try:
        wait_for(lambda: dep_up(w, "kafka") == 0, 10, "kafka shown down", cluster.logs)
        detected = time.monotonic() - t_down
        assert health(w)["status"] == "degraded"
        time.sleep(max(0.0, 4.0 - (time.monotonic() - t_down)))
        assert w.alive(), w.log()
    finally:
        proxy.restore()
    t_up = time.monotonic()
    wait_for(lambda: dep_up(w, "kafka") == 1, 30, "kafka shown up again", cluster.logs)
    before = events_done(w)
    wait_for(lambda: events_done(w) > before or events_done(w) == len(events), 30, "processing resumed", cluster.logs)
    resumed = time.monotonic() - t_up
    wait_until_processed(cluster, [w], final_watermarks(catalog, jsonl, PARTITIONS), timeout_s=90)
    assert w.alive()
    assert_like_embedded(cluster, catalog, jsonl, escalations=True, client_resends=True)
    print(f"broker outage: shown down after {detected:.2f} s, processing resumed {resumed:.2f} s after it came back")
