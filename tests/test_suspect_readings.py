"""Suspect rain readings never raise an alarm on their own (issue 12).

A reading beyond its station's physical limits is quarantined by the rain
processor: kept out of every window sum, counted, visible as
`rain_quarantined_mm`, replaced by a correction, and reported to the engine,
which raises the data-quality alert `implausible_reading` and no rain alert.
Everything goes through the real pipeline and the built-in rules (and once
through `ioc replay`).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest

from ioc.catalog import demo_catalog, parse_catalog
from ioc.events import RainEvent
from ioc.records import encode
from ioc.timeutil import format_ts, parse_ts
from ioc.wiring import build_pipeline, build_replay_engine
from streams.core import Outcome
from streams.rain import QUARANTINED, RainProcessor

ROOT = Path(__file__).resolve().parents[1]
T0 = parse_ts("2026-10-28T12:00:00+07:00")  # a multiple of 300 s
CAT = demo_catalog()


def rain(station: str, t: float, mm: float) -> RainEvent:
    return RainEvent(station=station, ts=datetime.fromtimestamp(t, timezone.utc), rain_mm=mm)


def pipeline(catalog=CAT):
    return build_pipeline(catalog, build_replay_engine(catalog, None))


def run(events, batch: int = 500, catalog=CAT):
    """(pipeline, indicators, alerts, quarantined) of `events` fed in batches of `batch`."""
    p = pipeline(catalog)
    inds, alerts, quar = [], [], []
    for i in range(0, len(events), batch):
        r = p.process(events[i : i + batch])
        inds += r.indicators
        alerts += r.alerts
        quar += r.quarantined
    return p, inds, alerts, quar


def storm() -> list[RainEvent]:
    """Six hours of heavy rain over three demo stations, then two quiet hours (5-minute readings)."""
    out = []
    for i in range(1, 8 * 12 + 1):
        for s, mm in (("VP-001", 6.0), ("VP-002", 3.0), ("VP-003", 1.2)):
            out.append(rain(s, T0 + 300 * i, round(mm + 0.2 * (i % 3), 1) if i <= 72 else 0.0))  # not flat
    return out


def rain_alerts(alerts):
    return [(a.rule, a.entity, a.state, a.severity, a.ts, a.value, a.labels, a.message) for a in alerts
            if a.rule.startswith(("rain_", "flash_flood"))]


def final(inds, name="rain_mm"):
    last = {}
    for x in inds:
        if x.name == name:
            last[(x.window, x.entity)] = x.value
    return last


def test_a_single_5000_mm_reading_raises_one_data_quality_alert_and_no_rain_alert(tmp_path):
    """Through `ioc replay`: the reading is accepted (valid JSON) but never summed."""
    lines = [json.dumps({"kind": "rain", "station": "VP-001", "ts": format_ts(T0 + 300 * i), "rain_mm": 0.2})
             for i in range(1, 13)]
    lines.insert(6, json.dumps({"kind": "rain", "station": "VP-001", "ts": format_ts(T0 + 300 * 6 + 60),
                                "rain_mm": 5000}))
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([sys.executable, "-m", "ioc.cli", "replay", str(src), "--emit", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    alerts = [r for r in recs if r["type"] == "alert"]
    assert [(a["rule"], a["state"], a["value"]) for a in alerts] == [("implausible_reading", "firing", 5000.0)]
    assert alerts[0]["labels"]["reason"] == "reading_too_large" and "data_quality" not in alerts[0]["labels"]
    assert alerts[0]["ts"] == format_ts(T0 + 300 * 6 + 60)  # the reading's time, whatever the batch size
    last = {(r["name"], r["window"]): r["value"] for r in recs if r["type"] == "indicator" and r["entity"] == "VP-001"}
    assert last[("rain_mm", "1h")] == 2.4 and last[("rain_mm", "72h")] == 2.4  # 12 × 0.2, the 5000 left out
    assert last[(QUARANTINED, "72h")] == 5000.0


def test_a_storm_with_one_suspect_reading_raises_exactly_the_storms_alerts():
    clean = storm()
    dirty = list(clean)
    pos = next(i for i, e in enumerate(dirty) if e.station == "VP-003" and e.t == T0 + 300 * 30)
    # a spike between two good readings, arriving just after the step's readings (the watermark stays put)
    dirty.insert(pos + 1, rain("VP-002", T0 + 300 * 30 - 120, 900.0))
    _, ci, ca, cq = run(clean, batch=1)  # one event per batch: the same emission points in both runs
    p, di, da, dq = run(dirty, batch=1)
    assert cq == [] and [(q.entity, q.value, q.reason) for q in dq] == [("VP-002", 900.0, "reading_too_large")]
    assert {a[0] for a in rain_alerts(ca)} >= {"rain_3h_intense", "rain_24h_very_heavy", "rain_1h_local_heavy"}
    assert rain_alerts(da) == rain_alerts(ca)  # same rules, stations, times, values and messages
    assert [a for a in ca if a.rule.startswith(("rain_", "flash_flood"))] != []
    others = [(a.rule, a.state) for a in da if not a.rule.startswith(("rain_", "flash_flood"))]
    assert others == [("implausible_reading", "firing"), ("implausible_reading", "resolved")]
    assert [x for x in di if x.name != QUARANTINED] == ci  # every rain indicator identical: 900 mm excluded
    assert final(run(dirty)[1]) == final(ci)  # and in batches of 500
    assert final(di, QUARANTINED) == {("72h", "VP-002"): 900.0}
    assert p.processors["rain"].quarantined() == [
        {"station": "VP-002", "ts": format_ts(T0 + 300 * 30 - 120), "rain_mm": 900.0, "reason": "reading_too_large"}]


def test_same_result_whatever_the_batch_size_and_byte_identical_replays():
    ev = storm()
    ev.insert(100, rain("VP-003", T0 + 300 * 34 + 10, 700.0))
    alerts_by_batch = set()
    for batch in (1, 7, 500, 10_000):
        _, _, alerts, quar = run(ev, batch)
        alerts_by_batch.add(b"\n".join(encode(a) for a in alerts))
        assert [(q.entity, q.value) for q in quar] == [("VP-003", 700.0)]
    assert len(alerts_by_batch) == 1  # the same alerts whatever the batch size
    one, two = run(ev, 500), run(ev, 500)
    assert b"\n".join(encode(r) for r in [*one[1], *one[2]]) == b"\n".join(encode(r) for r in [*two[1], *two[2]])
    assert b"implausible_reading" in next(iter(alerts_by_batch))


def test_correction_replaces_the_quarantined_value_and_a_resend_is_a_duplicate():
    p = RainProcessor(CAT)
    for i in range(1, 4):
        p.process([rain("VP-001", T0 + 300 * i, 1.0)])
    bad = rain("VP-001", T0 + 1200, 5000.0)
    r = p.process([bad])
    assert r.outcome.tolist() == [Outcome.ACCEPTED] and len(r.quarantined) == 1
    assert final(r.indicators) == {}  # no sum moved: nothing re-emitted but the quarantine
    assert final(r.indicators, QUARANTINED) == {("72h", "VP-001"): 5000.0}
    assert set(final(p.flush()).values()) == {3.0} and final(p.flush(), "rain_day_mm")[("rain_day", "VP-001")] == 3.0
    r = p.process([bad])  # the gateway re-sends the same bad value
    assert r.outcome.tolist() == [Outcome.DUPLICATE] and r.quarantined == [] and r.indicators == []
    r = p.process([rain("VP-001", T0 + 1200, 4000.0)])  # another bad value: still out of the sums
    assert r.outcome.tolist() == [Outcome.CORRECTED] and [q.value for q in r.quarantined] == [4000.0]
    assert final(r.indicators, QUARANTINED) == {("72h", "VP-001"): 4000.0} and final(r.indicators) == {}
    r = p.process([rain("VP-001", T0 + 1200, 2.4)])  # the good value: it enters the sums
    assert r.outcome.tolist() == [Outcome.CORRECTED] and r.quarantined == []
    assert final(r.indicators)[("1h", "VP-001")] == 5.4
    assert final(r.indicators, QUARANTINED) == {("72h", "VP-001"): 0.0}
    assert p.quarantined() == []
    r = p.process([rain("VP-001", T0 + 1200, 900.0)])  # a bad value replacing a good one takes it out
    assert r.outcome.tolist() == [Outcome.CORRECTED] and final(r.indicators)[("1h", "VP-001")] == 3.0


def test_a_good_value_and_its_bad_resend_in_one_batch_resolve_in_arrival_order():
    p = RainProcessor(CAT)
    t = T0 + 300
    r = p.process([rain("VP-001", t, 1.0), rain("VP-001", t, 800.0), rain("VP-002", t, 2.0),
                   rain("VP-001", t, 1.5)])
    assert r.outcome.tolist() == [Outcome.ACCEPTED, Outcome.CORRECTED, Outcome.ACCEPTED, Outcome.CORRECTED]
    assert final(r.indicators)[("1h", "VP-001")] == 1.5 and p.quarantined() == []


def test_quarantine_survives_a_checkpoint_and_old_states_load():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0 + 300, 1.0), rain("VP-001", T0 + 600, 3000.0)])
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(p.get_state()))
    assert state["version"] == 3
    q = RainProcessor(CAT)
    q.set_state(state)
    assert q.quarantined() == p.quarantined() and q.flush() == p.flush()
    r = q.process([rain("VP-001", T0 + 600, 3000.0)])
    assert r.outcome.tolist() == [Outcome.DUPLICATE]  # identity of the quarantined reading kept
    r = q.process([rain("VP-001", T0 + 600, 2.0)])
    assert r.outcome.tolist() == [Outcome.CORRECTED] and final(r.indicators)[("1h", "VP-001")] == 3.0
    old = dict(state, version=2)
    del old["quarantine"]
    v2 = RainProcessor(CAT)
    v2.set_state(old)
    assert v2.quarantined() == [] and final(v2.flush())[("1h", "VP-001")] == 1.0


def test_quarantined_readings_leave_with_the_72_h_horizon():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0 + 300, 3000.0)])
    for h in range(6, 72, 6):  # (a reading more than a day ahead of the watermark would be refused)
        p.process([rain("VP-001", T0 + 300 + h * 3600, 0.0)])
    assert len(p.quarantined()) == 1
    r = p.process([rain("VP-001", T0 + 300 + 72 * 3600, 0.0)])
    assert p.quarantined() == [] and final(r.indicators, QUARANTINED) == {("72h", "VP-001"): 0.0}


def test_the_limits_are_the_rules_and_a_station_may_have_its_own():
    cat = parse_catalog("""
