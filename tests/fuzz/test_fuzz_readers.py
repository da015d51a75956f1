"""Property tests of the file and MQTT readers: whatever the bytes, no exception escapes.

- JSONL reader (sensors.replay.iter_batches): random bytes, long lines, deep
  nesting and valid events mixed in one file; gzip files cut or corrupted at
  any byte.  Every non-blank line has exactly one outcome, an event or a
  rejection carrying its 1-based line number; valid lines around bad ones
  are read.
- SensorThings converter (sensors.sensorthings.convert): random JSON values,
  Observation-shaped objects with random fields, random bytes and topics.
  The answer is a RainEvent inside the documented bounds or a Rejection with
  a reason from the vocabulary; an Observation update (same @iot.id) keeps
  the reading's (station, ts).

Derandomized and bounded, so the suite is fast and reproducible.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sensors.replay as reader
from ioc.errors import Reason, Rejection
from ioc.events import RainEvent, encode_event
from ioc.timeutil import format_ts
from sensors.replay import MAX_DEPTH, iter_batches
from sensors.sensorthings import ObservationIdentity, convert, load_datastream_map

FAST = settings(
    derandomize=True, max_examples=60, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REASONS = {str(r) for r in Reason} | {"too_large", "too_deep", "out_of_range", "unreadable"}
T0 = 1793167800.0  # 2026-10-28T13:10:00+07:00


@contextmanager
def small_limits(line_bytes: int = 400, block: int = 97):
    """A short line limit and an odd read size, so oversized lines and block edges are common."""
    with mock.patch.object(reader, "MAX_LINE_BYTES", line_bytes), mock.patch.object(reader, "BLOCK_BYTES", block):
        yield


# -- line strategies -----------------------------------------------------------
def _rain(i: int) -> bytes:
    return encode_event(RainEvent(station=f"VP-{i % 7:03d}", ts=_ts(T0 + 300 * i), rain_mm=round(i % 13 * 0.1, 1)))


def _ts(t: float):
    from datetime import datetime

    from ioc.timeutil import LOCAL_TZ

    return datetime.fromtimestamp(t, LOCAL_TZ)


def _nested(depth: int) -> bytes:
    """A valid rain event whose extra field makes the whole line `depth` levels deep (the event is level 1)."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return (b'{"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 1.0, "x": '
            + inner.encode() + b"}") if depth > 1 else _rain(0)


junk = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b" "))
json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
).map(lambda v: json.dumps(v).encode())
near_miss = st.builds(
    lambda ts, mm, kind: json.dumps({"kind": kind, "station": "VP-001", "ts": ts, "rain_mm": mm}).encode(),
    st.sampled_from(["2026-10-28T13:10:00+07:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00",
                     "2026-10-28T13:10:00", "2026-13-40T99:00:00Z", "", "1e400"]),
    st.one_of(st.floats(allow_nan=False), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=5)),
    st.sampled_from(["rain", "snow", "camera", ""]),
)
line_kind = st.one_of(
    st.integers(0, 10_000).map(lambda i: ("ok", _rain(i))),
    junk.map(lambda b: ("any", b)),
    json_junk.map(lambda b: ("any", b)),
    near_miss.map(lambda b: ("any", b)),
    st.integers(1, 80).map(lambda d: ("ok" if d <= MAX_DEPTH else "deep", _nested(d))),
    st.integers(401, 3000).map(lambda n: ("long", b'{"kind": "rain", "pad": "' + b"x" * n + b'"}')),
    st.just(("blank", b"")),
    st.just(("blank", b"  \t\r")),
)


def _outcomes(batches):
    events: dict[int, object] = {}
    rejections: dict[int, Rejection] = {}
    for b in batches:
        assert len(b.events) == len(b.positions)
        for ev, pos in zip(b.events, b.positions):
            assert pos not in events and pos not in rejections
            events[pos] = ev
        for r in b.rejections:
            assert r.position not in events and r.position not in rejections, r
            assert str(r.reason) in REASONS and r.detail
            rejections[r.position] = r
    return events, rejections


