"""Distributed mode end to end: the tansu broker, real Redis, `ioc worker`
(Faust) and `ioc api` as subprocesses, compared with the embedded core run
in-process on the same input."""

from __future__ import annotations

import collections
import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from ioc.catalog import demo_catalog
from tests.conftest import AS_INGEST, AS_VIEWER
from tests.distributed.data import make_events, to_jsonl
from tests.distributed.helpers import (
    ROBUST_RULES,
    embedded,
    final_alert_states,
    final_watermarks,
    indicator_values,
    read_topic,
    transitions,
    wait_until_processed,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture(scope="module")
def catalog():
    return demo_catalog()


def _assert_same(catalog, jsonl: bytes, indicators: list[dict], alerts: list[dict], pruned: bool = False) -> None:
    """pruned: alerts come from a hub snapshot, which keeps only the newest resolved alerts (ioc.hub.RESOLVED_KEPT)."""
    ref_latest, ref_alerts = embedded(catalog, jsonl)
    got = indicator_values(indicators)
    want = {k: v["value"] for k, v in ref_latest.items()}
    assert set(got) == set(want), (set(want) - set(got), set(got) - set(want))
    diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not diff, f"{len(diff)} indicators differ, e.g. {list(diff.items())[:5]}"
    # every (rule, entity) alert ends in the same state (latest record per alert id)
    assert transitions(ref_alerts, ROBUST_RULES), "the input fires alerts"
    got_final, want_final = final_alert_states(alerts), final_alert_states(ref_alerts)
    got_robust = {k: v for k, v in got_final.items() if k[0] in ROBUST_RULES}
    want_robust = {k: v for k, v in want_final.items() if k[0] in ROBUST_RULES}
    if pruned:
        assert got_robust.items() <= want_robust.items()
    else:
        assert got_robust == want_robust
    # what is firing at the end does not depend on batching, for every rule
    assert {k for k, v in got_final.items() if v == "firing"} == {k for k, v in want_final.items() if v == "firing"}


def _assert_transitions(catalog, jsonl: bytes, topic_alerts: list[dict]) -> None:
    """ioc.alerts holds every transition of the batch-independent rules exactly once."""
    _no_duplicate_transitions(topic_alerts)
    assert transitions(topic_alerts, ROBUST_RULES) == transitions(embedded(catalog, jsonl)[1], ROBUST_RULES)


def _alerts_in_redis(cluster) -> list[dict]:
    r = cluster.redis()
    return [json.loads(v) for k, v in r.hgetall(f"{cluster.prefix}:latest").items() if k.startswith(b"alert|")]


def _topic_alerts(cluster) -> list[dict]:
    return [json.loads(v) for _, v in read_topic(cluster.kafka, "ioc.alerts")]


def _no_duplicate_transitions(alerts: list[dict]) -> None:
    from tests.distributed.test_outages import transition_key

    c = collections.Counter(map(transition_key, alerts))  # an escalation is a transition of its own
    dups = {k: n for k, n in c.items() if n > 1}
    assert not dups, f"duplicated alert transitions: {dups}"


def test_same_results_as_embedded_via_api_and_websocket(cluster, catalog, tmp_path):
    events = make_events(catalog)
    jsonl = to_jsonl(events)
    path = tmp_path / "input.jsonl"
    lines = jsonl.splitlines()
    path.write_bytes(b"\n".join([*lines[:10], b'{"kind": "rain", "station": "VP-001"', *lines[10:]]) + b"\n")

    worker = cluster.worker()
    api = cluster.api()
    base = f"http://127.0.0.1:{api.port}"
    with connect(f"ws://127.0.0.1:{api.port}/ws", open_timeout=5, additional_headers=AS_VIEWER) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "snapshot"
        state = {_k(r): r for r in first["records"]}

        res = cluster.ingest(path)
        assert res.returncode == 0, res.stderr
        assert f"{path}:11: " in res.stderr and "published 6034 events, skipped 1 invalid lines" in res.stderr

        wait_until_processed(cluster, [worker], final_watermarks(catalog, jsonl, PARTITIONS))
        # the client converges on the replica's snapshot: read deltas until it has it
        target = {_k(r): r for part in ("indicators", "alerts") for r in httpx.get(base + "/api/snapshot", headers=AS_VIEWER, timeout=10).json()[part]}
        seqs = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and state != target:
            try:
                msg = json.loads(ws.recv(timeout=1.0))
            except TimeoutError:
                continue
            if msg["type"] == "delta":
                seqs.append(msg["seq"])
            if msg["type"] in ("delta", "snapshot"):
                if msg["type"] == "snapshot":
                    state = {}
                for r in msg["records"]:
                    state[_k(r)] = r
        assert seqs and seqs == sorted(seqs)

    ws_records = list(state.values())
    _assert_same(catalog, jsonl, [r for r in ws_records if r["type"] == "indicator"], [r for r in ws_records if r["type"] == "alert"], pruned=True)

    snap = httpx.get(base + "/api/snapshot", headers=AS_VIEWER, timeout=10).json()
    _assert_same(catalog, jsonl, snap["indicators"], snap["alerts"], pruned=True)
    # the Redis hash behind the replicas keeps every alert
    _assert_same(catalog, jsonl, snap["indicators"], _alerts_in_redis(cluster))
    assert httpx.get(base + "/healthz").json()["watermarks"]["rain"] == "2026-10-28T13:55:00+07:00"

    _assert_transitions(catalog, jsonl, _topic_alerts(cluster))
    indicators_topic = read_topic(cluster.kafka, "ioc.indicators")
    assert len(indicators_topic) >= len(snap["indicators"]) - 1382 + 1  # records were produced
    assert worker.metric("ioc_worker_events_total") == 6034
    assert worker.metric("ioc_worker_rebalances_total") >= 1
    assert worker.metric("ioc_worker_recovery_seconds") > 0

    # HTTP ingest on the API replica validates, then produces to Kafka
    good = {"kind": "rain", "station": "ZZ-NEW", "ts": "2026-10-28T13:55:00+07:00", "rain_mm": 4.2}
    bad = {"kind": "rain", "station": "ZZ-NEW", "ts": "2026-10-28T13:55:00+07:00", "rain_mm": -1}
    r = httpx.post(base + "/api/ingest", headers=AS_INGEST, content=(json.dumps(good) + "\n" + json.dumps(bad)).encode(), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and [(x["position"], x["reason"]) for x in r.json()["rejections"]] == [(1, "negative_value")]
    deadline = time.monotonic() + 15
    value = None
    while time.monotonic() < deadline and value is None:
        snap = httpx.get(base + "/api/snapshot", headers=AS_VIEWER, timeout=5).json()
        value = next((x["value"] for x in snap["indicators"] if x["name"] == "rain_mm" and x["window"] == "1h" and x["entity"] == "ZZ-NEW"), None)
        time.sleep(0.2)
    assert value == 4.2


def _k(r: dict) -> tuple:
    if r["type"] == "alert":
        return ("alert", r.get("id") or f'{r["rule"]}|{r["entity"]}')
    return ("indicator", r["name"], r["window"], r["entity"])


def test_two_workers_share_partitions(cluster, catalog, tmp_path):
    events = make_events(catalog)
    jsonl = to_jsonl(events)
    path = tmp_path / "input.jsonl"
    path.write_bytes(jsonl)
    a = cluster.worker()
    b = cluster.worker()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        owned = (a.metric("ioc_worker_assigned_partitions"), b.metric("ioc_worker_assigned_partitions"))
        if all(n > 0 for n in owned) and sum(owned) == 12:
            break
        time.sleep(0.3)
    assert all(n > 0 for n in owned) and sum(owned) == 12, owned
    assert cluster.ingest(path).returncode == 0
    wait_until_processed(cluster, [a, b], final_watermarks(catalog, jsonl, PARTITIONS))
    ea, eb = a.metric("ioc_worker_events_total"), b.metric("ioc_worker_events_total")
    assert ea > 0 and eb > 0 and ea + eb == len(events), (ea, eb)

    r = cluster.redis()
    latest = [json.loads(v) for v in r.hvals(f"{cluster.prefix}:latest")]
    _assert_same(catalog, jsonl, [x for x in latest if x["type"] == "indicator"], [x for x in latest if x["type"] == "alert"])
    _assert_transitions(catalog, jsonl, _topic_alerts(cluster))


def test_sigkill_mid_stream_loses_and_duplicates_nothing(cluster, catalog, tmp_path):
    events = make_events(catalog, steps=216)  # 18 hours, ~13,500 events
    jsonl = to_jsonl(events)
    path = tmp_path / "input.jsonl"
    path.write_bytes(jsonl)
    slow = ("--batch-size", "20", "--checkpoint-interval", "0.3")
    a = cluster.worker(*slow)
    assert cluster.ingest(path).returncode == 0
    deadline = time.monotonic() + 60
    done = 0.0
    while time.monotonic() < deadline:
        done = a.metric("ioc_worker_events_total")
        if done >= 0.3 * len(events):
            break
        time.sleep(0.05)
    assert 0 < done < len(events), f"kill should land mid-stream ({done} of {len(events)})"
    checkpoints = a.metric("ioc_worker_checkpoints_total")
    assert checkpoints > 0
    a.kill()  # SIGKILL: no revocation, no final checkpoint, no commit

    b = cluster.worker()
    wait_until_processed(cluster, [b], final_watermarks(catalog, jsonl, PARTITIONS), timeout_s=90)
    # the replacement re-read only from the checkpoints: what they covered was skipped, nothing was lost
    assert b.metric("ioc_worker_events_total") < len(events)
    assert b.metric("ioc_worker_recovery_seconds") < 20

    r = cluster.redis()
    latest = [json.loads(v) for v in r.hvals(f"{cluster.prefix}:latest")]
    _assert_same(catalog, jsonl, [x for x in latest if x["type"] == "indicator"], [x for x in latest if x["type"] == "alert"])
    _assert_transitions(catalog, jsonl, _topic_alerts(cluster))
