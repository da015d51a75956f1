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
