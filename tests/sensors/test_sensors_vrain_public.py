"""The Vrain public per-province shape and the partner API (x-api-key), against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ioc.errors import Reason
from ioc.timeutil import format_ts, parse_ts
from sensors.sink import CollectingSink
from sensors.vrain import VrainPoller, load_station_map, parse_public

KEY = "k-3f9a-partner-secret"
UUIDS = {"a1b2c3d4-0001": "VP-001", "a1b2c3d4-0002": "VP-002"}


def T(hhmm: str, day: int = 28) -> float:
    return parse_ts(f"2026-10-{day:02d}T{hhmm}:00+07:00")


def item(uuid: str, depth, name: str = "Trạm") -> dict:
    return {"station": {"uuid": uuid, "name": name, "address": "Vĩnh Phúc", "lat": 21.3, "lng": 105.6},
            "sumDepth": depth, "level": 0, "color": "#9ee3ff"}


class PublicVrain:
    """A local peer speaking the public shape; 401 unless `x-api-key` is the partner key."""

    def __init__(self) -> None:
        self.body = b"[]"
        self.keys: list[str | None] = []
        self.times: list[float] = []  # monotonic arrival of each request
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                key = self.headers.get("x-api-key")
                with peer.lock:
                    peer.keys.append(key)
                    peer.times.append(time.monotonic())
                    body, status = (peer.body, 200) if key == KEY else (b'{"message": "Unauthorized"}', 401)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/province/vinh-phuc"

    def serve(self, items: list) -> None:
        with self.lock:
            self.body = json.dumps(items, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def peer():
    p = PublicVrain()
    yield p
    p.server.shutdown()
    p.server.server_close()


def test_public_shape_polls_reset_decrease_unmapped(peer):
    """18:50 → 19:15 through the real HTTP peer: deltas, the 19:00 reset, a decrease, one unmapped report."""
    U1, U2 = "a1b2c3d4-0001", "a1b2c3d4-0002"
    polls = [
        ("18:50", [item(U1, 60.0), item(U2, 3.0), item("zz-unmapped", 5.0, "Trạm lạ")]),
        ("18:55", [item(U1, 62.5), item(U2, 3.0), item("zz-unmapped", 5.5, "Trạm lạ")]),
        ("19:05", [item(U1, 1.2), item(U2, 0.0)]),  # reset at 19:00: the value is rain since 19:00
        ("19:10", [item(U1, 0.4), item(U2, 0.6), item("zz-unmapped", 0.2, "Trạm lạ")]),  # U1 decreased
        ("19:15", [item(U1, 0.9), {"station": {"uuid": U2}, "sumDepth": "wet"}, item("VP-003", 2.0)]),
        ("19:20", [item(U1, 1.0), item(U2, None), item("VP-003", 2.5)]),  # U2 no data now
    ]
    now = [0.0]
    sink = CollectingSink()

    async def main():
        poller = VrainPoller(peer.url, sink, station_ids=UUIDS, known_stations={"VP-001", "VP-002", "VP-003"},
                             api_key=KEY, clock=lambda: now[0])
        try:
            for hhmm, items in polls:
                peer.serve(items)
                now[0] = T(hhmm) + 0.4  # the poll time, floored to the second
                await poller.poll_once()
        finally:
            await poller.aclose()
            poller.close_log_masks()
        return poller

    poller = asyncio.run(main())
    got = [(e.station, format_ts(e.t)[11:19], e.rain_mm) for e in sink.events]
    assert got == [
        ("VP-001", "18:55:00", pytest.approx(2.5)), ("VP-002", "18:55:00", 0.0),
        ("VP-001", "19:05:00", pytest.approx(1.2)), ("VP-002", "19:05:00", 0.0),
        ("VP-002", "19:10:00", pytest.approx(0.6)),
        ("VP-001", "19:15:00", pytest.approx(0.5)),  # re-based on 0.4 after the decrease: never negative
        ("VP-001", "19:20:00", pytest.approx(0.1)), ("VP-003", "19:20:00", pytest.approx(0.5)),
    ]
    assert all(e.rain_mm >= 0 for e in sink.events)
    reasons = [(r.reason, r.position) for r in sink.rejections]
    assert reasons == [(Reason.INVALID_VALUE, 2), (Reason.INVALID_VALUE, -1), (Reason.WRONG_TYPE, 1)]
    unmapped, decreased, wet = sink.rejections
    assert "zz-unmapped (Trạm lạ) is not mapped" in unmapped.detail  # reported once, seen 3 times
    assert "decreased from 1.2 to 0.4" in decreased.detail
    assert b'"wet"' in wet.raw
    assert poller.stats.unmapped_readings == 3 and poller.unmapped == {"zz-unmapped": "Trạm lạ"}
    assert poller.stats.no_data == 1 and poller.differ.stats.resets == 2
    assert set(peer.keys[-len(polls):]) == {KEY}


@pytest.mark.parametrize("api_key,expected", [
    (None, "HTTP 401: no API key was sent: set IOC_VRAIN_API_KEY"),
    ("wrong-key-77", "HTTP 401: the API key was refused (x-api-key header)"),
])
def test_missing_or_wrong_key_is_clear_and_retried_with_backoff(peer, caplog, api_key, expected):
    caplog.set_level(logging.DEBUG)
    peer.serve([item("a1b2c3d4-0001", 1.0)])
    start = len(peer.keys)

    async def main():
        poller = VrainPoller(peer.url + f"?apikey={api_key}", CollectingSink(), interval_s=300, api_key=api_key,
                             retry_min_s=0.02, retry_max_s=0.16)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        for _ in range(1000):  # until 6 tries (a loaded machine only makes the gaps longer)
            if len(peer.keys) - start >= 6:
                break
            await asyncio.sleep(0.01)
        assert not task.done()  # still running, retrying
        stop.set()
        await asyncio.wait_for(task, 5)
        poller.close_log_masks()
        return poller

    poller = asyncio.run(main())
    tries = len(peer.keys) - start
    gaps = [b - a for a, b in zip(peer.times[start:], peer.times[start + 1:start + 6])]
    # backoff 0.02, 0.04, 0.08, 0.16, 0.16 s: each gap at least its delay (a tight loop would be ~1 ms)
    assert tries >= 6 and all(g >= d - 0.005 for g, d in zip(gaps, (0.02, 0.04, 0.08, 0.16, 0.16))), gaps
    assert set(peer.keys[start:]) == {api_key}
    assert poller.stats.last_error == expected and poller.stats.http_errors == tries
    assert poller.stats.consecutive_failures == tries and poller.retry_delay_s() == 0.16
    assert expected in caplog.text
    assert caplog.text.count(expected) == 1  # logged once per change, not every retry
    if api_key:
        assert api_key not in caplog.text and "apikey=***" in caplog.text  # httpx's own URL log is masked
        assert api_key not in repr(poller)


@pytest.mark.parametrize("body,reason", [
    (b'[1, {"station": {"uuid": "a1b2c3d4-0001"}, "sumDepth": 2.0}]', Reason.NOT_AN_OBJECT),
    (b'[{"station": {"name": "x"}, "sumDepth": 2.0}, {"station": {"uuid": "a1b2c3d4-0001"}, "sumDepth": 2.0}]',
     Reason.MISSING_FIELD),
    (b'[{"station": {"uuid": "a1b2c3d4-0002"}}, {"station": {"uuid": "a1b2c3d4-0001"}, "sumDepth": 2.0}]',
     Reason.MISSING_FIELD),
])
def test_bad_items_are_rejected_and_the_rest_kept(body, reason):
    p = parse_public(body, UUIDS)
    assert p.readings == {"VP-001": 2.0} and [(r.reason, r.position) for r in p.rejections] == [(reason, 0)]


@pytest.mark.parametrize("body,reason", [
    (b"[{not json", Reason.BAD_JSON),
    (b"[" * 100_000 + b"]" * 100_000, Reason.TOO_DEEP),
    (b"[" + b" " * (17 << 20) + b"]", Reason.TOO_LARGE),
])
def test_bad_public_bodies(body, reason):
    p = parse_public(body, UUIDS)
    assert p.readings == {} and [(r.reason, r.position) for r in p.rejections] == [(reason, -1)]


def test_station_map_file(tmp_path):
    f = tmp_path / "vrain-stations.yaml"
    f.write_text("stations:\n  a1b2c3d4-0001: VP-001\n  '42': VP-002\n", encoding="utf-8")
    assert load_station_map(f) == {"a1b2c3d4-0001": "VP-001", "42": "VP-002"}
    f.write_text("stations:\n  a1b2c3d4-0001: [VP-001]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"stations\[a1b2c3d4-0001\] must be a catalog station id"):
        load_station_map(f)
    with pytest.raises(ValueError, match="vrain station map"):
        load_station_map(tmp_path / "missing.yaml")


def test_restart_keeps_the_previous_accumulation(peer, tmp_path):
    """A restarted poller differences against the last poll before the restart: no skip, no double count."""
    state = tmp_path / "vrain-state.json"
    now = [0.0]

    async def run_polls(polls, sink):
        poller = VrainPoller(peer.url, sink, station_ids=UUIDS, api_key=KEY, clock=lambda: now[0], state_path=state)
        try:
            for hhmm, mm in polls:
                peer.serve([item("a1b2c3d4-0001", mm)])
                now[0] = T(hhmm)
                await poller.poll_once()
        finally:
            await poller.aclose()
            poller.close_log_masks()

    before, after = CollectingSink(), CollectingSink()
    asyncio.run(run_polls([("13:00", 10.0), ("13:05", 12.0)], before))
    asyncio.run(run_polls([("13:10", 13.5)], after))  # a new process, same data dir
    assert [(e.station, e.t, e.rain_mm) for e in before.events] == [("VP-001", T("13:05"), 2.0)]
    assert [(e.station, e.t, e.rain_mm) for e in after.events] == [("VP-001", T("13:10"), 1.5)]
    state.write_text("{broken", encoding="utf-8")
    fresh = CollectingSink()
    asyncio.run(run_polls([("13:15", 14.0), ("13:20", 14.2)], fresh))  # unreadable state: set aside, first poll skipped
    assert [(e.t, e.rain_mm) for e in fresh.events] == [(T("13:20"), pytest.approx(0.2))]
    assert (tmp_path / "vrain-state.json.unreadable").read_text() == "{broken"
