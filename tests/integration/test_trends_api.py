"""/api/trends/* on a real `ioc run` (uvicorn), fed through /api/ingest and the pipeline:
hourly rain bars from the rain ring, 30-day dossiers and today's queue against the usual from the
history (ioc/history.py), which survives a crash restart."""

from __future__ import annotations

import os
import statistics
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import (ADMIN_TOKEN, AS_INGEST, AS_VIEWER, INGEST_TOKEN, OPERATOR_TOKEN, VIEWER_TOKEN, IocServer,
                            free_port)
from ioc.timeutil import LOCAL_TZ

pytestmark = pytest.mark.integration

NOW = datetime.now(LOCAL_TZ).replace(microsecond=0)
HOUR_END = NOW.replace(minute=0, second=0) - timedelta(hours=1)  # the end of the last full hour but one
STATION = "VP-001"
# (hours before HOUR_END, minutes into that hour, mm): two readings in one hour, one in another,
# one outside 24 h (in 72 h); the last reading moves the watermark to NOW - 1 min (no rain)
RAIN = [(30, 10, 7.0), (5, 10, 2.4), (5, 20, 1.1), (2, 5, 3.0)]
SITE, CAMS = "vinh-yen", ("cam-vy-1", "cam-vy-2")


def ts(d: datetime) -> str:
    return d.isoformat()


def working_days_before(day: datetime, n: int) -> list[datetime]:
    out, d = [], day
    while len(out) < n:
        d -= timedelta(days=1)
        if d.weekday() < 5:
            out.append(d)
    return out[::-1]


