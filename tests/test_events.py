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


# -- complete validation at the boundary: ranges, timestamps, size, depth ------------------------

from datetime import datetime, timedelta, timezone  # noqa: E402

import msgspec  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ioc import events as E  # noqa: E402
from ioc.events import BodyError, json_depth, parse_items, split_body  # noqa: E402
from ioc.timeutil import format_ts  # noqa: E402


def rain(**over) -> bytes:
    d = {"kind": "rain", "station": "A", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 1.0} | over
    return msgspec.json.encode(d)


def camera(**over) -> bytes:
    d = {"kind": "camera", "camera": "c", "site": "s", "ts": "2026-10-28T13:10:00+07:00", "waiting": 3,
         "counters_open": 2} | over
    return msgspec.json.encode(d)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (rain(rain_mm=100_000.5), Reason.OUT_OF_RANGE),
        (b'{"kind":"rain","station":"A","ts":"2026-10-28T13:10:00Z","rain_mm":1e400}', Reason.OUT_OF_RANGE),
        (b'{"kind":"rain","station":"A","ts":"2026-10-28T13:10:00Z","rain_mm":1e23}', Reason.OUT_OF_RANGE),
        (rain(rain_mm=True), Reason.WRONG_TYPE),
        (camera(waiting=10_001), Reason.OUT_OF_RANGE),
        (camera(waiting=2**63), Reason.OUT_OF_RANGE),
        (b'{"kind":"camera","camera":"c","site":"s","ts":"2026-10-28T13:10:00Z","waiting":' + b"9" * 400
         + b',"counters_open":1}', Reason.OUT_OF_RANGE),
        (camera(waiting=-2**70), Reason.NEGATIVE_VALUE),
        (camera(waiting=1e23), Reason.WRONG_TYPE),
        (camera(waiting=False), Reason.WRONG_TYPE),
        (camera(counters_open=1001), Reason.OUT_OF_RANGE),
        (rain(ts="9999-12-31T23:59:59Z"), Reason.BAD_TIMESTAMP),
        (rain(ts="9999-12-31T23:59:59-12:00"), Reason.BAD_TIMESTAMP),
        (rain(ts="0001-01-01T00:00:00+23:59"), Reason.BAD_TIMESTAMP),
        (rain(ts="1999-12-31T23:59:59Z"), Reason.BAD_TIMESTAMP),
        (rain(ts="2100-01-01T00:00:00Z"), Reason.BAD_TIMESTAMP),
        (rain(ts="2026-10-28T13:10:00+14:01"), Reason.BAD_TIMESTAMP),
        (rain(ts="2026-10-28T13:10:00-23:59"), Reason.BAD_TIMESTAMP),
        (rain(ts=1793167800), Reason.BAD_TIMESTAMP),
        (b'{"kind":"dossier","dossier":"d","unit":"u","ts":"2026-10-28T13:10:00Z","status":"received",'
         b'"due":"9999-01-01T00:00:00Z"}', Reason.BAD_TIMESTAMP),
        (b'{"kind":"dossier","dossier":"d","unit":"u","ts":"2026-10-28T13:10:00Z","status":"received",'
         b'"procedure":"' + b"x" * 201 + b'"}', Reason.INVALID_VALUE),
        (rain(station="x" * 201), Reason.INVALID_VALUE),
        (rain(vendor="x" * E.MAX_EVENT_BYTES), Reason.TOO_LARGE),
        (rain(extra=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]), Reason.TOO_DEEP),
        (rain()[:-1] + b',"x":' + b"[" * 5000 + b"]" * 5000 + b"}", Reason.TOO_DEEP),
        (b"\xff\xfe\x00", Reason.BAD_JSON),
    ],
)
def test_bounds_and_reasons(raw, reason):
    out = parse_event(raw, position=3)
    assert isinstance(out, Rejection), out
    assert out.reason == reason, out.detail
    assert out.position == 3 and len(out.raw) <= E.MAX_EVENT_BYTES


def test_values_at_the_bounds_are_accepted():
    assert parse_event(rain(rain_mm=E.RAIN_MM_MAX)).rain_mm == E.RAIN_MM_MAX
    assert parse_event(rain(rain_mm=0)).rain_mm == 0.0
    ev = parse_event(camera(waiting=E.WAITING_MAX, counters_open=E.COUNTERS_OPEN_MAX))
    assert isinstance(ev, CameraEvent) and ev.waiting == E.WAITING_MAX
    assert parse_event(rain(ts="2000-01-01T00:00:00Z")).t == E.TS_MIN
    assert isinstance(parse_event(rain(ts="2099-12-31T23:59:59.999Z")), RainEvent)
    assert isinstance(parse_event(rain(ts="2026-10-28T13:10:00+14:00")), RainEvent)
    assert isinstance(parse_event(rain(ts="2026-10-28T13:10:00-12:00")), RainEvent)
    nested = rain(extra={"a": [{"b": [1, 2, {"c": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]}]})
    assert isinstance(parse_event(nested), RainEvent)  # brackets inside strings do not count
    assert isinstance(parse_event(rain(extra=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])), RainEvent)


