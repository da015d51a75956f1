"""Watermark ticks for idle partitions (ioc.distributed.ticks): the core side, without a broker.

A tick moves a feed's watermark with no event; it must do exactly what another entity's event at
that time would do to the silent ones: windows slide, stale sensors fire, and nothing else changes.
"""

from __future__ import annotations

from ioc.catalog import demo_catalog
from ioc.distributed.ticks import PartitionClock, encode_tick, parse_tick, tick_due
from ioc.events import parse_lines
from ioc.records import Alert, Indicator, encode
from ioc.timeutil import parse_ts
from ioc.wiring import build_pipeline, build_replay_engine

T0 = parse_ts("2026-10-28T13:00:00+07:00")


def _rain(station: str, minute: int, mm: float) -> bytes:
    from ioc.timeutil import format_ts

    return (f'{{"kind":"rain","station":"{station}","ts":"{format_ts(T0 + 60 * minute)}","rain_mm":{mm}}}').encode()


def _pipeline():
    catalog = demo_catalog()
    return build_pipeline(catalog, build_replay_engine(catalog, None)), sorted(catalog.stations)


def _run(pipeline, lines: list[bytes]):
    events, rejected = parse_lines(lines)
    assert not rejected
    return pipeline.process(events)


def test_tick_record_round_trip_and_refusals():
    raw = encode_tick("rain", T0)
    assert parse_tick(raw) == ("rain", T0)
    assert parse_tick(b'{"kind":"rain","station":"VP-001"}') is None
    assert parse_tick(b'{"kind":"watermark","feed":"rain"}') is None  # no time: not a tick
    assert parse_tick(b'{"kind":"watermark","feed":"rain","ts":"yesterday"}') is None
    assert parse_tick(b'{"kind":"watermark", garbage') is None
    assert parse_tick(None) is None


def test_tick_due_only_for_an_idle_partition_behind_the_feed():
    p = PartitionClock("rain", T0, idle_s=12.0, last_tick=None)
    assert tick_due(p, T0 + 600, idle_after_s=10.0) == T0 + 600
    assert tick_due(PartitionClock("rain", T0, 3.0, None), T0 + 600, 10.0) is None  # not idle long enough
    assert tick_due(p, T0 + 0.5, 10.0) is None  # not behind
    assert tick_due(p, None, 10.0) is None  # the feed has no time yet
    assert tick_due(PartitionClock("rain", T0, 12.0, T0 + 600), T0 + 600, 10.0) is None  # already sent
    assert tick_due(PartitionClock("rain", None, 12.0, None), T0 + 600, 10.0) is None  # never had an event


def test_advance_fires_the_stale_alert_and_slides_the_windows_like_another_gauges_reading():
    ticked, stations = _pipeline()
    other, _ = _pipeline()
    silent, busy = stations[0], stations[1]
    history = [_rain(silent, m, 2.0) for m in range(0, 30, 10)] + [_rain(busy, m, 1.0) for m in range(0, 30, 10)]
    _run(ticked, history)
    _run(other, history)

    # 40 min after the silent gauge's last reading: the tick (here) vs another gauge's reading (there)
    t = T0 + 60 * 60
    got = ticked.advance("rain", t)
    ref = _run(other, [_rain(busy, 60, 0.0)])
    assert ticked.watermarks["rain"] == t

    def stale(result):
        return [a for a in result.alerts if isinstance(a, Alert) and a.rule == "sensor_stale"]

    # here both gauges are silent (the partition is idle); there the busy one reported at 14:00
    assert sorted((a.entity, a.state) for a in stale(got)) == [(silent, "firing"), (busy, "firing")]
    assert [(a.entity, a.state) for a in stale(ref)] == [(silent, "firing")]
    assert [encode(a) for a in stale(got) if a.entity == silent] == [encode(a) for a in stale(ref) if a.entity == silent]

    def rain_of(result, station):
        return {(r.name, r.window): r.value for r in result.indicators
                if isinstance(r, Indicator) and r.entity == station and r.name == "rain_mm"}

    # the silent gauge's windows slid exactly as they do when any reading moves the feed's time
    assert rain_of(got, silent) == rain_of(ref, silent)
    assert rain_of(got, silent)[("rain_mm", "1h")] == 4.0  # readings at :10 and :20 are inside (13:00, 14:00]