@FAST
@given(lines=st.lists(line_kind, max_size=40), batch=st.integers(1, 9), newline_at_end=st.booleans())
def test_jsonl_reader_reports_every_bad_line_and_keeps_the_good_ones(tmp_path_factory, lines, batch, newline_at_end):
    path = tmp_path_factory.mktemp("fuzz") / "mixed.jsonl"
    data = b"\n".join(raw for _, raw in lines) + (b"\n" if newline_at_end and lines else b"")
    path.write_bytes(data)
    with small_limits():
        batches = list(iter_batches([path], batch_size=batch))
    assert all(b.error is None for b in batches)
    assert sum(b.lines for b in batches) == len(lines) - (1 if lines and not newline_at_end and lines[-1][1] == b"" else 0)
    events, rejections = _outcomes(batches)
    for n, (kind, raw) in enumerate(lines, 1):
        if kind == "blank" or not raw.strip():
            assert n not in events and n not in rejections
        elif kind == "ok":
            assert n in events, (n, raw, rejections.get(n))
            assert encode_event(events[n]) == encode_event(msgspec.json.decode(raw, type=type(events[n])))
        elif kind == "deep":
            assert str(rejections[n].reason) == "too_deep"
        elif kind == "long":
            assert str(rejections[n].reason) == "too_large" and rejections[n].raw == b""
        else:
            assert (n in events) != (n in rejections)
    for ev in events.values():
        format_ts(ev.t)  # every event the reader lets through is representable


@settings(derandomize=True, max_examples=25, deadline=None, database=None)
@given(depth=st.integers(1, 3000))
def test_nesting_is_refused_past_the_limit_and_never_raises(tmp_path_factory, depth):
    path = tmp_path_factory.mktemp("deep") / "deep.jsonl"
    obj = b'{"a": ' * depth + b"1" + b"}" * depth
    path.write_bytes(_rain(1) + b"\n" + _nested(min(depth, 100)) + b"\n" + obj + b"\n" + _rain(2) + b"\n")
    events, rejections = _outcomes(iter_batches([path]))
    assert 1 in events and 4 in events
    assert (2 in events) == (min(depth, 100) <= MAX_DEPTH)
    assert 3 in rejections  # an object without kind: unknown_kind / too_deep, never an exception


GZ_LINES = [_rain(i) for i in range(400)]
GZ_BYTES = gzip.compress(b"\n".join(GZ_LINES) + b"\n", mtime=0)


@FAST
@given(cut=st.integers(0, len(GZ_BYTES)), batch=st.integers(1, 500))
def test_truncated_gzip_yields_the_lines_before_and_one_error(tmp_path_factory, cut, batch):
    path = tmp_path_factory.mktemp("gz") / "cut.jsonl.gz"
    path.write_bytes(GZ_BYTES[:cut])
    with small_limits(line_bytes=1 << 20, block=512):
        batches = list(iter_batches([path], batch_size=batch))
    errors = [b.error for b in batches if b.error]
    events, rejections = _outcomes(batches)
    unreadable = [r for r in rejections.values() if str(r.reason) == "unreadable"]
    if cut in (0, len(GZ_BYTES)):  # an empty file is an empty stream; the whole file is whole
        assert not errors and len(events) == (len(GZ_LINES) if cut else 0)
        return
    assert len(errors) == 1 and len(unreadable) == 1 and batches[-1].error == errors[0]
    k = len(events)
    assert sorted(events) == list(range(1, k + 1))  # a prefix, in order, nothing invented
    assert [encode_event(events[i]) for i in range(1, k + 1)] == GZ_LINES[:k]
    if cut >= 2:
        assert f"after line {k}" in errors[0] or "not a gzip file" in errors[0]


@FAST
@given(at=st.integers(0, len(GZ_BYTES) - 1), xor=st.integers(1, 255))
def test_corrupt_gzip_never_raises(tmp_path_factory, at, xor):
    path = tmp_path_factory.mktemp("gz") / "bad.jsonl.gz"
    data = bytearray(GZ_BYTES)
    data[at] ^= xor
    path.write_bytes(bytes(data))
    batches = list(iter_batches([path], batch_size=128))
    _outcomes(batches)
    assert sum(1 for b in batches if b.error) <= 1