def test_json_depth():
    assert json_depth(b"{}") == 1 and json_depth(b'{"a":[1,{"b":2}]}') == 3
    assert json_depth(b'{"a":"]]]}}}[[["}') == 1
    assert json_depth(b'"a\\"[["') == 0
    assert json_depth(b"[" * 100 + b"]" * 100) == E.MAX_DEPTH + 1  # counting stops past the limit


def test_fast_and_slow_paths_agree_and_give_positions():
    good = [rain(rain_mm=float(i)) for i in range(5)]
    ev, pos, rej = parse_items(good, 10)
    assert [e.rain_mm for e in ev] == [0, 1, 2, 3, 4] and pos == [10, 11, 12, 13, 14] and not rej
    mixed = [good[0], b"", rain(rain_mm=-1), rain(extra=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]), good[1]]
    ev, pos, rej = parse_items(mixed)
    assert pos == [0, 4] and [(r.position, r.reason) for r in rej] == [(2, Reason.NEGATIVE_VALUE), (3, Reason.TOO_DEEP)]


def test_split_body_forms_and_limits():
    assert split_body(b"  \n ") == []
    assert split_body(RAIN) == [RAIN]
    pretty = b'{\n  "kind": "rain",\n  "station": "A",\n  "ts": "2026-10-28T13:10:00Z",\n  "rain_mm": 1\n}\n'
    assert len(split_body(pretty)) == 1 and isinstance(parse_event(split_body(pretty)[0]), RainEvent)
    assert split_body(RAIN + b"\n\n" + RAIN) == [RAIN, b"", RAIN]  # blank lines keep their position
    assert split_body(b"[" + RAIN + b"," + RAIN + b"]") == [RAIN, RAIN]
    for body, reason in [(b"[" + RAIN, Reason.BAD_JSON), (b"[" * 3000 + b"]" * 3000, Reason.TOO_DEEP),
                         (b"[" + b"{}," * (E.MAX_ARRAY_BODY_BYTES // 3) + b"{}]", Reason.TOO_LARGE),
                         (b"[1,2,3]", Reason.TOO_LARGE), (b"{}\n{}\n{}\n{}", Reason.TOO_LARGE)]:
        with pytest.raises(BodyError) as exc:
            split_body(body, max_items=2 if body.count(b"{}") < 5 else None)
        assert exc.value.reason == reason


_DT = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                   timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439)))
_NUM = st.one_of(st.integers(min_value=-(2**80), max_value=2**80), st.floats(allow_nan=False, allow_infinity=False),
                 st.booleans(), st.none(), st.text(max_size=5))


@settings(derandomize=True, max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["rain", "camera", "dossier"]), ts=_DT, due=_DT, a=_NUM, b=_NUM)
def test_whatever_is_accepted_is_inside_the_bounds(kind, ts, due, a, b):
    ts_text = ts.isoformat()
    if kind == "rain":
        d = {"kind": kind, "station": "A", "ts": ts_text, "rain_mm": a}
    elif kind == "camera":
        d = {"kind": kind, "camera": "c", "site": "s", "ts": ts_text, "waiting": a, "counters_open": b}
    else:
        d = {"kind": kind, "dossier": "d", "unit": "u", "ts": ts_text, "status": "received", "due": due.isoformat()}
    raw = msgspec.json.encode(d)
    for out in (parse_event(raw), *parse_items([raw, raw])[0]):  # the per-event and the batch paths
        if isinstance(out, Rejection):
            assert out.reason in set(Reason) and out.detail
            continue
        assert E.TS_MIN <= out.t < E.TS_MAX
        format_ts(out.t)  # round-trips in local time
        assert abs(out.ts.utcoffset().total_seconds()) <= E.MAX_UTC_OFFSET_S
        if isinstance(out, RainEvent):
            assert 0 <= out.rain_mm <= E.RAIN_MM_MAX and not isinstance(a, bool)
        elif isinstance(out, CameraEvent):
            assert 0 <= out.waiting <= E.WAITING_MAX and 0 <= out.counters_open <= E.COUNTERS_OPEN_MAX
        else:
            assert E.TS_MIN <= out.due_t < E.TS_MAX
        assert parse_event(encode_event(out)) == out


@settings(derandomize=True, max_examples=400, deadline=None, database=None)
@given(st.binary(max_size=300) | st.text(max_size=200))
def test_parsing_never_raises_on_any_bytes(raw):
    out = parse_event(raw)
    assert isinstance(out, (Rejection, RainEvent, DossierEvent, CameraEvent))
    b = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    events, rejections = parse_body(b)
    assert all(isinstance(r, Rejection) for r in rejections)
