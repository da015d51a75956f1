"""`ioc run` end to end: real uvicorn on a free port, real HTTP and WebSocket clients."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.conftest import AS_INGEST, AS_VIEWER
from websockets.sync.client import connect

pytestmark = pytest.mark.integration

FEEDS = ("rain", "dossier", "camera")


def ingested(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(r'^ioc_events_ingested_total\{feed="(\w+)"\} (\S+)$', text, re.M)}


def rejected(url: str, feed: str, reason: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    m = re.search(rf'^ioc_events_rejected_total\{{feed="{feed}",reason="{reason}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_demo_is_live_within_ten_seconds(ioc_server):
    t0 = time.monotonic()
    # at the default speed 1 the simulators tick at most once a minute at night: 60× gives a stream of deltas
    server = ioc_server("--demo", "--speed", "60", timeout_s=10)
    url = server.url
    assert httpx.get(url + "/healthz").status_code == 200
    counts: dict[str, float] = {}
    while time.monotonic() - t0 < 10 and not all(counts.get(f, 0) > 0 for f in FEEDS):
        counts = ingested(url)
        time.sleep(0.2)
    assert all(counts.get(f, 0) > 0 for f in FEEDS), counts

    with connect(server.ws_url, open_timeout=5, additional_headers=AS_VIEWER) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "snapshot"
        assert first["records"], "the demo has indicators at once"
        seqs = []
        while len(seqs) < 3:
            msg = json.loads(ws.recv(timeout=10))
            if msg["type"] == "delta":
                assert msg["records"]
                assert {r["type"] for r in msg["records"]} <= {"indicator", "alert"}
                seqs.append(msg["seq"])
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert seqs[0] > first["seq"]

    html = httpx.get(url + "/").text
    assert "<html" in html.lower()
    snap = httpx.get(url + "/api/snapshot", headers=AS_VIEWER).json()
    assert snap["indicators"] and "alerts" in snap


def test_malformed_ingest_is_refused_counted_and_dead_lettered(ioc_server):
    server = ioc_server("--demo")
    url = server.url
    before = rejected(url, "rain", "negative_value")
    bad = {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": -3}
    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, json=bad)
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 0 and body["rejected"] == 1
    assert body["rejections"][0]["reason"] == "negative_value"
    assert body["rejections"][0]["position"] == 0
    assert rejected(url, "rain", "negative_value") == before + 1

    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, content=b"{not json\n")
    assert r.status_code == 400 and r.json()["rejections"][0]["reason"] == "bad_json"

    # valid data in the same body is processed
    wm = httpx.get(url + "/healthz").json()["watermarks"]["rain"]
    # a key the simulators never send (the same station and ts would be a correction of theirs)
    good = {"kind": "rain", "station": "HTTP-TEST-1", "ts": wm, "rain_mm": 1.0}
    lines = "\n".join([json.dumps(good), "garbage", json.dumps(bad)])
    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, content=lines.encode())
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 2
    assert [(x["position"], x["reason"]) for x in body["rejections"]] == [(1, "bad_json"), (2, "negative_value")]

    assert httpx.get(url + "/healthz").status_code == 200
    dead = (server.data_dir / "dead-letter.jsonl").read_text().splitlines()
    assert any('"reason":"negative_value"' in line and "-3" in line for line in dead)
    assert any('"reason":"bad_json"' in line and "garbage" in line for line in dead)


def test_future_dated_event_is_refused_with_reason(ioc_server):
    server = ioc_server()
    url = server.url
    ok = {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 1}
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=ok).json()["accepted"] == 1
    far = dict(ok, ts="2031-01-01T00:00:00+07:00")
    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, json=[ok | {"ts": "2026-10-28T13:15:00+07:00"}, far])
    assert r.status_code == 200
    assert [(x["position"], x["reason"]) for x in r.json()["rejections"]] == [(1, "future_timestamp")]
    assert httpx.get(url + "/healthz").json()["watermarks"]["rain"] == "2026-10-28T13:15:00+07:00"


def rain_values(url: str, station: str) -> dict[str, float]:
    snap = httpx.get(url + "/api/snapshot", headers=AS_VIEWER).json()
    return {r["window"]: r["value"] for r in snap["indicators"] if r["name"] == "rain_mm" and r["entity"] == station}


def test_sigkill_restart_keeps_state_and_counts_nothing_twice(ioc_server, tmp_path):
    data = tmp_path / "data"
    server = ioc_server(data_dir=data)
    url, port = server.url, server.port
    first = [
        {"kind": "rain", "station": "VP-001", "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 2.5}
        for m in range(0, 60, 5)
    ]
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=first).json()["accepted"] == 12
    assert rain_values(url, "VP-001")["24h"] == 30.0
    server.kill()  # no checkpoint on the way down: the journal carries the batch

    server2 = ioc_server(data_dir=data, port=port)
    assert rain_values(server2.url, "VP-001")["24h"] == 30.0
    more = {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T14:00:00+07:00", "rain_mm": 5}
    assert httpx.post(server2.url + "/api/ingest", headers=AS_INGEST, json=more).json()["accepted"] == 1
    assert rain_values(server2.url, "VP-001")["24h"] == 35.0
    server2.stop()  # graceful: the final checkpoint covers everything, the journal is pruned
    assert server2.proc.returncode == 0
    assert (data / "checkpoint.msgpack").exists()

    server3 = ioc_server(data_dir=data, port=port)
    assert "restored 0 journaled events" in server3.log()
    values = rain_values(server3.url, "VP-001")
    assert values["24h"] == 35.0
    assert values["1h"] == 32.5  # (13:00, 14:00]: eleven readings of 2.5 and the 5.0


def test_idle_clients_get_heartbeats_and_resume_after_a_reconnect(ioc_server):
    server = ioc_server()
    with connect(server.ws_url, open_timeout=5, additional_headers=AS_VIEWER) as ws:
        snap = json.loads(ws.recv(timeout=5))
        assert snap["type"] == "snapshot"
        beat = json.loads(ws.recv(timeout=12))  # nothing happens: the server still speaks every 5 s
        assert beat["type"] == "heartbeat" and beat["seq"] == snap["seq"] and beat["server_time"]
    ev = {"kind": "rain", "station": "VP-009", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 4.0}
    assert httpx.post(server.url + "/api/ingest", headers=AS_INGEST, json=ev).json()["accepted"] == 1
    with connect(server.ws_url + f"?resume={snap['seq']}", open_timeout=5, additional_headers=AS_VIEWER) as ws:
        missed = json.loads(ws.recv(timeout=5))
        assert missed["type"] == "delta" and missed["seq"] > snap["seq"]
        assert {r["entity"] for r in missed["records"]} == {"VP-009"}
