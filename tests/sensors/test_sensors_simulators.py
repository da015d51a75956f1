"""Seeded simulators: determinism, realism checks, the scripted incidents."""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict, deque

import pytest

from ioc.events import CameraEvent, DossierEvent, RainEvent, encode_event
from ioc.timeutil import LOCAL_TZ, local, parse_ts
from sensors.simulate import (
    CameraSimulator,
    DossierSimulator,
    RainSimulator,
    demo_simulators,
    demo_start,
)
from sensors.simulate.worktime import (
    add_working_days,
    add_working_seconds,
    is_office_time,
    next_office_instant,
    previous_working_morning,
    working_seconds_between,
)

WED_0000 = parse_ts("2026-10-28T00:00:00+07:00")  # a Wednesday
MON_0700 = parse_ts("2026-10-26T07:00:00+07:00")
H = 3600.0

ALLOWED = {
    "received": {"in_process", "rejected"},
    "in_process": {"supplement_requested", "fee_due", "processed", "withdrawn"},
    "supplement_requested": {"in_process", "withdrawn"},
    "fee_due": {"processed"},
    "processed": {"returned"},
    "returned": set(),
    "rejected": set(),
    "withdrawn": set(),
}


def _wire(events) -> list[bytes]:
    return [encode_event(e) for e in events]


@pytest.mark.parametrize("cls", [RainSimulator, DossierSimulator, CameraSimulator])
def test_same_seed_same_events_however_chopped(catalog, cls):
    span = 30 * H
    whole = _wire(cls(catalog, seed=7, start=WED_0000).advance(WED_0000 + span))
    sim = cls(catalog, seed=7, start=WED_0000)
    rng = random.Random(1)
    t, chopped = WED_0000, []
    while t < WED_0000 + span:
        t = min(WED_0000 + span, t + rng.choice([1.0, 59.0, 300.0, 301.5, 3 * H, 0.0]))
        chopped.extend(sim.advance(t))
    assert sim.advance(t) == []  # nothing twice
    assert _wire(chopped) == whole
    assert whole
    other = _wire(cls(catalog, seed=8, start=WED_0000).advance(WED_0000 + span))
    assert other != whole


def test_advance_returns_arrived_events_in_order(catalog):
    for sim in demo_simulators(catalog, seed=42, start=WED_0000):
        prev = WED_0000
        for k in range(1, 13):
            until = WED_0000 + k * 1800.0
            events = sim.advance(until)
            assert all(e.t <= until for e in events)
            if sim.feed != "rain":  # only rain has late (buffered) arrivals
                assert all(prev < e.t for e in events)
                assert [e.t for e in events] == sorted(e.t for e in events)
            prev = until


@pytest.mark.parametrize("start", [WED_0000, parse_ts("2026-10-28T03:00:00+07:00"), MON_0700])
def test_all_three_feeds_in_first_hour(catalog, start):
    kinds = set()
    for sim in demo_simulators(catalog, seed=42, start=start):
        kinds.update(type(e) for e in sim.advance(start + H))
    assert kinds == {RainEvent, DossierEvent, CameraEvent}


@pytest.mark.parametrize("now", ["2026-11-01T23:30:00+07:00", "2026-11-02T00:30:00+07:00", "2026-10-28T14:10:00+07:00"])
def test_demo_start_backfills_from_previous_working_morning(catalog, now):
    now_s = parse_ts(now)
    start, storm_at = demo_start(now_s)
    d = local(start)
    assert d.weekday() < 5 and (d.hour, d.minute) == (7, 0) and start < now_s - 12 * H
    assert start <= storm_at <= now_s
    kinds = set()
    for sim in demo_simulators(catalog, seed=42, start=start, storm_at=storm_at):
        kinds.update(type(e) for e in sim.advance(start + H))
    assert kinds == {RainEvent, DossierEvent, CameraEvent}


def test_generation_is_fast(catalog):
    sims = demo_simulators(catalog, seed=42, start=WED_0000)
    t0 = time.perf_counter()
    n = sum(len(s.advance(WED_0000 + 24 * H)) for s in sims)
    elapsed = time.perf_counter() - t0
    assert n > 30_000
    assert elapsed < 2.0  # ~0.3 s on one core; generous for a shared machine


# -- rain ------------------------------------------------------------------------------------------


def _rolling_max(readings: list[tuple[float, float]], window_s: float) -> float:
    q: deque = deque()
    acc = best = 0.0
    for t, mm in sorted(readings):
        q.append((t, mm))
        acc += mm
        while q[0][0] <= t - window_s:
            acc -= q.popleft()[1]
        best = max(best, acc)
    return best


