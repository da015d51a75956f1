"""CameraProcessor: 15-minute queue windows against brute force, latest readings, state."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.catalog import parse_catalog
from ioc.errors import Reason
from ioc.events import CameraEvent
from ioc.records import round_value
from ioc.timeutil import parse_ts
from streams.cameras import CameraProcessor
from streams.core import Outcome

CAT = parse_catalog(
    """
sites:
  - {id: s1, name: S1, cameras: [c1, c2], service_minutes_per_person: 5}
  - {id: s2, name: S2, cameras: [c3]}
"""
)
T0 = parse_ts("2026-10-28T08:00:00+07:00")
G = 60


def cam(camera: str, site: str, t: float, waiting: int, counters: int = 1) -> CameraEvent:
    return CameraEvent(camera=camera, site=site, ts=datetime.fromtimestamp(t, timezone.utc), waiting=waiting, counters_open=counters)


class Ref:
    """Brute force over the accepted readings, one per natural key (camera, ts at 0.01 s), last value wins."""

    def __init__(self) -> None:
        self.w = None
        self.readings: dict[tuple[str, int], CameraEvent] = {}

    @property
    def acc(self) -> list[tuple[int, CameraEvent]]:
        return list(enumerate(self.readings.values()))

    def admit(self, ev: CameraEvent, now) -> Reason | None:
        ref = now + 300 if now is not None else self.w
        if ref is not None and ev.t > ref + 86400:
            return Reason.FUTURE_TIMESTAMP
        if self.w is not None and ev.t <= self.w - 3600:
            return Reason.TOO_LATE
        self.w = ev.t if self.w is None else max(self.w, ev.t)
        key = (ev.camera, round(ev.t * 100))
        prev = self.readings.get(key)
        self.last_outcome = Outcome.ACCEPTED
        if prev is not None:
            same = (prev.site, prev.waiting, prev.counters_open) == (ev.site, ev.waiting, ev.counters_open)
            self.last_outcome = Outcome.DUPLICATE if same else Outcome.CORRECTED
            if same:
                return None
        self.readings[key] = ev
        return None

    def view(self) -> dict:
        wb = math.ceil(self.w / G) * G
        out = {}
        latest: dict[str, CameraEvent] = {}
        for n, ev in sorted(self.acc, key=lambda x: (x[1].t, x[0])):
            latest[ev.camera] = ev
        sites = {ev.site for _, ev in self.acc}
        for s in sites:
            win = [ev.waiting for _, ev in self.acc if ev.site == s and wb - 900 < ev.t <= wb]
            if win:
                out[("queue_waiting_avg", "15m", s)] = round_value(sum(win) / len(win))
                out[("queue_waiting_max", "15m", s)] = max(win)
            cams = [ev for ev in latest.values() if ev.site == s]
            if cams:
                waiting = sum(e.waiting for e in cams)
                counters = sum(e.counters_open for e in cams)
                spm = {"s1": 5.0, "s2": 6.0}.get(s, 6.0)
                out[("queue_waiting", "now", s)] = waiting
                out[("queue_counters_open", "now", s)] = counters
                out[("queue_wait_est_s", "now", s)] = round_value(waiting / max(counters, 1) * spm * 60)
        return out


cam_event = st.tuples(
    st.sampled_from([("c1", "s1"), ("c2", "s1"), ("c3", "s2"), ("cx", "s2"), ("c9", "zz")]),
    st.one_of(st.integers(0, 120).map(lambda j: j * G), st.integers(0, 7200), st.integers(0, 3).map(lambda j: j * 900 + 86400 * 3)),
    st.integers(0, 40),
    st.integers(0, 4),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(cam_event, min_size=1, max_size=10), min_size=1, max_size=8))
def test_queue_indicators_equal_brute_force(batches):
    p = CameraProcessor(CAT)
    ref = Ref()
    emitted: dict = {}
    for batch in batches:
        evs = [cam(c, s, T0 + off, w, n) for (c, s), off, w, n in batch]
        expected, outcomes = [], []
        for ev in evs:
            expected.append(ref.admit(ev, None))
            outcomes.append(Outcome.REJECTED if expected[-1] else ref.last_outcome)
        res = p.process(evs)
        assert {r.position: r.reason for r in res.rejections} == {i: r for i, r in enumerate(expected) if r}
        assert res.outcome.tolist() == outcomes
        assert p.watermark == ref.w
        for r in res.indicators:
            if r.value is None:
                emitted.pop(r.key, None)
            else:
                emitted[r.key] = r.value
            assert r.unknown == (r.entity == "zz" or (r.entity == "s2" and any(e.camera == "cx" for _, e in ref.acc)))
        want = ref.view()
        assert emitted == want
        assert {r.key: r.value for r in p.flush()} == want


def test_unknown_site_and_camera_flagged():
    p = CameraProcessor(CAT)
    out = p.process([cam("c1", "s1", T0, 3), cam("cx", "s2", T0, 1), cam("c9", "zz", T0, 2)]).indicators
    flags = {r.entity: r.unknown for r in out}
    assert flags == {"s1": False, "s2": True, "zz": True}


def test_now_values_and_wait_estimate():
    p = CameraProcessor(CAT)
    p.process([cam("c1", "s1", T0, 10, 2), cam("c2", "s1", T0 + 30, 4, 1)])
    v = {r.key: r.value for r in p.flush()}
    assert v[("queue_waiting", "now", "s1")] == 14
    assert v[("queue_counters_open", "now", "s1")] == 3
    assert v[("queue_wait_est_s", "now", "s1")] == round_value(14 / 3 * 5 * 60)
    # an older reading arriving late does not replace a camera's latest
    out = p.process([cam("c1", "s1", T0 - 60, 99, 1)]).indicators
    by = {r.key: r for r in out}
    assert ("queue_waiting", "now", "s1") not in by
    assert by[("queue_waiting_max", "15m", "s1")].value == 99 and by[("queue_waiting_max", "15m", "s1")].late


def test_window_empties_and_retracts():
    p = CameraProcessor(CAT)
    p.process([cam("c1", "s1", T0, 5), cam("c3", "s2", T0, 1)])
    out = {r.key: r.value for r in p.process([cam("c3", "s2", T0 + 900, 2)]).indicators}
    assert out[("queue_waiting_avg", "15m", "s1")] is None
    assert out[("queue_waiting_max", "15m", "s1")] is None
    assert ("queue_waiting_avg", "15m", "s1") not in {r.key for r in p.flush()}


def test_state_round_trip_identical_outputs():
    evs = [cam(["c1", "c2", "c3"][i % 3], ["s1", "s1", "s2"][i % 3], T0 + (i * 53 % 97) * 20, i % 13, i % 3) for i in range(200)]
    a = CameraProcessor(CAT)
    for i in range(0, 100, 20):
        a.process(evs[i : i + 20])
    b = CameraProcessor(CAT)
    b.set_state(msgspec.msgpack.decode(msgspec.msgpack.encode(a.get_state())))
    for i in range(100, 200, 20):
        assert msgspec.json.encode(a.process(evs[i : i + 20]).indicators) == msgspec.json.encode(b.process(evs[i : i + 20]).indicators)
    assert msgspec.json.encode(a.flush()) == msgspec.json.encode(b.flush())


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([("c1", "s1"), ("c2", "s1"), ("c3", "s2")]), st.sampled_from([0, 1, 1, 2, 5, 14, 15, 16]),
                  st.one_of(st.just(0), st.integers(-20, 0)), st.integers(0, 30)),
        min_size=5,
        max_size=80,
    ),
    batch_size=st.integers(1, 4),
)
def test_walking_watermark_equals_brute_force(steps, batch_size):
    p = CameraProcessor(CAT)
    ref = Ref()
    emitted: dict = {}
    pos, evs = 0, []
    for (c, s), step, back, waiting in steps:
        pos += step
        evs.append(cam(c, s, T0 + (pos + back) * G, waiting, 1))
    for i in range(0, len(evs), batch_size):
        batch = evs[i : i + batch_size]
        for ev in batch:
            ref.admit(ev, None)
        for r in p.process(batch).indicators:
            if r.value is None:
                emitted.pop(r.key, None)
            else:
                emitted[r.key] = r.value
        assert emitted == ref.view()
