"""End to end: a rain event crosses a threshold → the wall shows the alert
within 2 s with a critical cue → an operator acknowledges it in the console
→ the wall shows it acknowledged → the server restarts (same port, same data
dir) → the wall goes reconnecting, then live, and the acknowledgement is
still there."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.integration

LIVE = '[data-testid="connection-status"][data-state="live"]'
RECONNECTING = '[data-testid="connection-status"][data-state="reconnecting"]'
ICT = timezone(timedelta(hours=7))


def post_rain(server, station: str, ts: datetime, rain_mm: float):
    """`rain_mm` ending at `ts`, as a gauge could report it: readings of at most 60 mm 10 minutes apart
    (one 120 mm reading in 5 minutes is beyond any recorded rainfall: it would be quarantined)."""
    n = max(1, math.ceil(rain_mm / 60.0))
    events = [{"kind": "rain", "station": station, "ts": (ts - timedelta(minutes=10 * (n - 1 - i))).isoformat(timespec="seconds"),
               "rain_mm": round(rain_mm / n, 3)} for i in range(n)]
    status, body = server.post_json("/api/ingest", events, token=server.ingest_token)
    assert status in (200, 201, 202, 204), f"ingest answered {status}: {body}"
    assert body.get("accepted", 0) + body.get("corrected", 0) == n, body


def sign_in(page, server, token):
    """Open the console: it answers its sign-in page (401) until a token is traded for the session cookie."""
    page.goto(server.base + "/console")
    page.fill('[data-testid="signin-token"]', token)
    page.click('[data-testid="signin-button"]')
    page.wait_for_load_state()


def test_rain_alert_ack_and_restart(new_page, fresh_server, artifacts):
    server = fresh_server
    wall = new_page(1920, 1080)
    wall.goto(server.kiosk_url("/"))
    wall.wait_for_selector(LIVE, timeout=20_000)
    wall.wait_for_selector('[data-testid="station-mark"][data-has-data="true"][data-stale="false"]', timeout=20_000)
    wall.wait_for_function("() => document.querySelector('[data-testid=\"rain-map\"]').dataset.watermark", timeout=20_000)

    station = wall.get_attribute('[data-testid="station-mark"][data-has-data="true"][data-stale="false"]', "data-station")
    wm = datetime.fromisoformat(wall.get_attribute('[data-testid="rain-map"]', "data-watermark").replace("Z", "+00:00"))
    ts = wm.astimezone(ICT) + timedelta(seconds=1)

    # 120 mm at once: ≥ 70 mm in 3 h (rain_3h_intense, critical) and > 100 mm in 24 h
    t0 = time.monotonic()
    post_rain(server, station, ts, 120.0)
    row_sel = f'[data-testid="alert-row"][data-entity="{station}"][data-state="firing"]'
    wall.wait_for_selector(row_sel, timeout=2_000)
    elapsed = time.monotonic() - t0
    assert elapsed <= 2.0, f"alert took {elapsed:.2f} s to reach the wall"

    crit_sel = f'[data-testid="alert-row"][data-entity="{station}"][data-rule="rain_3h_intense"]'
    wall.wait_for_selector(crit_sel, timeout=3_000)
    crit = wall.locator(crit_sel)
    assert crit.get_attribute("data-severity") == "critical"
    assert crit.get_attribute("data-acknowledged") == "false"
    alert_id = crit.get_attribute("data-alert-id")
    # the critical cue: counted, toast shown, alerts panel enlarged, station pulsing on the map
    wall.wait_for_function("() => Number(document.body.dataset.criticalCues || 0) >= 1", timeout=2_000)
    assert wall.locator("#toast").is_visible()
    assert "focus-alerts" in wall.get_attribute("#wall", "class")
    assert "alerting" in wall.get_attribute(f'[data-testid="station-mark"][data-station="{station}"]', "class")
    wall.screenshot(path=str(artifacts / "wall-critical-alert-1920x1080.png"))

    # acknowledge in the console
    console = new_page(1600, 900)
    sign_in(console, server, server.operator_token)
    row = console.locator(f'[data-testid="console-alert-row"][data-alert-id="{alert_id}"]')
    row.wait_for(timeout=10_000)
    row.locator('[data-testid="ack-button"]').click()
    console.fill('[data-testid="ack-comment"]', "Đã thông báo Ban chỉ huy PCTT huyện")
    console.click('[data-testid="ack-confirm"]')
    console.wait_for_selector(f'[data-testid="console-alert-row"][data-alert-id="{alert_id}"][data-acknowledged="true"]', timeout=5_000)
    console.screenshot(path=str(artifacts / "console-acknowledged.png"))

    # the wall shows it acknowledged, with the comment
    acked = f'[data-testid="alert-row"][data-alert-id="{alert_id}"][data-acknowledged="true"]'
    wall.wait_for_selector(acked, timeout=5_000)
    assert "Ban chỉ huy" in wall.locator(acked).inner_text()

    # restart the server on the same port and data dir
    server.stop()
    wall.wait_for_selector(RECONNECTING, timeout=10_000)
    assert wall.locator("#conn-banner").is_visible()
    wall.screenshot(path=str(artifacts / "wall-reconnecting-1920x1080.png"))
    server.start()
    wall.wait_for_selector(LIVE, timeout=40_000)
    # nothing lost: the alert and its acknowledgement survive the restart
    wall.wait_for_selector(acked, timeout=10_000)
    assert not wall.locator("#conn-banner").is_visible()


def test_console_rejects_a_wrong_token(new_page, ioc_server):
    page = new_page(1600, 900)
    sign_in(page, ioc_server, "not-the-token")
    page.wait_for_selector('body[data-reason="bad_token"]', timeout=5_000)
    assert page.locator('[data-testid="signin-message"]').is_visible()
    assert "không đúng" in page.locator('[data-testid="signin-message"]').inner_text()
    assert page.locator('[data-testid="signin-page"]').is_visible()


def test_console_silence_create_and_delete(new_page, ioc_server):
    page = new_page(1600, 900)
    sign_in(page, ioc_server, ioc_server.operator_token)
    page.wait_for_selector('[data-testid="tab-silences"]', state="visible", timeout=5_000)
    page.click('[data-testid="tab-silences"]')
    station = ioc_server.catalog()["stations"][0]["id"]
    before = page.locator('[data-testid="silence-row"]').count()
    page.select_option("#silence-rule", "sensor_stale")
    page.fill("#silence-entity", station)
    page.fill("#silence-comment", "Bảo trì trạm / gauge maintenance")
    page.click('[data-testid="silence-create"]')
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=\"silence-row\"]').length === {before + 1}", timeout=5_000)
    assert station in page.locator('[data-testid="silence-row"]').last.inner_text()
    page.once("dialog", lambda d: d.accept())
    page.locator('[data-testid="silence-row"]').last.locator('[data-testid="silence-delete"]').click()
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=\"silence-row\"]').length === {before}", timeout=5_000)


def test_console_refuses_a_viewer(new_page, ioc_server):
    """A viewer's token signs in (the wall is theirs) but the console answers 403 with a page saying
    the operator role is needed; nothing of the console is served."""
    page = new_page(1600, 900)
    sign_in(page, ioc_server, ioc_server.viewer_token)
    page.wait_for_selector('body[data-reason="operator"]', timeout=5_000)
    text = page.locator('[data-testid="signin-message"]').inner_text()
    assert "operator" in text and "viewer" in text
    assert page.locator('[data-testid="console-alerts"]').count() == 0
    response = page.request.get(ioc_server.base + "/console")  # the same session cookie
    assert response.status == 403
