"""Vrain-style differencing (table tests) and the poller against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ioc.errors import Reason
from ioc.timeutil import format_ts, parse_ts
from sensors.sink import CollectingSink
from sensors.vrain import VrainPoller, parse_snapshot
from sensors.vrain_diff import VrainDiffer


def T(hhmm: str, day: int = 28) -> float:
    return parse_ts(f"2026-10-{day:02d}T{hhmm}:00+07:00")


# (case, polls [(time, {station: accumulated mm})], expected [(station, time, mm)], rejected reasons, options)
CASES = [
    ("first poll emits nothing", [(T("13:00"), {"A": 12.0})], [], [], {}),
    ("first poll since_reset option", [(T("13:00"), {"A": 12.0})], [("A", T("13:00"), 12.0)], [], {"first_poll": "since_reset"}),
    ("deltas incl. zero",
     [(T("13:00"), {"A": 12.0}), (T("13:05"), {"A": 14.4}), (T("13:10"), {"A": 14.4})],
     [("A", T("13:05"), 2.4), ("A", T("13:10"), 0.0)], [], {}),
    ("missed poll: longer interval, one reading",
     [(T("13:00"), {"A": 1.0}), (T("13:15"), {"A": 7.0})], [("A", T("13:15"), 6.0)], [], {}),
    ("station absent from a poll",
     [(T("13:00"), {"A": 1.0, "B": 0.0}), (T("13:05"), {"B": 0.2}), (T("13:10"), {"A": 3.0, "B": 0.2})],
     [("B", T("13:05"), 0.2), ("A", T("13:10"), 2.0), ("B", T("13:10"), 0.0)], [], {}),
    ("19:00 reset: new value is rain since 19:00",
     [(T("18:50"), {"A": 80.0}), (T("18:55"), {"A": 81.0}), (T("19:05"), {"A": 1.5}), (T("19:10"), {"A": 2.0})],
     [("A", T("18:55"), 1.0), ("A", T("19:05"), 1.5), ("A", T("19:10"), 0.5)], [], {}),
    ("poll exactly at 19:00 belongs to the new rain day",
     [(T("18:55"), {"A": 40.0}), (T("19:00"), {"A": 0.0}), (T("19:05"), {"A": 0.4})],
     [("A", T("19:00"), 0.0), ("A", T("19:05"), 0.4)], [], {}),
    ("reset with a value that grew past the old one",
     [(T("18:55"), {"A": 3.0}), (T("19:10"), {"A": 5.0})], [("A", T("19:10"), 5.0)], [], {}),
    ("decrease outside 19:00 rejected, then re-based",
     [(T("13:00"), {"A": 10.0}), (T("13:05"), {"A": 4.0}), (T("13:10"), {"A": 4.6})],
     [("A", T("13:10"), 0.6)], [Reason.INVALID_VALUE], {}),
    ("tiny decrease within tolerance is 0 mm",
     [(T("13:00"), {"A": 10.0}), (T("13:05"), {"A": 9.98})], [("A", T("13:05"), 0.0)], [], {}),
    ("repeated snapshot ignored",
     [(T("13:00"), {"A": 1.0}), (T("13:05"), {"A": 2.0}), (T("13:05"), {"A": 2.0}), (T("13:00"), {"A": 1.0})],
     [("A", T("13:05"), 1.0)], [], {}),
    ("gap beyond max_gap_s re-bases silently",
     [(T("08:00"), {"A": 1.0}), (T("12:00"), {"A": 30.0}), (T("12:05"), {"A": 31.0})],
     [("A", T("12:05"), 1.0)], [], {}),
    ("negative and non-finite values rejected",
     [(T("13:00"), {"A": -1.0, "B": float("nan")}), (T("13:05"), {"A": 1.0, "B": 1.0})], [],
     [Reason.NEGATIVE_VALUE, Reason.INVALID_VALUE], {}),
    ("poll time outside the accepted years: rejected, nothing remembered",
     [(parse_ts("9999-12-31T12:00:00+00:00"), {"A": 1.0}), (T("13:00"), {"A": 2.0}), (T("13:05"), {"A": 2.5})],
     [("A", T("13:05"), 0.5)], [Reason.BAD_TIMESTAMP], {}),
    ("a delta beyond the rain bound is refused, the station re-based",
     [(T("13:00"), {"A": 1.0}), (T("13:05"), {"A": 1e12}), (T("13:10"), {"A": 1e12 + 1})],
     [("A", T("13:10"), 1.0)], [Reason.OUT_OF_RANGE], {}),
]


@pytest.mark.parametrize("name,polls,expected,reasons,opts", CASES, ids=[c[0] for c in CASES])
def test_differencing(name, polls, expected, reasons, opts):
    d = VrainDiffer(**opts)
    got, rej = [], []
    for t, readings in polls:
        ev, rj = d.update(t, readings)
        got += [(e.station, e.t, e.rain_mm) for e in ev]
        rej += [r.reason for r in rj]
    assert [(s, t, pytest.approx(mm)) for s, t, mm in expected] == got
    assert rej == reasons
    for s, t, mm in got:
        assert mm >= 0


def test_parse_snapshot_bad_entries():
    body = json.dumps({
        "time": "2026-10-28T13:10:00+07:00",
        "stations": [
            {"id": "X1", "name": "a", "lat": 21.3, "lon": 105.6, "rain_since_19h_mm": 1.2},
            {"id": "X2", "name": "b"},
            {"id": "X3", "rain_since_19h_mm": "wet"},
            {"id": "X4", "rain_since_19h_mm": 0.4, "time": "2026-10-28T13:08:00+07:00"},
        ],
    }).encode()
    by_time, raws, rej = parse_snapshot(body, {"X1": "VP-001"})
    assert by_time == {T("13:10"): {"VP-001": 1.2}, T("13:08"): {"X4": 0.4}}
    assert [(r.reason, r.position) for r in rej] == [(Reason.MISSING_FIELD, 1), (Reason.WRONG_TYPE, 2)]
    assert parse_snapshot(b"{not json", None)[2][0].reason == Reason.BAD_JSON
    naive = json.dumps({"time": "2026-10-28T13:10:00", "stations": []}).encode()
    assert parse_snapshot(naive, None)[2][0].reason == Reason.BAD_TIMESTAMP


@pytest.mark.parametrize("body,reason", [
    (json.dumps({"time": "9999-12-31T23:59:59-12:00", "stations": []}).encode(), Reason.BAD_TIMESTAMP),
    (b'{"time": "2026-10-28T13:10:00+07:00", "stations": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", Reason.TOO_DEEP),
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, Reason.TOO_DEEP),
    (b" " * (17 << 20), Reason.TOO_LARGE),
    (b"[]", Reason.NOT_AN_OBJECT),
])
def test_parse_snapshot_never_raises(body, reason):
    by_time, _, rej = parse_snapshot(body, None)
    assert by_time == {} and [r.reason for r in rej] == [reason]


def test_parse_snapshot_station_time_outside_the_window():
    body = json.dumps({"time": "2026-10-28T13:10:00+07:00", "stations": [
        {"id": "A", "rain_since_19h_mm": 1.0, "time": "1900-01-01T00:00:00+07:00"},
        {"id": "B", "rain_since_19h_mm": 2.0}]}).encode()
    by_time, _, rej = parse_snapshot(body, None)
    assert by_time == {T("13:10"): {"B": 2.0}} and [(r.reason, r.position) for r in rej] == [(Reason.BAD_TIMESTAMP, 0)]


# -- the poller against a real HTTP server ----------------------------------------------------------


def snap(hhmm: str, values: dict) -> bytes:
    return json.dumps({
        "time": format_ts(T(hhmm)),
        "stations": [
            {"id": k, "name": f"Trạm {k}", "lat": 21.3, "lon": 105.6, "rain_since_19h_mm": v} for k, v in values.items()
        ],
    }, ensure_ascii=False).encode()


RECORDED: list[tuple[int, bytes]] = [
    (200, snap("18:50", {"vr-1": 60.0, "vr-2": 3.0})),
    (200, snap("18:55", {"vr-1": 62.5, "vr-2": 3.0})),
    (200, snap("19:05", {"vr-1": 1.2, "vr-2": 0.0})),  # counter reset at 19:00 (19:00 poll missed)
    (503, b"maintenance"),  # 19:10 failed poll
    (200, snap("19:15", {"vr-1": 4.0, "vr-2": 0.4, "vr-3": 7.0})),  # vr-1 covers 10 min; vr-3 first seen
    (200, snap("19:20", {"vr-1": 3.0, "vr-3": 7.5})),  # vr-1 decreased: rejected; vr-2 absent
    (200, snap("19:25", {"vr-1": 3.5, "vr-2": 1.0, "vr-3": 8.0})),
]
EXPECTED = [
    ("VP-001", "18:55", 2.5), ("VP-002", "18:55", 0.0),
    ("VP-001", "19:05", 1.2), ("VP-002", "19:05", 0.0),
    ("VP-001", "19:15", 2.8), ("VP-002", "19:15", 0.4),
    ("VP-003", "19:20", 0.5),
    ("VP-001", "19:25", 0.5), ("VP-002", "19:25", 0.6), ("VP-003", "19:25", 0.5),
]


@pytest.fixture
def vrain_server():
    served: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            with lock:
                i = min(len(served), len(RECORDED) - 1)
                served.append(self.headers.get("X-Api-Key", ""))
            status, body = RECORDED[i]
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/rain?key=secret", served
    finally:
        server.shutdown()
        server.server_close()


def test_poller_against_real_http_server(vrain_server, caplog):
    url, served = vrain_server
    sink = CollectingSink()
    ids = {"vr-1": "VP-001", "vr-2": "VP-002", "vr-3": "VP-003"}

    async def main():
        poller = VrainPoller(url, sink, interval_s=0.01, station_ids=ids, headers={"X-Api-Key": "k"})
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        for _ in range(500):
            if len(served) >= len(RECORDED):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        return poller

    poller = asyncio.run(main())
    assert len(served) >= len(RECORDED) and served[0] == "k"
    n = len(EXPECTED)
    got = [(e.station, format_ts(e.t)[11:16], e.rain_mm) for e in sink.events[:n]]
    assert got == [(s, t, pytest.approx(mm)) for s, t, mm in EXPECTED]
    # replays of the last snapshot after the recording ends add nothing
    assert len(sink.events) == n
    assert [r.reason for r in sink.rejections] == [Reason.INVALID_VALUE]
    assert "decreased" in sink.rejections[0].detail
    assert poller.stats.http_errors == 1 and poller.stats.last_error == "HTTP 503"
    assert "secret" not in caplog.text


def test_poll_once_raises_on_connection_error():
    import httpx

    async def main():
        poller = VrainPoller("http://127.0.0.1:9/", CollectingSink(), timeout_s=1.0)
        try:
            with pytest.raises(httpx.HTTPError):
                await poller.poll_once()
        finally:
            await poller.aclose()

    asyncio.run(main())


def test_differ_state_round_trip_skips_malformed_entries():
    d = VrainDiffer()
    d.update(T("13:00"), {"A": 4.0, "B": 1.0})
    state = d.get_state()
    e = VrainDiffer()
    kept = e.set_state({**state, "C": [T("13:00"), -1.0, 0.0], "D": "x", "E": [float("nan"), 1.0, 0.0]})
    assert kept == 2 and e.get_state() == state
    ev, _ = e.update(T("13:05"), {"A": 4.5, "C": 2.0})
    assert [(x.station, x.rain_mm) for x in ev] == [("A", 0.5)]  # C was refused: first seen, nothing emitted