@pytest.mark.parametrize("seed", [42, 1, 2024])
def test_demo_storm_intense_within_six_hours(catalog, seed):
    sim = RainSimulator(catalog, seed=seed, start=WED_0000)
    events = sim.advance(WED_0000 + 6 * H)
    per = defaultdict(list)
    for e in events:
        per[e.station].append((e.t, e.rain_mm))
    best3 = {s: _rolling_max(r, 3 * H) for s, r in per.items()}
    assert sum(v >= 70 for v in best3.values()) >= 1
    wet = [s for s, r in per.items() if sum(mm for _, mm in r) >= 10]
    assert 8 <= len(wet) <= 30  # the storm crosses part of the province, not all of it
    events += sim.advance(WED_0000 + 24 * H)
    tot = defaultdict(float)
    for e in events:
        tot[e.station] += e.rain_mm
    assert max(tot.values()) > 100
    assert sum(v == 0 for v in tot.values()) >= 5  # dry stations remain


def test_rain_readings_shape_outage_and_silence(catalog):
    sim = RainSimulator(catalog, seed=42, start=WED_0000)
    events = sim.advance(WED_0000 + 12 * H)
    assert all(e.t % 300 == 0 and e.ts.utcoffset() == LOCAL_TZ.utcoffset(None) for e in events)
    assert all(round(e.rain_mm / 0.2, 6) == round(e.rain_mm / 0.2) for e in events)  # 0.2 mm bucket
    assert sum(e.rain_mm == 0 for e in events) / len(events) > 0.5  # even during the storm
    # a link outage: readings arrive after later ones (late), and none is lost
    late = [events[i] for i in range(1, len(events)) if events[i].t < max(e.t for e in events[max(0, i - 50) : i])]
    assert late
    per = defaultdict(list)
    for e in events:
        per[e.station].append(e.t)
    for station, ts in per.items():
        assert len(ts) == len(set(ts))
    # one station goes silent for good
    silent = [s for s, ts in per.items() if max(ts) < WED_0000 + 3 * H]
    assert len(silent) == 1
    full = 12 * 12
    assert sum(len(ts) == full for ts in per.values()) == len(catalog.stations) - 1


def test_rain_without_incidents_mostly_dry(catalog):
    sim = RainSimulator(catalog, seed=42, start=WED_0000, incidents=False)
    events = sim.advance(WED_0000 + 6 * H)
    assert len(events) == 72 * len(catalog.stations)


# -- dossiers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dossier_week(catalog):
    sim = DossierSimulator(catalog, seed=42, start=MON_0700)
    return sim.advance(MON_0700 + 7 * 24 * H)


def test_dossier_status_sequences_valid(catalog, dossier_week):
    by = defaultdict(list)
    for e in dossier_week:
        by[e.dossier].append(e)
    assert len(by) > 3000
    code_re = re.compile(r"H62\.\d{2}(\.\d{2})?-\d{6}-\d{4}")
    for code, evs in by.items():
        assert code_re.fullmatch(code), code
        assert evs[0].status == "received", code
        first = evs[0]
        assert first.channel in ("online", "direct", "postal") and first.due is not None and first.procedure
        assert first.due_t > first.t
        assert local(first.t).strftime("%y%m%d") == code.split("-")[1]
        assert len({e.unit for e in evs}) == 1 and evs[0].unit in catalog.units
        for a, b in zip(evs, evs[1:]):
            assert b.status in ALLOWED[a.status], (code, a.status, b.status)
            assert b.t > a.t
    # dossiers due well before the end are nearly all finished; a few very late ones are not
    due_early = [evs for evs in by.values() if evs[0].due_t < MON_0700 + 5 * 24 * H]
    unfinished = [evs for evs in due_early if evs[-1].status in ("received", "in_process", "supplement_requested", "fee_due")]
    assert 0 < len(unfinished) < 0.05 * len(due_early)