@FAST
@given(data=st.binary(max_size=3000), gz=st.booleans())
def test_random_bytes_files_never_raise(tmp_path_factory, data, gz):
    path = tmp_path_factory.mktemp("bytes") / ("r.jsonl.gz" if gz else "r.jsonl")
    path.write_bytes(data)
    with small_limits(line_bytes=300, block=64):
        events, rejections = _outcomes(iter_batches([path], batch_size=7))
    if not gz:
        assert set(events) | set(rejections) <= set(range(1, data.count(b"\n") + 2))


def test_missing_and_directory_inputs_are_one_rejection_each(tmp_path):
    good = tmp_path / "g.jsonl"
    good.write_bytes(_rain(1) + b"\n")
    batches = list(iter_batches([tmp_path / "nope.jsonl", tmp_path, good]))
    assert [b.opened for b in batches] == [False, False, True]
    assert "No such file" in batches[0].error and "is a directory" in batches[1].error
    assert [str(r.reason) for b in batches[:2] for r in b.rejections] == ["unreadable", "unreadable"]
    assert len(batches[2].events) == 1


def test_oversized_line_is_never_held_in_memory(tmp_path):
    """A 20 MB line: refused as too_large while reading at most a block plus the limit at a time."""
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        f.write(_rain(1) + b"\n")
        f.write(b'{"kind": "rain", "x": "' + b"y" * (20 << 20) + b'"}\n')
        f.write(_rain(2) + b"\n")
    sizes: list[int] = []
    real = reader._iter_lines

    def spy(f, limit, block):
        for item in real(f, limit, block):
            sizes.append(len(item) if isinstance(item, bytes) else 0)
            yield item

    with mock.patch.object(reader, "_iter_lines", spy):
        events, rejections = _outcomes(iter_batches([path]))
    assert sorted(events) == [1, 3] and str(rejections[2].reason) == "too_large"
    assert max(sizes) < 1000


# -- SensorThings ----------------------------------------------------------------
DS = load_datastream_map({"17": {"station": "VP-001"}, "18": {"station": "VP-002", "factor": 0.2},
                          "big": {"station": "VP-003", "factor": 1e300}})
TOPICS = st.sampled_from(["v1.1/Datastreams(17)/Observations"] * 4 + ["v1.1/Datastreams(18)/Observations",
                          "v1.1/Datastreams('big')/Observations", "v1.1/Datastreams(99)/Observations",
                          "v1.1/Things(1)/Locations", ""])
times = st.one_of(
    st.sampled_from(["2026-10-28T13:10:00+07:00"] * 6 + ["2026-10-28T13:10:00+07:00", "2026-10-28T06:10:00Z", "2026-10-28T13:05:00+07:00/PT5M",
                     "PT5M/2026-10-28T13:10:00+07:00", "2026-10-28T13:05:00+07:00/2026-10-28T13:10:00+07:00",
                     "2026-10-28T13:10:00+07:00/P1M", "2026-10-28T13:10:00", "9999-12-31T23:59:59-12:00/PT1H",
                     "0001-01-01T00:00:00+14:00", "/", "a/b/c", "P1D/P2D", "2026-10-28T13:10:00+07:00/",
                     "2026-10-28T13:10:00+07:00/P99999DT1S"]),
    st.text(max_size=60),
    st.integers(), st.none(), st.lists(st.integers(), max_size=2),
)
results = st.one_of(
    st.floats(0, 50), st.floats(0, 50), st.floats(), st.integers(min_value=-(2**80), max_value=2**80), st.text(max_size=8), st.booleans(), st.none(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.floats(0, 50),
)
obs_ids = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.text(max_size=300), st.lists(st.integers(), max_size=2))


def _payload(fields: dict) -> bytes:
    return json.dumps(fields, allow_nan=True).encode()  # NaN/Infinity: not JSON, must be bad_json


