"""JSONL replay reader: batches, 1-based line numbers, rejection reasons."""

from __future__ import annotations

import asyncio
import gzip

from ioc.errors import Reason
from ioc.events import DossierEvent, RainEvent
from sensors.replay import iter_batches, read_jsonl_batches, replay_to_sink
from sensors.sink import CollectingSink

LINES = [
    b'{"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 2.4}',  # 1
    b"",  # 2 blank: skipped, counted
    b'{"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:15:00+07:00", "rain_mm": -1}',  # 3
    b'{"kind": "rain", "station": "VP-002", "ts": "2026-10-28T13:15:00+07:00"',  # 4 truncated
    b'{"kind": "rain", "ts": "2026-10-28T13:15:00+07:00", "rain_mm": 1.0}',  # 5 no station
    b'{"kind": "rain", "station": "VP-003", "ts": "yesterday", "rain_mm": 1.0}',  # 6
    b'{"kind": "snow", "station": "VP-003", "ts": "2026-10-28T13:15:00+07:00"}',  # 7
    b'{"kind": "dossier", "dossier": "H62.01-261028-0001", "unit": "vinh-yen", "ts": "2026-10-28T08:00:00+07:00",'
    b' "status": "received", "channel": "online", "due": "2026-10-30T17:00:00+07:00", "extra": 1}',  # 8
    b'{"kind": "rain", "station": "VP-004", "ts": "2026-10-28T13:15:00", "rain_mm": 1.0}',  # 9 naive
    b'[1, 2]',  # 10
    b'{"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T09:00:00+07:00", "waiting": "3", "counters_open": 2}',  # 11
    b'{"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T09:01:00+07:00", "waiting": 3, "counters_open": 2}',  # 12
]
EXPECTED = {
    3: Reason.NEGATIVE_VALUE,
    4: Reason.BAD_JSON,
    5: Reason.MISSING_FIELD,
    6: Reason.BAD_TIMESTAMP,
    7: Reason.UNKNOWN_KIND,
    9: Reason.BAD_TIMESTAMP,
    10: Reason.NOT_AN_OBJECT,
    11: Reason.WRONG_TYPE,
}


def _write(path, lines=LINES):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_line_numbers_and_reasons(tmp_path):
    f = _write(tmp_path / "a.jsonl")
    batches = list(read_jsonl_batches([f]))
    assert len(batches) == 1
    events, rejections = batches[0]
    assert [type(e) for e in events] == [RainEvent, DossierEvent, type(events[2])]
    assert {r.position: r.reason for r in rejections} == EXPECTED
    for r in rejections:
        assert r.raw == LINES[r.position - 1].strip()
        assert r.detail
    assert rejections[0].feed == "rain"


def test_small_batches_keep_line_numbers_and_files_restart(tmp_path):
    a = _write(tmp_path / "a.jsonl")
    b = _write(tmp_path / "b.jsonl.gz", [])
    with gzip.open(b, "wb") as g:
        g.write(b"\n".join(LINES) + b"\n")
    batches = list(iter_batches([a, b], batch_size=3))
    assert [x.first_line for x in batches] == [1, 4, 7, 10] * 2
    assert [x.source for x in batches] == [str(a)] * 4 + [str(b)] * 4
    for src in (str(a), str(b)):
        rej = [r for x in batches if x.source == src for r in x.rejections]
        assert {r.position: r.reason for r in rej} == EXPECTED
        assert sum(len(x.events) for x in batches if x.source == src) == 3
    assert sum(x.lines for x in batches) == 2 * len(LINES)


def test_replay_to_sink(tmp_path):
    f = _write(tmp_path / "a.jsonl")
    sink = CollectingSink()
    stats = asyncio.run(replay_to_sink([f, f], sink, batch_size=5))
    assert (stats.files, stats.lines, stats.events, stats.rejections) == (1, 24, 6, 16)
    assert len(sink.events) == 6 and len(sink.rejections) == 16
    dl = sink.rejections[0].to_dead_letter(str(f))
    assert dl["position"] == 3 and dl["reason"] == "negative_value"


def test_simulated_output_round_trips(tmp_path, catalog):
    from ioc.events import encode_event
    from ioc.timeutil import parse_ts
    from sensors.simulate import demo_simulators

    start = parse_ts("2026-10-28T07:00:00+07:00")
    events = [e for s in demo_simulators(catalog, 42, start) for e in s.advance(start + 3600)]
    f = tmp_path / "sim.jsonl"
    f.write_bytes(b"".join(encode_event(e) + b"\n" for e in events))
    back = [e for ev, rej in read_jsonl_batches([f], batch_size=1000) for e in ev]
    assert back == events