def test_dossier_realism(catalog, dossier_week):
    received = [e for e in dossier_week if e.status == "received"]
    by_level = defaultdict(list)
    for e in received:
        by_level[catalog.units[e.unit].level].append(e)
    online = {lvl: sum(e.channel == "online" for e in es) / len(es) for lvl, es in by_level.items()}
    assert online["province"] < 0.8 < online["commune"] and online["district"] > 0.8
    dig = sum(bool(e.digitized) for e in received) / len(received)
    assert 0.7 < dig < 0.97
    # in-person dossiers only in office hours; online ones at all hours
    sat = {"vinh-phuc", "vinh-yen", "phuc-yen"} | {u.id for u in catalog.units.values() if u.level == "province"}
    for e in received:
        if e.channel != "online":
            assert is_office_time(e.t, e.unit in sat), e
    assert any(not is_office_time(e.t, True) for e in received if e.channel == "online")
    staff = [e for e in dossier_week if e.status in ("in_process", "processed", "fee_due", "rejected")]
    assert all(is_office_time(e.t, True) for e in staff)
    # on-time (Decision 766): most, not all
    by = defaultdict(list)
    for e in dossier_week:
        by[e.dossier].append(e)
    late = ontime = 0
    overdue_open_end = 0
    end = MON_0700 + 7 * 24 * H
    for evs in by.values():
        proc = [e for e in evs if e.status == "processed"]
        supp = [i for i, e in enumerate(evs) if e.status == "supplement_requested"]
        waited = sum(evs[i + 1].t - evs[i].t for i in supp if i + 1 < len(evs))
        if proc:
            if len(supp) > 1 or proc[0].t > evs[0].due_t + waited:
                late += 1
            else:
                ontime += 1
        elif evs[-1].status in ("received", "in_process", "supplement_requested", "fee_due") and evs[0].due_t < end:
            overdue_open_end += 1
    rate = ontime / (ontime + late)
    assert 0.93 < rate < 0.995
    paid = [e for e in dossier_week if e.paid_online is not None]
    assert any(e.paid_online for e in paid) and any(not e.paid_online for e in paid)
    # digitized flag sometimes arrives later, on `processed`
    assert any(e.status == "processed" and e.digitized for e in dossier_week)


def test_some_dossiers_left_overdue(catalog):
    start = MON_0700
    sim = DossierSimulator(catalog, seed=42, start=start)
    now = start + 10 * 24 * H
    events = sim.advance(now)
    open_ = {}
    for e in events:
        if e.status == "received":
            open_[e.dossier] = e.due_t
        elif e.status in ("processed", "rejected", "withdrawn"):
            open_.pop(e.dossier, None)
    assert sum(due < now for due in open_.values()) >= 3


# -- cameras ---------------------------------------------------------------------------------------


def test_cameras_every_minute_and_office_profile(catalog):
    sim = CameraSimulator(catalog, seed=42, start=WED_0000)
    events = sim.advance(WED_0000 + 24 * H)
    n_cams = len(catalog.camera_site)
    assert len(events) == 1440 * n_cams
    assert all(e.t % 60 == 0 for e in events)
    assert all(catalog.camera_site[e.camera] == e.site for e in events)
    by_hour = defaultdict(list)
    for e in events:
        by_hour[local(e.t).hour].append(e)
    night = [e for h in (0, 1, 2, 3, 4, 5, 20, 21, 22, 23) for e in by_hour[h]]
    assert all(e.waiting == 0 and e.counters_open == 0 for e in night)
    mean = {h: sum(e.waiting for e in es) / len(es) for h, es in by_hour.items()}
    assert mean[10] > 2 * mean[8] and mean[10] > 2 * mean[16]
    assert mean[14] > mean[16] and mean[12] == 0
    assert all(e.counters_open > 0 for e in by_hour[9])


def test_camera_long_queue_episode(catalog):
    # over a working week some site queues > 8 per open counter for 5+ minutes in a row
    sim = CameraSimulator(catalog, seed=42, start=MON_0700)
    events = sim.advance(MON_0700 + 5 * 24 * H)
    run: dict[str, int] = defaultdict(int)
    best: dict[str, int] = defaultdict(int)
    for e in events:
        if e.counters_open and e.waiting > 8 * e.counters_open:
            run[e.camera] += 1
            best[e.camera] = max(best[e.camera], run[e.camera])
        else:
            run[e.camera] = 0
    long_cams = [c for c, b in best.items() if b >= 5]
    assert 1 <= len(long_cams) <= 8
    assert sim.surges


# -- working time ----------------------------------------------------------------------------------


def test_worktime_helpers():
    mon_1100 = parse_ts("2026-10-26T11:00:00+07:00")
    assert is_office_time(mon_1100) and not is_office_time(mon_1100 + 3600)
    assert add_working_seconds(mon_1100, 3600) == parse_ts("2026-10-26T14:00:00+07:00")
    fri_1630 = parse_ts("2026-10-30T16:30:00+07:00")
    assert add_working_seconds(fri_1630, 3600) == parse_ts("2026-11-02T08:00:00+07:00")
    assert add_working_seconds(fri_1630, 3600, saturday_morning=True) == parse_ts("2026-10-31T08:00:00+07:00")
    assert add_working_days(fri_1630, 3) == parse_ts("2026-11-04T16:30:00+07:00")
    sat_night = parse_ts("2026-10-31T22:00:00+07:00")
    assert next_office_instant(sat_night) == parse_ts("2026-11-02T07:30:00+07:00")
    assert add_working_days(sat_night, 1) == parse_ts("2026-11-03T07:30:00+07:00")
    assert working_seconds_between(mon_1100, parse_ts("2026-10-26T14:00:00+07:00")) == 3600
    assert previous_working_morning(parse_ts("2026-11-02T09:00:00+07:00")) == parse_ts("2026-10-30T07:00:00+07:00")