def test_a_tick_behind_the_watermark_changes_nothing_and_a_replay_is_identical():
    a, stations = _pipeline()
    lines = [_rain(stations[0], m, 1.5) for m in range(0, 50, 10)]
    _run(a, lines)
    wm = a.watermarks["rain"]
    assert a.advance("rain", wm - 600).records == []
    assert a.watermarks["rain"] == wm

    def run_once() -> list[bytes]:
        p, _ = _pipeline()
        out = [encode(r) for r in _run(p, lines).records]
        out += [encode(r) for r in p.advance("rain", T0 + 3 * 3600).records]
        out += [encode(r) for r in _run(p, [_rain(stations[0], 200, 0.5)]).records]
        return out

    assert run_once() == run_once()


# ---------------------------------------------------------------- on a real broker, workers as processes
def _stations_in_two_partitions(catalog, partitions: int) -> tuple[str, str]:
    from ioc.distributed.partitioning import partition_of

    by_part: dict[int, str] = {}
    for sid in sorted(catalog.stations):
        by_part.setdefault(partition_of(sid.encode(), partitions), sid)
    (pa, a), (pb, b) = sorted(by_part.items())[:2]
    assert pa != pb
    return a, b


def test_an_idle_partitions_silent_gauge_goes_stale_while_another_partition_carries_traffic(cluster, tmp_path):
    import json
    import time

    from ioc.distributed.partitioning import partition_of
    from tests.distributed.conftest import PARTITIONS

    catalog = demo_catalog()
    silent, busy = _stations_in_two_partitions(catalog, PARTITIONS)
    idle_s = 2.0
    worker = cluster.worker("--idle-partition", str(idle_s))
    # the silent gauge reports for 20 minutes and stops; the busy one (another partition) goes on for an hour
    lines = [_rain(silent, m, 0.4) for m in range(0, 21, 5)] + [_rain(busy, m, 0.2) for m in range(0, 61, 5)]
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert cluster.ingest(path).returncode == 0

    r = cluster.redis()
    p_silent = partition_of(silent.encode(), PARTITIONS)
    want = T0 + 3600

    def stale_alert():
        for v in r.hvals(f"{cluster.prefix}:latest"):
            rec = json.loads(v)
            if rec.get("type") == "alert" and rec["rule"] == "sensor_stale" and rec["entity"] == silent:
                return rec
        return None

    deadline = time.monotonic() + 40
    busy_done_at = None
    while time.monotonic() < deadline:
        wms = {k.decode(): float(v) for k, v in r.hgetall(f"{cluster.prefix}:watermarks").items()}
        if busy_done_at is None and max(wms.values(), default=0) >= want:
            busy_done_at = time.monotonic()
        if stale_alert():
            break
        time.sleep(0.1)
    alert = stale_alert()
    assert alert is not None, f"no stale alert for {silent}\n{cluster.logs()}"
    latency_s = time.monotonic() - busy_done_at
    print(f"stale alert of the idle partition {latency_s:.1f} s after the feed's time reached 14:00 (idle {idle_s} s)")
    # the feed's time reached the idle partition through a tick in its own log, within the configured time
    assert alert["state"] == "firing" and alert["ts"] == "2026-10-28T14:00:00+07:00", alert
    assert alert["labels"]["last_seen"] == "2026-10-28T13:20:00+07:00"
    assert wms[f"rain:{p_silent}"] == want
    assert worker.metric("ioc_worker_watermark_ticks_total", 'feed="rain"') >= 1
    assert latency_s < idle_s + 6.0, latency_s
    # the busy gauge is not stale, and the tick is no event: the event counter counts the readings only
    assert not any(json.loads(v).get("rule") == "sensor_stale" and json.loads(v)["entity"] == busy
                   for v in r.hvals(f"{cluster.prefix}:latest"))
    assert worker.metric("ioc_worker_events_total") == len(lines)
