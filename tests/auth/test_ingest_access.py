"""Ingest on a real `ioc run`: scope (feeds, stations) per event, the per-principal rate limit
(429 + Retry-After), and the /metrics token."""

from __future__ import annotations

import json

import httpx

from tests.auth.helpers import add_user
from tests.conftest import AS_INGEST, AS_VIEWER, bearer

RAIN_1 = {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T10:00:00+07:00", "rain_mm": 0.4}
RAIN_2 = {"kind": "rain", "station": "VP-002", "ts": "2026-10-28T10:00:00+07:00", "rain_mm": 0.6}
CAMERA = {"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T10:00:00+07:00",
          "waiting": 3, "counters_open": 2}


def test_events_outside_the_scope_are_refused_counted_and_dead_lettered(ioc_server, tmp_path):
    data = tmp_path / "data"
    gw = bearer(add_user(data, "gw-vinh-yen", "ingest", "--feeds", "rain", "--entities", "VP-001"))
    server = ioc_server(data_dir=data)
    r = httpx.post(server.url + "/api/ingest", json=[RAIN_1, RAIN_2, CAMERA, {"kind": "rain"}], headers=gw)
    assert r.status_code == 200, r.text  # the event in scope was taken in
    out = r.json()
    assert out["accepted"] == 1 and out["rejected"] == 3
    assert [(x["position"], x["reason"]) for x in out["results"]] == [
        (1, "forbidden_entity"), (2, "forbidden_feed"), (3, "missing_field")]
    assert "'gw-vinh-yen' may write only the feeds rain" in out["rejections"][1]["detail"]

    only_outside = httpx.post(server.url + "/api/ingest", json=[RAIN_2, CAMERA], headers=gw)
    assert only_outside.status_code == 403
    assert {x["reason"] for x in only_outside.json()["results"]} == {"forbidden_entity", "forbidden_feed"}
    # the all-feeds ingest principal may write them
    assert httpx.post(server.url + "/api/ingest", json=[RAIN_2, CAMERA], headers=AS_INGEST).json()["accepted"] == 2

    metrics = httpx.get(server.url + "/metrics").text
    assert 'ioc_events_rejected_total{feed="rain",reason="forbidden_entity"} 2.0' in metrics
    assert 'ioc_events_rejected_total{feed="camera",reason="forbidden_feed"} 2.0' in metrics
    dead = [json.loads(line) for line in (data / "dead-letter.jsonl").read_text().splitlines()]
    reasons = [d["reason"] for d in dead]
    assert reasons.count("forbidden_entity") == 2 and reasons.count("forbidden_feed") == 2
    assert any(d["reason"] == "forbidden_entity" and '"VP-002"' in d["raw"] for d in dead)
    snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()
    stations = {i["entity"] for i in snap["indicators"] if i["name"] == "rain_mm"}
    assert stations == {"VP-001", "VP-002"}  # VP-002 only from the principal allowed to write it


def test_rate_limit_per_principal_and_metrics_token(ioc_server, tmp_path):
    data = tmp_path / "data"
    other = bearer(add_user(data, "gw-other", "ingest"))
    server = ioc_server(data_dir=data, extra_env={"IOC_INGEST_RATE_PER_S": "0.5", "IOC_INGEST_BURST": "2",
                                                  "IOC_METRICS_TOKEN": "prom-scrape-token"})
    codes = [httpx.post(server.url + "/api/ingest", json=RAIN_1, headers=AS_INGEST).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = httpx.post(server.url + "/api/ingest", json=RAIN_2, headers=AS_INGEST)
    assert r.status_code == 429 and r.json()["reason"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 2 and "retry after" in r.json()["detail"]
    assert httpx.post(server.url + "/api/ingest", json=RAIN_2, headers=other).status_code == 200  # its own bucket
    snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()
    assert not any(i["entity"] == "VP-002" and i["value"] != 0.6 for i in snap["indicators"]
                   if i["name"] == "rain_mm" and i["window"] == "1h")  # the refused request changed nothing

    assert httpx.get(server.url + "/metrics").status_code == 401
    assert httpx.get(server.url + "/metrics", headers=AS_VIEWER).status_code == 401  # a principal is not enough
    m = httpx.get(server.url + "/metrics", headers=bearer("prom-scrape-token"))
    assert m.status_code == 200
    assert 'ioc_ingest_rate_limited_total{principal="ingest"} 2.0' in m.text
    assert 'ioc_auth_failures_total{reason="metrics"} 2.0' in m.text
