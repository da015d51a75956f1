"""`ioc run` starts the field feeds it is given: a Vrain-style poller against a local HTTP peer."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import AS_VIEWER

pytestmark = pytest.mark.integration


def test_vrain_poller_feeds_the_pipeline(ioc_server):
    """Two recorded polls 5 minutes apart: the difference becomes one interval reading."""
    polls = [
        {"time": "2026-10-28T13:05:00+07:00", "stations": [{"id": "VP-001", "rain_since_19h_mm": 10.0}]},
        {"time": "2026-10-28T13:10:00+07:00", "stations": [{"id": "VP-001", "rain_since_19h_mm": 12.4}]},
    ]
    served = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps(polls[min(len(served), len(polls) - 1)]).encode()
            served.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    peer = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        server = ioc_server("--vrain-url", f"http://127.0.0.1:{peer.server_address[1]}/rain", "--vrain-interval", "0.3")
        deadline = time.monotonic() + 15
        value = None
        while time.monotonic() < deadline and value is None:
            snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()
            value = next((r["value"] for r in snap["indicators"]
                          if r["name"] == "rain_mm" and r["window"] == "1h" and r["entity"] == "VP-001"), None)
            time.sleep(0.2)
        assert value == pytest.approx(2.4)
        assert len(served) >= 2
    finally:
        peer.shutdown()


def test_vrain_public_shape_with_partner_key_feeds_the_pipeline(ioc_server, tmp_path):
    """The public per-province array, the key from IOC_VRAIN_API_KEY in x-api-key, uuids mapped by a YAML file."""
    key = "partner-key-for-the-test-5d1e"
    polls = [[{"station": {"uuid": "uuid-001", "name": "Liên Bảo", "address": "", "lat": 21.3, "lng": 105.6},
               "sumDepth": mm, "level": 0, "color": "#fff"},
              {"station": {"uuid": "uuid-unmapped", "name": "Trạm lạ"}, "sumDepth": 1.0}] for mm in (10.0, 12.4)]
    keys: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            keys.append(self.headers.get("x-api-key"))
            ok = keys[-1] == key
            n = sum(k == key for k in keys)
            body = json.dumps(polls[min(n, len(polls)) - 1]).encode() if ok else b'{"message": "Unauthorized"}'
            self.send_response(200 if ok else 401)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    peer = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    stations = tmp_path / "vrain-stations.yaml"
    stations.write_text("stations:\n  uuid-001: VP-011\n", encoding="utf-8")
    try:
        server = ioc_server("--vrain-url", f"http://127.0.0.1:{peer.server_address[1]}/vinh-phuc?k={key}",
                            "--vrain-interval", "1.1", "--vrain-stations", str(stations), "--log-level", "info",
                            extra_env={"IOC_VRAIN_API_KEY": key})
        deadline = time.monotonic() + 30  # generous for a loaded machine; ~3 s otherwise
        value = None
        while time.monotonic() < deadline and value is None:
            snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()
            value = next((r["value"] for r in snap["indicators"]
                          if r["name"] == "rain_mm" and r["window"] == "1h" and r["entity"] == "VP-011"), None)
            time.sleep(0.2)
        assert value == pytest.approx(2.4)
        assert set(keys) == {key}
        metrics = httpx.get(server.url + "/metrics").text
        assert re.search(r'^ioc_events_rejected_total\{feed="rain",reason="invalid_value"\} 1\.0$', metrics, re.M)
        assert (server.data_dir / "vrain-state.json").exists()
        server.stop()
        assert key not in server.log_path.read_text(errors="replace")
    finally:
        peer.shutdown()


def test_sensorthings_mqtt_feeds_the_pipeline(ioc_server, mqtt_broker, tmp_path):
    import asyncio

    import aiomqtt

    host, port = mqtt_broker
    mapping = tmp_path / "datastreams.yaml"
    mapping.write_text("datastreams:\n  '9017': {kind: rain, station: VP-007}\n  '9018': {kind: rain, station: VP-008}\n")
    server = ioc_server("--mqtt", f"{host}:{port}", "--sensorthings-map", str(mapping))

    def rain_1h(station: str):
        snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()
        return next((r["value"] for r in snap["indicators"]
                     if r["name"] == "rain_mm" and r["window"] == "1h" and r["entity"] == station), None)

    async def publish(topic: str, payloads: list[bytes]) -> None:
        async with aiomqtt.Client(host, port) as client:
            for p in payloads:
                await client.publish(topic, p, qos=1)

    probe = json.dumps({"phenomenonTime": "2026-10-28T13:00:00+07:00", "result": 0.0}).encode()
    deadline = time.monotonic() + 15
    while rain_1h("VP-008") is None:  # until the subscriber is connected
        assert time.monotonic() < deadline, "the SensorThings subscriber never received the probe"
        asyncio.run(publish("v1.1/Datastreams(9018)/Observations", [probe]))
        time.sleep(0.3)
    readings = [json.dumps({"phenomenonTime": f"2026-10-28T13:{m:02d}:00+07:00", "result": mm}).encode()
                for m, mm in ((5, 1.5), (10, 2.0))]
    asyncio.run(publish("v1.1/Datastreams(9017)/Observations", [*readings, b"{not json"]))
    deadline = time.monotonic() + 10
    while rain_1h("VP-007") != 3.5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rain_1h("VP-007") == 3.5
    metrics = httpx.get(server.url + "/metrics").text
    assert re.search(r'^ioc_events_rejected_total\{feed="rain",reason="bad_json"\} 1\.0$', metrics, re.M), metrics


def test_a_bad_vrain_station_map_is_one_line_and_exit_2(tmp_path):
    import subprocess

    from tests.conftest import IOC, ROOT

    bad = tmp_path / "vrain-stations.yaml"
    bad.write_text("stations:\n  uuid-001: {id: VP-001}\n", encoding="utf-8")
    proc = subprocess.run([*IOC, "run", "--port", "18931", "--data-dir", str(tmp_path / "d"), "--vrain-url",
                           "http://127.0.0.1:9/r", "--vrain-stations", str(bad)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"ioc: error: --vrain-stations: vrain station map {bad}: stations[uuid-001] "
                                   "must be a catalog station id")
