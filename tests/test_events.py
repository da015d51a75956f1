"""Parsing at the boundary: valid events, and one case per rejection reason."""

import pytest

from ioc.errors import Reason, Rejection
from ioc.events import CameraEvent, DossierEvent, RainEvent, encode_event, parse_body, parse_event, parse_lines

RAIN = b'{"kind":"rain","station":"VP-001","ts":"2026-10-28T13:10:00+07:00","rain_mm":2.4}'


def test_rain_event_parses_with_event_time():
    ev = parse_event(RAIN)
    assert isinstance(ev, RainEvent)
    assert ev.station == "VP-001" and ev.rain_mm == 2.4
    assert ev.t == 1793167800.0  # 06:10 UTC


def test_utc_z_suffix_and_unknown_fields_are_accepted():
    ev = parse_event(b'{"kind":"rain","station":"A","ts":"2026-10-28T06:10:00Z","rain_mm":0,"vendor":"x"}')
    assert isinstance(ev, RainEvent) and ev.t == 1793167800.0


def test_dossier_event_parses_due_time():
    ev = parse_event(
        b'{"kind":"dossier","dossier":"H62.01-261028-0001","unit":"vinh-yen","ts":"2026-10-28T08:00:00+07:00",'
        b'"status":"received","channel":"online","due":"2026-10-30T17:00:00+07:00","fee":true,"digitized":true}'
    )
    assert isinstance(ev, DossierEvent)
    assert ev.channel == "online" and ev.fee is True and ev.paid_online is None
    assert ev.due_t - ev.t == 2 * 86400 + 9 * 3600


def test_camera_event_parses():
    ev = parse_event(b'{"kind":"camera","camera":"cam-1","site":"vy","ts":"2026-10-28T09:00:00+07:00","waiting":12,"counters_open":3}')
    assert isinstance(ev, CameraEvent) and ev.waiting == 12 and ev.counters_open == 3


@pytest.mark.parametrize(
    "raw, reason, feed",
    [
        (b'{"kind":"rain","station":', Reason.BAD_JSON, "rain"),
        (b"not json at all", Reason.BAD_JSON, "unknown"),
        (b"[1, 2]", Reason.NOT_AN_OBJECT, "unknown"),
        (b'{"kind":"snow","ts":"2026-10-28T13:10:00Z"}', Reason.UNKNOWN_KIND, "unknown"),
        (b'{"station":"A","ts":"2026-10-28T13:10:00Z","rain_mm":1}', Reason.UNKNOWN_KIND, "unknown"),
        (b'{"kind":"rain","ts":"2026-10-28T13:10:00Z","rain_mm":1}', Reason.MISSING_FIELD, "rain"),
        (b'{"kind":"rain","station":"A","ts":"2026-10-28T13:10:00Z","rain_mm":"1"}', Reason.WRONG_TYPE, "rain"),
        (b'{"kind":"camera","camera":"c","site":"s","ts":"2026-10-28T13:10:00Z","waiting":1.5,"counters_open":1}', Reason.WRONG_TYPE, "camera"),
        (b'{"kind":"rain","station":"A","ts":"2026-10-28T13:10:00Z","rain_mm":-0.2}', Reason.NEGATIVE_VALUE, "rain"),
        (b'{"kind":"rain","station":"A","ts":"yesterday","rain_mm":1}', Reason.BAD_TIMESTAMP, "rain"),
        (b'{"kind":"rain","station":"A","ts":"2026-10-28T13:10:00","rain_mm":1}', Reason.BAD_TIMESTAMP, "rain"),
        (b'{"kind":"dossier","dossier":"d","unit":"u","ts":"2026-10-28T13:10:00Z","status":"lost"}', Reason.INVALID_VALUE, "dossier"),
        (b'{"kind":"rain","station":"","ts":"2026-10-28T13:10:00Z","rain_mm":1}', Reason.INVALID_VALUE, "rain"),
    ],
)
def test_each_rejection_reason(raw, reason, feed):
    out = parse_event(raw, position=7)
    assert isinstance(out, Rejection)
    assert out.reason == reason, out.detail
    assert out.feed == feed
    assert out.position == 7 and out.raw == raw
    assert out.detail  # a human-readable reason


def test_jsonl_keeps_valid_events_around_bad_ones():
    body = RAIN + b"\n{oops\n\n" + RAIN.replace(b"2.4", b"3.0") + b"\n"
    events, rejections = parse_lines(body.splitlines())
    assert [e.rain_mm for e in events] == [2.4, 3.0]
    assert [(r.position, r.reason) for r in rejections] == [(1, Reason.BAD_JSON)]


def test_body_forms_object_array_jsonl():
    assert len(parse_body(RAIN)[0]) == 1
    events, rejections = parse_body(b"[" + RAIN + b", 5, " + RAIN + b"]")
    assert len(events) == 2 and [(r.position, r.reason) for r in rejections] == [(1, Reason.NOT_AN_OBJECT)]
    assert len(parse_body(RAIN + b"\n" + RAIN)[0]) == 2
    events, rejections = parse_body(b"[" + RAIN)
    assert not events and rejections[0].reason == Reason.BAD_JSON


def test_encode_round_trips_without_derived_fields():
    ev = parse_event(RAIN)
    raw = encode_event(ev)
    assert b'"t"' not in raw
    assert parse_event(raw) == ev