units:
  - {id: p, name: P, level: province}
stations:
  - {id: A, name: A, lat: 21.3, lon: 105.6}
  - {id: B, name: B, lat: 21.3, lon: 105.6, rain_max_reading_mm: 20}
""")
    _, inds, alerts, quar = run([rain("A", T0 + 300, 25.0), rain("B", T0 + 300, 25.0), rain("A", T0 + 600, 70.0)],
                                catalog=cat)
    # B's own limit (20 mm); A's 70 mm in 5 min is 420 mm/h over the 10-min floor (rule: 400 mm/h)
    assert [(q.entity, q.value, q.reason) for q in quar] == [("B", 25.0, "reading_too_large"),
                                                           ("A", 70.0, "rate_too_high")]
    assert final(inds)[("1h", "A")] == 25.0 and final(inds)[("1h", "B")] == 0.0  # B reported: its 25 mm held out
    assert sorted((a.rule, a.entity) for a in alerts) == [("implausible_reading", "A"), ("implausible_reading", "B")]
    # the distributed worker's processors take the same limits as the embedded pipeline's
    from alerts.detectors import RainLimits
    from ioc.distributed.worker import make_processor

    engine = build_replay_engine(cat, None)
    assert engine.rain_limits() == RainLimits(200.0, 400.0, 600.0)  # the implausible_reading rule's params
    wp = make_processor("rain", cat, engine.rain_limits())
    assert wp.process([rain("B", T0 + 300, 25.0)]).quarantined[0].reason == "reading_too_large"
    with pytest.raises(Exception, match="rain_max_reading_mm"):
        parse_catalog("stations:\n  - {id: C, name: C, lat: 21.3, lon: 105.6, rain_max_reading_mm: 0}\n")


def test_quarantined_readings_are_counted_in_the_metrics(tmp_path):
    """Through the embedded runtime as `ioc run` wires it: counted by feed and reason; a re-send is not."""
    from ioc.config import Config
    from ioc.runtime import Runtime
    from ioc.wiring import build_alerting

    async def main():
        config = Config(data_dir=tmp_path, checkpoint_interval_s=3600)
        alerting = build_alerting(config, CAT)
        rt = Runtime(config, CAT, build_pipeline(CAT, alerting.engine), clock=lambda: T0 + 86400)
        alerting.attach(rt)
        await rt.start()
        try:
            await rt.submit([rain("VP-001", T0 + 300, 1.0)], wait=True)
            report = await rt.submit([rain("VP-001", T0 + 600, 5000.0)], wait=True)
            assert report.rejections == [] and report.duplicates == []
            report = await rt.submit([rain("VP-001", T0 + 600, 5000.0)], wait=True)  # a re-send
            assert report.duplicates == [0]
            c = rt.metrics.readings_quarantined
            assert c.labels("rain", "reading_too_large")._value.get() == 1.0
            active = [(a.rule, a.entity) for a in alerting.engine.list(state="active")]
            assert ("implausible_reading", "VP-001") in active
            assert not [r for r, _ in active if r.startswith("rain_")]
        finally:
            await rt.stop()
            alerting.close()

    asyncio.run(main())


@pytest.mark.parametrize("mm, fires", [(2.5, False), (2.51, True)])
def test_rain_1h_local_heavy_fires_above_30_mm_in_1_h_not_at_30(mm, fires):
    _, _, alerts, _ = run([rain("VP-005", T0 + 300 * i, mm) for i in range(1, 13)])
    local = [a for a in alerts if a.rule == "rain_1h_local_heavy"]
    if fires:
        (a,) = local
        assert (a.state, a.severity, a.value, a.ts) == ("firing", "warning", 30.12, format_ts(T0 + 3600))
        assert a.labels["hazard"] == "heavy_rain"
    else:
        assert local == []


def test_a_real_server_shows_the_quarantined_reading_and_counts_it(ioc_server, tmp_path):
    """`ioc run` over HTTP: the 5000 mm reading is taken in (200), visible in the snapshot as held out,
    counted in /metrics, and the only alert is the data-quality one."""
    import httpx

    from tests.conftest import AS_INGEST, AS_VIEWER

    server = ioc_server(data_dir=tmp_path / "data")
    good = [{"kind": "rain", "station": "VP-001", "ts": format_ts(T0 + 300 * i), "rain_mm": 0.4} for i in range(1, 7)]
    bad = {"kind": "rain", "station": "VP-001", "ts": format_ts(T0 + 300 * 6 + 30), "rain_mm": 5000}
    r = httpx.post(server.url + "/api/ingest", json=[*good, bad], headers=AS_INGEST)
    assert r.status_code == 200 and r.json()["accepted"] == 7, r.text
    snap = httpx.get(server.url + "/api/snapshot", headers=AS_VIEWER).json()
    ind = {(i["name"], i["window"]): i["value"] for i in snap["indicators"] if i["entity"] == "VP-001"}
    assert ind[("rain_mm", "1h")] == 2.4 and ind[(QUARANTINED, "72h")] == 5000.0
    assert [(a["rule"], a["entity"]) for a in snap["alerts"]] == [("implausible_reading", "VP-001")]
    metrics = httpx.get(server.url + "/metrics").text
    assert 'ioc_readings_quarantined_total{feed="rain",reason="reading_too_large"} 1.0' in metrics