observation = st.builds(
    lambda t, r, i, drop: _payload({k: v for k, v in {"phenomenonTime": t, "result": r, "@iot.id": i}.items()
                                    if k not in drop}),
    times, results, obs_ids, st.sets(st.sampled_from(["phenomenonTime", "result", "@iot.id"]), max_size=2),
)
payloads = st.one_of(observation, observation, observation, json_junk, st.binary(max_size=200), st.integers(1, 200).map(
    lambda d: b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1, "x": ' + b"[" * d + b"]" * d + b"}"))


def _check(out, payload: bytes) -> None:
    if isinstance(out, Rejection):
        assert str(out.reason) in REASONS and out.detail and out.feed == "rain"
        assert len(out.raw) <= max(len(payload), 4096)
    else:
        assert isinstance(out, RainEvent)
        assert math.isfinite(out.rain_mm) and 0 <= out.rain_mm <= 1000
        format_ts(out.t)


@settings(derandomize=True, max_examples=400, deadline=None, database=None)
@given(topic=TOPICS, payload=payloads)
def test_sensorthings_convert_never_raises(topic, payload):
    _check(convert(topic, payload, DS), payload)
    _check(convert(topic, payload, DS, ObservationIdentity(4)), payload)


@FAST
@given(start=st.integers(0, 10**8), minutes=st.integers(1, 24 * 60))
def test_sensorthings_interval_end_is_the_event_time(start, minutes):
    t0 = 1_700_000_000 + start
    a, b = format_ts(t0), format_ts(t0 + minutes * 60)
    for when in (f"{a}/{b}", f"{a}/PT{minutes}M", f"PT{minutes}M/{b}", b):
        out = convert("v1.1/Datastreams(17)/Observations", _payload({"phenomenonTime": when, "result": 1.5}), DS)
        assert isinstance(out, RainEvent) and out.t == t0 + minutes * 60, (when, out)


@FAST
@given(updates=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.floats(0, 30)), min_size=1, max_size=30),
       cap=st.integers(1, 8))
def test_sensorthings_update_of_an_observation_is_the_same_reading(updates, cap):
    """Same @iot.id → same (station, ts) as first accepted, whatever phenomenonTime the update carries."""
    identity = ObservationIdentity(cap)
    first: dict[int, tuple[str, float]] = {}
    order: list[int] = []  # ids by last use, to know which the LRU still holds
    for obs_id, shift, value in updates:
        when = format_ts(T0 + 300 * shift)
        out = convert("v1.1/Datastreams(17)/Observations",
                      _payload({"@iot.id": obs_id, "phenomenonTime": when, "result": value}), DS, identity)
        assert isinstance(out, RainEvent) and out.rain_mm == round(value, 6)
        if obs_id in first and obs_id in order[-cap:]:
            assert (out.station, out.t) == first[obs_id]
        else:
            assert out.t == T0 + 300 * shift
            first[obs_id] = (out.station, out.t)
        if obs_id in order:
            order.remove(obs_id)
        order.append(obs_id)
        assert len(identity) <= cap


def test_identity_ignores_ids_it_cannot_key():
    identity = ObservationIdentity(10)
    for bad in (None, True, 1.5, [1], {"a": 1}, "", "x" * 1000, 2**70):
        assert identity.key(bad) is None
    assert identity.key(17) == "17" and identity.key("obs-1") == "obs-1"


def test_reader_module_never_needs_a_real_file_for_lines():
    """_iter_lines over an in-memory stream: limits at exact boundaries."""
    data = b"a" * 10 + b"\n" + b"b" * 11 + b"\n" + b"c" * 10
    items = list(reader._iter_lines(io.BytesIO(data), 10, 3))
    assert items[0] == b"a" * 10 and isinstance(items[1], reader._TooLarge) and items[1].size == 11
    assert items[2] == b"c" * 10 and len(items) == 3


def test_paths_as_strings_and_paths(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(_rain(3) + b"\n")
    assert [len(b.events) for b in iter_batches([str(p), Path(p)])] == [1, 1]