def ingest(url: str, events: list[dict]) -> dict:
    r = httpx.post(url + "/api/ingest", json=events, headers=AS_INGEST, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rejected"] == 0, body
    return body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trends")
    env = dict(os.environ, IOC_VIEWER_TOKEN=VIEWER_TOKEN, IOC_OPERATOR_TOKEN=OPERATOR_TOKEN, IOC_ADMIN_TOKEN=ADMIN_TOKEN,
               IOC_INGEST_TOKEN=INGEST_TOKEN, PYTHONUNBUFFERED="1")
    srv = IocServer(tmp / "data", free_port(), [], env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fed(server):
    """Rain, dossiers over three days, camera readings over three earlier working days and today."""
    url = server.url
    rain = [{"kind": "rain", "station": STATION, "ts": ts(HOUR_END - timedelta(hours=h) + timedelta(minutes=m)),
             "rain_mm": mm} for h, m, mm in RAIN]
    rain.append({"kind": "rain", "station": STATION, "ts": ts(NOW - timedelta(minutes=1)), "rain_mm": 0.0})
    ingest(url, rain)

    ref = NOW - timedelta(minutes=40)  # "today" is ref's day: also just after midnight, all of it is in the past
    today = ref.replace(hour=0, minute=0, second=0)
    earlier = working_days_before(today, 3)
    first = (ref - timedelta(minutes=5)).replace(second=0)
    first = first.replace(minute=min(first.minute, 57))  # three minutes inside one clock hour
    expected: dict[str, float] = {}
    for i, d in enumerate(earlier + [today]):
        t0 = d.replace(hour=first.hour, minute=first.minute)
        events, totals = [], []
        for m in range(3):
            w1, w2 = 2 + i + m, 3 * i + m  # site total per minute = w1 + w2
            totals.append(w1 + w2)
            for cam, w in zip(CAMS, (w1, w2)):
                events.append({"kind": "camera", "camera": cam, "site": SITE, "ts": ts(t0 + timedelta(minutes=m)),
                               "waiting": w, "counters_open": 2})
        ingest(url, events)
        expected[d.date().isoformat()] = sum(totals) / len(totals)

    days = [today - timedelta(days=2), today - timedelta(days=1), today]
    dossiers = {0: [], 1: [], 2: []}
    for i, d in enumerate(days):
        for j in range(2 - (i == 1)):  # received: 2, 1, 2
            t = min(d.replace(hour=8, minute=j), ref)
            due = t + timedelta(minutes=29) if (i, j) == (0, 1) else t + timedelta(days=5)  # T-01 will be late
            dossiers[i].append({"kind": "dossier", "dossier": f"T-{i}{j}", "unit": "vinh-yen", "ts": ts(t),
                                "status": "received", "channel": "online", "due": ts(due)})
    # day 1: both of day 0's dossiers processed, T-00 on time and T-01 after its due time
    t1 = days[1].replace(hour=9)
    dossiers[1] += [{"kind": "dossier", "dossier": "T-00", "unit": "vinh-yen", "ts": ts(t1), "status": "processed"},
                    {"kind": "dossier", "dossier": "T-01", "unit": "vinh-yen", "ts": ts(t1 + timedelta(minutes=1)),
                     "status": "processed"}]
    for i in range(3):
        ingest(url, dossiers[i])
    return {"today": today, "earlier": earlier, "hour": first.hour, "queue": expected, "days": days}


def get(url: str, path: str, **params) -> httpx.Response:
    return httpx.get(url + path, params=params, headers=AS_VIEWER, timeout=10)


def test_rain_hyetograph_bars_and_curve_end_at_the_24h_sum(server, fed):
    body = get(server.url, f"/api/trends/rain/{STATION}").json()
    assert body["has_data"] and body["hours"] == 24 and body["watermark"] == ts(NOW - timedelta(minutes=1))
    wet = [b for b in body["bars"] if b["rain_mm"] > 0]
    assert [(b["end"], round(b["rain_mm"], 2)) for b in wet] == [
        (ts(HOUR_END - timedelta(hours=5) + timedelta(hours=1)), 3.5), (ts(HOUR_END - timedelta(hours=1)), 3.0)]
    # clock hours, each bar's end is the next one's start; the curve is the running sum
    assert all(a["end"] == b["start"] for a, b in zip(body["bars"], body["bars"][1:]))
    assert datetime.fromisoformat(body["bars"][1]["start"]).minute == 0
    assert [b["cumulative_mm"] for b in body["bars"]] == sorted(b["cumulative_mm"] for b in body["bars"])
    snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()["indicators"]
    sum24 = next(i["value"] for i in snap if (i["name"], i["window"], i["entity"]) == ("rain_mm", "24h", STATION))
    assert body["total_mm"] == body["bars"][-1]["cumulative_mm"] == sum24 == 6.5
    # the 72 h window also holds the reading of 30 hours ago
    assert get(server.url, f"/api/trends/rain/{STATION}", hours="72").json()["total_mm"] == 13.5
    # a station that never reported: no data, not zero
    silent = get(server.url, "/api/trends/rain/VP-002").json()
    assert silent["has_data"] is False and silent["bars"] == [] and silent["total_mm"] is None


def test_dossiers_per_day_with_roll_up(server, fed):
    days = [d.date().isoformat() for d in fed["days"]]
    for unit in ("vinh-yen", "vinh-phuc"):  # the district and its province (roll-up)
        body = get(server.url, f"/api/trends/dossiers/{unit}").json()
        assert len(body["days"]) == 30 and body["days"][-1]["day"] == days[-1]
        by_day = {d["day"]: d for d in body["days"]}
        assert [by_day[d]["received"] for d in days] == [2, 1, 2], body["days"][-3:]
        assert by_day[days[1]]["processed"] == 2 and by_day[days[1]]["on_time_rate"] == 0.5
        assert by_day[days[0]]["on_time_rate"] is None  # nothing processed that day: no rate, not 0
        assert all(d["source"] in (None, "live") for d in body["days"])
        assert body["received_total"] == 5
    assert len(get(server.url, "/api/trends/dossiers/vinh-yen", days="3").json()["days"]) == 3


def test_queue_today_against_the_median_of_earlier_working_days(server, fed):
    body = get(server.url, f"/api/trends/queue/{SITE}", days="3").json()
    today = fed["today"].date().isoformat()
    assert body["day"] == today and len(body["hours"]) == 24
    assert body["usual_from"] == [d.date().isoformat() for d in fed["earlier"]]
    h = body["hours"][fed["hour"]]
    assert h["hour"] == ts(fed["today"].replace(hour=fed["hour"]))
    assert h["waiting_mean"] == pytest.approx(fed["queue"][today])
    assert h["usual"] == pytest.approx(statistics.median(fed["queue"][d] for d in body["usual_from"]))
    assert h["usual_days"] == 3
    others = [x for i, x in enumerate(body["hours"]) if i != fed["hour"]]
    assert all(x["usual"] is None and x["waiting_mean"] is None for x in others)
    # usual from the latest day only
    one = get(server.url, f"/api/trends/queue/{SITE}", days="1").json()
    assert one["usual_from"] == [fed["earlier"][-1].date().isoformat()]
    assert one["hours"][fed["hour"]]["usual"] == pytest.approx(fed["queue"][one["usual_from"][0]])


@pytest.mark.parametrize("path, params, status, reason", [
    ("/api/trends/rain/NOPE", {}, 404, "not_found"),
    ("/api/trends/dossiers/nope", {}, 404, "not_found"),
    ("/api/trends/queue/nope", {}, 404, "not_found"),
    ("/api/trends/rain/VP-001", {"hours": "0"}, 422, "invalid_value"),
    ("/api/trends/rain/VP-001", {"hours": "73"}, 422, "invalid_value"),
    ("/api/trends/rain/VP-001", {"hours": "1e3"}, 422, "invalid_value"),
    ("/api/trends/dossiers/vinh-yen", {"days": "-1"}, 422, "invalid_value"),
    ("/api/trends/queue/vinh-yen", {"days": "31"}, 422, "invalid_value"),
    ("/api/trends/queue/vinh-yen", {"days": "9" * 5000}, 422, "invalid_value"),
])
def test_bad_requests_get_the_error_shape(server, path, params, status, reason):
    r = get(server.url, path, **params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["reason"] == reason and body["detail"] and body["detail_vi"]


def test_openapi_declares_the_models_and_errors(server):
    doc = httpx.get(server.url + "/openapi.json", headers=AS_VIEWER).json()
    op = doc["paths"]["/api/trends/queue/{site}"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/QueueTrend")
    assert {"401", "403", "404", "422"} <= set(op["responses"])


def test_history_survives_a_crash_restart(server, fed):
    before = [get(server.url, p).json() for p in ("/api/trends/dossiers/vinh-yen", f"/api/trends/queue/{SITE}?days=3",
                                                  f"/api/trends/rain/{STATION}")]
    server.kill()
    server.start()
    after = [get(server.url, p).json() for p in ("/api/trends/dossiers/vinh-yen", f"/api/trends/queue/{SITE}?days=3",
                                                 f"/api/trends/rain/{STATION}")]
    assert after == before
