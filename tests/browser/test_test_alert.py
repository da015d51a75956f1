"""The operator's test alert end to end (issue 16), in real Chromium against a real `ioc run --demo --speed 30`
with a notification route to a local webhook receiver: the console's button sends it, the wall shows it
with the TEST mark (and not in its counts), the person's webhook gets a message marked as a test, it is in
no CAP message or feed, the console ends it; one sent just before a crash ends by itself exactly at its
time (the journal keeps it), and the restart re-sends nothing.  Both pages show "demo ×30"."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import tests.browser.conftest as bc
from tests.browser.test_alert_flow import LIVE, sign_in

pytestmark = pytest.mark.integration

TTL_S = 6  # of the one sent just before the stop (the console's lasts the default IOC_TEST_ALERT_TTL_S, 120 s)
NOTIFY = """
title: {{vi: "IOC Vĩnh Phúc", en: "Vinh Phuc IOC"}}
people:
  - {{id: truc-ban, name: "Trực ban tỉnh", language: vi, webhook: "{url}"}}
routes:
  group_by: [incident]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 0s
  receivers: [truc-ban]
"""


class Receiver:
    """A webhook endpoint (alerts/notify/channels/webhook.py's receiving side): records each JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.bodies.append(json.loads(raw))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def tests(self) -> list[dict]:
        return [b for b in self.bodies if any(a.get("labels", {}).get("test") == "true" for a in b.get("alerts", []))]

    def wait(self, pred, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [b for b in self.tests() if pred(b)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no such webhook call; got {self.bodies}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, artifacts):
    bc._require_runtime()
    receiver = Receiver()
    tmp = tmp_path_factory.mktemp("test-alert")
    (tmp / "notify.yaml").write_text(NOTIFY.format(url=receiver.url), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IOC_NOTIFY_CONFIG", str(tmp / "notify.yaml"))
        command = bc._ioc_command
        mp.setattr(bc, "_ioc_command", lambda port, data: [*command(port, data), "--speed", "30"])
        server = bc.IocServer(bc.free_port(), tmp / "data", artifacts)
        server.start()
        yield server, receiver
        server.stop()
    receiver.httpd.shutdown()


def test_console_sends_a_test_alert_through_the_whole_path(setup, new_page, artifacts):
    server, receiver = setup
    console = new_page(1600, 900)
    sign_in(console, server, server.operator_token)
    badge = console.locator('[data-testid="demo-badge"]')
    badge.wait_for(timeout=10_000)
    assert badge.inner_text() == "bản trình diễn ×30"

    wall = new_page(1920, 1080)
    wall.goto(server.kiosk_url("/wall/alerts"))
    wall.wait_for_selector(LIVE, timeout=20_000)
    wall.wait_for_selector('[data-testid="demo-badge"][data-speed="30"]', timeout=10_000)
    assert wall.inner_text('[data-testid="demo-badge"]') == "bản trình diễn ×30"
    wall.click('[data-testid="lang-toggle"]')
    assert wall.inner_text('[data-testid="demo-badge"]') == "demo ×30"
    wall.click('[data-testid="lang-toggle"]')

    console.click('[data-testid="test-alert-button"]')
    row = console.locator('[data-testid="console-alert-row"]:has([data-testid="test-mark"])')
    row.wait_for(timeout=10_000)
    alert_id = row.get_attribute("data-alert-id")
    assert row.get_attribute("data-state") == "firing" and row.locator('[data-testid="test-mark"]').inner_text() == "THỬ"

    # the wall: the TEST mark, the test message, and none of the alert counts include it
    wall_row = f'[data-testid="alert-row"][data-alert-id="{alert_id}"]'
    wall.wait_for_selector(f'{wall_row} [data-testid="alert-test-mark"]', timeout=10_000)
    assert "không phải sự cố thật" in wall.inner_text(wall_row)
    wall.wait_for_function(
        """() => { const real = [...window.iocWall.store.alerts.values()].filter((a) => a.state === "firing"
                     && a.severity === "info" && a.labels?.test !== "true").length;
                   return Number(document.querySelector('#alert-counts .sev-info').dataset.count) === real; }""",
        timeout=5_000)
    wall.screenshot(path=str(artifacts / "wall-test-alert.png"))

    # the person's webhook: marked as a test, in Vietnamese
    told = receiver.wait(lambda b: b["kind"] == "firing")
    assert told["text"].startswith("[IOC Vĩnh Phúc] [THỬ] ") and "Cảnh báo thử — không phải sự cố thật" in told["text"]
    assert [a["id"] for a in told["alerts"]] == [alert_id]

    # never a CAP message, never in the feed, never counted as a real alert
    status, body = server.post_json("/api/alerts/test", {}, token=server.operator_token)  # one at a time
    assert status == 200 and body["result"] == "already_active" and body["id"] == alert_id
    feed = _get_text(server, "/api/cap/feed.atom")
    assert alert_id not in feed and "ioc-test" not in feed
    assert _status(server, f"/api/alerts/{alert_id}/cap") == 404
    metrics = _get_text(server, "/metrics")
    assert 'ioc_test_alerts_total{transition="firing"} 1.0' in metrics
    assert 'rule="test_alert"' not in metrics

    # the operator ends it in the console: resolved on the wall, the person told it is over
    row.locator('[data-testid="resolve-test-button"]').click()
    console.wait_for_selector(f'[data-testid="console-alert-row"][data-alert-id="{alert_id}"][data-state="resolved"]',
                              timeout=10_000)
    wall.wait_for_selector(f'{wall_row}[data-state="resolved"]', timeout=10_000)
    over = receiver.wait(lambda b: b["kind"] == "resolved")
    assert over["text"].startswith("[IOC Vĩnh Phúc] [THỬ] ") and "ĐÃ KẾT THÚC" in over["text"]
    console.screenshot(path=str(artifacts / "console-test-alert.png"))

    # one more, then a crash (SIGKILL: only the journal has it): it ends at exactly its time, by itself
    status, second = server.post_json("/api/alerts/test", {"ttl_s": TTL_S}, token=server.operator_token)
    assert status == 200 and second["result"] == "sent", second
    receiver.wait(lambda b: b["kind"] == "firing" and b["alerts"][0]["id"] == second["id"])  # told at once
    os.killpg(server.proc.pid, signal.SIGKILL)  # the server's own session: it and its demo-history child
    server.proc.wait(10)
    server.stop()  # closes the log; the process is gone
    ends = _epoch(second["started"]) + TTL_S
    time.sleep(max(0.0, ends - time.time() + 0.2))  # it ends while the server is down
    server.start()
    deadline = time.monotonic() + 10
    after = None
    while time.monotonic() < deadline:
        after = server.get_json(f"/api/alerts/{second['id']}", token=server.viewer_token)
        if after["state"] == "resolved":
            break
        time.sleep(0.2)
    assert after["state"] == "resolved", after
    assert abs(_epoch(after["ts"]) - ends) < 0.002, (after["ts"], second["started"])
    history = server.get_json(f"/api/alerts/{alert_id}/history", token=server.viewer_token)["history"]
    assert [h["transition"] for h in history] == ["firing", "resolved"]  # the restart replayed, not repeated
    receiver.wait(lambda b: b["kind"] == "resolved" and b["alerts"][0]["id"] == second["id"])
    time.sleep(1.0)
    keys = [b["idempotency_key"] for b in receiver.bodies]
    assert len(keys) == len(set(keys)), keys  # nothing sent twice across the restart
    for aid in (alert_id, second["id"]):  # each told once that it began and once that it ended
        assert [b["kind"] for b in receiver.bodies if b["alerts"][0]["id"] == aid] == ["firing", "resolved"], aid


def _epoch(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts).timestamp()


def _get_text(server, path: str) -> str:
    import urllib.request

    req = urllib.request.Request(server.base + path, headers={"Authorization": f"Bearer {server.viewer_token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def _status(server, path: str) -> int:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(server.base + path, headers={"Authorization": f"Bearer {server.viewer_token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
