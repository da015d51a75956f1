"""`ioc run --demo` at the wall clock (issue 16), as a real process: after start-up the newest simulated
event time is "now" (within a gauge's 5-minute report interval; the demo's clock within a few seconds),
/healthz says the speed, and a rain reading posted with the current time is in the station's 1 h window
(at the former 60× the demo's windows were hours ahead of it)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest

from tests.conftest import AS_INGEST, AS_VIEWER

pytestmark = pytest.mark.integration


def test_demo_runs_at_the_wall_clock_and_takes_an_event_posted_now(ioc_server):
    server = ioc_server("--demo")
    url = server.url
    health = httpx.get(url + "/healthz").json()
    assert health["demo"] == {"speed": 1.0}
    now = time.time()
    marks = {feed: datetime.fromisoformat(ts).timestamp() for feed, ts in health["watermarks"].items()}
    assert set(marks) == {"rain", "dossier", "camera"}, marks
    for feed, wm in marks.items():  # every feed has reported up to now, none beyond it
        assert now - 300 < wm <= now + 1, (feed, health["watermarks"], now)
    assert now - 60 < max(marks.values()) <= now + 1  # the cameras' minute ticks run day and night

    # an event posted with the current time lands in the current (1 h) window
    ts = datetime.now().astimezone().isoformat(timespec="seconds")
    event = {"kind": "rain", "station": "H8-CLOCK-1", "ts": ts, "rain_mm": 7.4}
    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, json=event)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    deadline = time.monotonic() + 5
    hour = None
    while time.monotonic() < deadline and hour is None:
        snap = httpx.get(url + "/api/snapshot", headers=AS_VIEWER).json()
        hour = next((x for x in snap["indicators"] if x["name"] == "rain_mm" and x["window"] == "1h"
                     and x["entity"] == "H8-CLOCK-1"), None)
        time.sleep(0.1)
    assert hour is not None and hour["value"] == 7.4, hour
    assert abs(datetime.fromisoformat(hour["ts"]).timestamp() - time.time()) < 10  # at "now", not hours ahead
