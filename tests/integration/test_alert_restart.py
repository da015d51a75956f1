"""An acknowledged alert survives SIGKILL, and the webhook is notified exactly once."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import wait_for, AS_INGEST, OPERATOR_TOKEN, VIEWER_TOKEN

pytestmark = pytest.mark.integration


class Receiver:
    """A local webhook receiver recording every delivery."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.calls.append((self.headers.get("Idempotency-Key", ""), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()




def test_ack_survives_sigkill_and_webhook_notified_once(ioc_server, receiver, tmp_path):
    data = tmp_path / "data"
    env = {"IOC_WEBHOOK_URL": receiver.url}
    server = ioc_server(data_dir=data, extra_env=env)
    url, port = server.url, server.port
    viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    storm = [
        {"kind": "rain", "station": "VP-001", "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 7.5}
        for m in range(5, 60, 5)
    ]  # 11 × 7.5 = 82.5 mm within 3 h → rain_3h_intense
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=storm).json()["accepted"] == 11

    alerts = wait_for(lambda: httpx.get(url + "/api/alerts", params={"rule": "rain_3h_intense"}, headers=viewer).json()["alerts"])
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["entity"] == "VP-001" and alert["state"] == "firing" and alert["severity"] == "critical"
    assert alert["ts"].startswith("2026-10-28T13:")  # event time, not wall clock
    assert wait_for(lambda: [c for c in receiver.calls if c[1]["alert"]["id"] == alert["id"]])

    r = httpx.post(f"{url}/api/alerts/{alert['id']}/ack", json={"comment": "đã nhận, đang theo dõi"}, headers=operator)
    assert r.status_code == 200 and r.json()["acknowledged"]["comment"] == "đã nhận, đang theo dõi"

    server.kill()
    server2 = ioc_server(data_dir=data, port=port, extra_env=env)
    after = httpx.get(f"{server2.url}/api/alerts/{alert['id']}", headers=viewer).json()
    assert after["id"] == alert["id"] and after["state"] == "firing"
    assert after["acknowledged"]["comment"] == "đã nhận, đang theo dõi"

    # more rain on the same station updates the same alert, never a second one
    more = {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T14:00:00+07:00", "rain_mm": 5}
    assert httpx.post(server2.url + "/api/ingest", headers=AS_INGEST, json=more).json()["accepted"] == 1
    time.sleep(1.5)  # give a wrong re-notification time to arrive
    alerts = httpx.get(server2.url + "/api/alerts", params={"rule": "rain_3h_intense"}, headers=viewer).json()["alerts"]
    assert [a["id"] for a in alerts] == [alert["id"]]
    firing = [key for key, body in receiver.calls if body.get("kind") == "firing" and body["alert"]["rule"] == "rain_3h_intense"]
    assert firing == [f"{alert['id']}:firing"], receiver.calls

    # a graceful restart (from a checkpoint this time), then a crash again: still acknowledged,
    # and the audit log holds each transition once although the journal was replayed twice
    server2.stop()
    server3 = ioc_server(data_dir=data, port=port, extra_env=env)
    server3.kill()
    server4 = ioc_server(data_dir=data, port=port, extra_env=env)
    after = httpx.get(f"{server4.url}/api/alerts/{alert['id']}", headers=viewer).json()
    assert after["acknowledged"]["comment"] == "đã nhận, đang theo dõi"
    history = httpx.get(f"{server4.url}/api/alerts/{alert['id']}/history", headers=viewer).json()["history"]
    transitions = [h["transition"] for h in history]
    assert transitions.count("acknowledged") == 1, transitions
    assert len(transitions) == len(set(map(repr, history))), transitions
