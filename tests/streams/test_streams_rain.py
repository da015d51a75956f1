"""RainProcessor: windows against brute force, admission, stale, state, memory."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.catalog import parse_catalog
from ioc.errors import Reason
from ioc.events import RainEvent
from ioc.records import round_value
from ioc.timeutil import parse_ts, rain_day_start
from streams.core import Outcome
from alerts.detectors import RainLimits
from streams.rain import QUARANTINED, RainProcessor, mm_values

CAT = parse_catalog(
    """
stations:
  - {id: VP-001, name: a, lat: 21.3, lon: 105.6}
  - {id: VP-002, name: b, lat: 21.3, lon: 105.6}
"""
)
T0 = parse_ts("2026-10-28T00:00:00+07:00")  # a multiple of 300 s
G = 300
WINDOWS = {"1h": 3600, "3h": 3 * 3600, "6h": 6 * 3600, "12h": 12 * 3600, "24h": 24 * 3600, "72h": 72 * 3600}


def rain(station: str, t: float, mm: float) -> RainEvent:
    return RainEvent(station=station, ts=datetime.fromtimestamp(t, timezone.utc), rain_mm=mm)


def klass(mm: float) -> str:
    if mm < 6:
        return "light"
    if mm <= 15:
        return "rain"
    if mm <= 50:
        return "moderate"
    if mm <= 100:
        return "heavy"
    return "very_heavy"


class Reference:
    """Sequential admission + brute-force windows over the accepted readings,
    one per natural key (station, ts at 0.01 s), the last value winning; a
    reading beyond `RainLimits` (judged on the time since the station's
    previous reading in arrival order) is held out of the sums (quarantine)."""

    def __init__(self) -> None:
        self.w: float | None = None
        self.readings: dict[tuple[str, int], tuple[float, int]] = {}  # key -> (t, hundredths)
        self.quarantined: dict[tuple[str, int], tuple[float, int]] = {}  # key -> (t, hundredths), out of the sums
        self.run_last: dict[str, float] = {}  # latest reading per station, in arrival order
        self.pending: list[RainEvent] = []
        self.last: dict[str, float] = {}  # every admitted reading counts for last-seen, kept or not

    def admit(self, ev: RainEvent, now: float | None) -> Reason | None:
        ref = now + 300 if now is not None else self.w
        if ref is not None and ev.t > ref + 86400:
            return Reason.FUTURE_TIMESTAMP
        if self.w is not None and ev.t <= self.w - 72 * 3600:
            return Reason.TOO_LATE
        self.w = ev.t if self.w is None else max(self.w, ev.t)
        self.last[ev.station] = max(self.last.get(ev.station, -math.inf), ev.t)
        self.pending.append(ev)
        return None

    def settle(self) -> list[Outcome]:
        """Outcomes of the readings admitted since the last call (one batch), in order."""
        kw = math.ceil(self.w / G) if self.w is not None else 0
        out = []
        for ev in self.pending:
            tc = round(ev.t * 100)
            h = min(int(np.rint(ev.rain_mm * 100)), 65535)
            key = (ev.station, tc)
            lt = self.run_last.get(ev.station, -math.inf)
            why = RainLimits().why(ev.rain_mm, ev.t - lt if ev.t > lt else None)
            self.run_last[ev.station] = max(lt, ev.t)
            if math.ceil(tc / (G * 100)) <= kw - 864:  # its bucket already left the 72 h ring
                out.append(Outcome.ACCEPTED)
                continue
            if why is not None or key in self.quarantined:
                qprev, prev = self.quarantined.pop(key, None), self.readings.pop(key, None)
                qh = round(ev.rain_mm * 100)
                if why is None:  # a good value for a quarantined key
                    self.readings[key] = (tc / 100, h)
                elif qprev is not None and qprev[1] == qh:
                    self.quarantined[key] = qprev
                    out.append(Outcome.DUPLICATE)
                    continue
                else:
                    self.quarantined[key] = (tc / 100, qh)
                out.append(Outcome.ACCEPTED if qprev is None and prev is None else Outcome.CORRECTED)
                continue
            prev = self.readings.get(key)
            if prev is None:
                out.append(Outcome.ACCEPTED)
            elif prev[1] == h:
                out.append(Outcome.DUPLICATE)
                continue
            else:
                out.append(Outcome.CORRECTED)
            self.readings[key] = (tc / 100, h)
        self.pending = []
        return out

    @property
    def accepted(self) -> list[tuple[str, float, int]]:
        return [(s, t, h) for (s, _), (t, h) in self.readings.items()]

    def view(self) -> dict:
        w = self.w
        wb = math.ceil(w / G) * G  # window end at bucket granularity (== w on boundaries)
        out = {}
        accepted = self.accepted
        for s, last in self.last.items():
            mine = [(t, h) for st_, t, h in accepted if st_ == s and t > wb - 72 * 3600]
            # a 5-minute bucket saturates at 655.35 mm (uint16 hundredths): clamp per bucket
            per_bucket: dict[int, int] = {}
            for t, h in mine:
                k = math.ceil(round(t * 100) / (G * 100))
                per_bucket[k] = min(per_bucket.get(k, 0) + h, 65535)
            mine = [(k * G, h) for k, h in per_bucket.items()]
            stale = w - last >= 1800
            for name, length in WINDOWS.items():
                total = sum(h for t, h in mine if wb - length < t <= wb)
                out[("rain_mm", name, s)] = (round_value(total / 100), stale)
                if name == "24h":
                    out[("rain_class", "24h", s)] = (klass(total / 100), stale)
            start = rain_day_start(w)
            day = sum(h for t, h in mine if start < t)  # every accepted reading is <= w
            out[("rain_day_mm", "rain_day", s)] = (round_value(day / 100), stale)
        return out

    def held_out(self) -> dict[str, float]:
        """Per station: the quarantined readings still inside the 72 h ring, mm (stations holding some)."""
        wb = math.ceil(self.w / G) * G
        tot: dict[str, int] = {}
        for (s, _), (t, h) in self.quarantined.items():
            if math.ceil(round(t * 100) / (G * 100)) * G > wb - 72 * 3600:
                tot[s] = tot.get(s, 0) + h
        return {s: h / 100 for s, h in tot.items() if h}


def as_view(records) -> dict:
    return {r.key: (r.value, r.stale) for r in records}


event_st = st.tuples(
    st.sampled_from(["VP-001", "VP-002", "XX-9"]),
    st.one_of(
        # on bucket boundaries, clustered so readings land exactly on window edges
        st.tuples(st.integers(0, 4), st.sampled_from([0, 1, 11, 12, 13, 35, 36, 37, 72, 73, 144, 145, 227, 228, 229, 288, 289, 863, 864, 865]))
        .map(lambda ab: (ab[0] + ab[1]) * G),
        st.integers(0, 30).map(lambda j: j * G),  # small steps: the watermark advances bucket by bucket
        st.integers(0, 1000).map(lambda j: j * G),  # on bucket boundaries (up to ~83 h)
        st.integers(0, 1000 * G),  # anywhere
        st.integers(1000 * G, 2000 * G).map(lambda j: j + 86400 * 2),  # big jumps, future-dated
    ),
    st.one_of(st.just(0.0), st.integers(0, 3000).map(lambda x: x / 10), st.floats(0, 80, allow_nan=False)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(event_st, min_size=1, max_size=12), min_size=1, max_size=6),
    use_now=st.booleans(),
)
def test_windows_equal_brute_force(batches, use_now):
    p = RainProcessor(CAT)
    ref = Reference()
    emitted: dict = {}
    for batch in batches:
        evs = [rain(s, T0 + off, mm) for s, off, mm in batch]
        now = T0 + 50 * 3600 if use_now else None
        expected_reasons = [ref.admit(ev, now) for ev in evs]
        res = p.process(evs, now=now)
        got = {r.position: r.reason for r in res.rejections}
        assert got == {i: r for i, r in enumerate(expected_reasons) if r is not None}
        settled = iter(ref.settle())
        expected_outcome = [Outcome.REJECTED if r is not None else next(settled) for r in expected_reasons]
        assert res.outcome.tolist() == expected_outcome
        assert res.accepted == sum(o in (Outcome.ACCEPTED, Outcome.CORRECTED) for o in expected_outcome)
        assert res.duplicates == expected_outcome.count(Outcome.DUPLICATE)
        assert p.watermark == ref.w
        if ref.w is None:
            assert res.indicators == []
            continue
        # deltas: every record stamped with the watermark, one per key, sorted
        keys = [r.key for r in res.indicators]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        for r in res.indicators:
            assert r.ts == res.indicators[0].ts
            assert r.unknown == (r.entity == "XX-9")
        emitted.update(as_view(res.indicators))
        expected = ref.view()
        sums = {k: v for k, v in emitted.items() if k[0] != QUARANTINED}
        held = {k[2]: v[0] for k, v in emitted.items() if k[0] == QUARANTINED and v[0]}
        assert sums == expected
        assert held == ref.held_out()
        flushed = as_view(p.flush())
        assert {k: v for k, v in flushed.items() if k[0] != QUARANTINED} == expected
        assert {k[2]: v[0] for k, v in flushed.items() if k[0] == QUARANTINED} == ref.held_out()


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["VP-001", "VP-002"]),
            st.sampled_from([0, 0, 1, 1, 2, 3, 12, 36, 100, 287, 850]),  # buckets; big steps wrap the 72 h ring
            st.one_of(st.just(0), st.integers(-40, 0)),
            st.integers(0, 30),
        ),
        min_size=10,
        max_size=120,
    ),
    batch_size=st.integers(1, 4),
)
def test_walking_watermark_equals_brute_force(steps, batch_size):
    """Watermark advancing a few buckets at a time (with late readings behind it)."""
    p = RainProcessor(CAT)
    ref = Reference()
    emitted: dict = {}
    pos = 0
    evs = []
    for station, step, back, tenths in steps:
        pos += step
        evs.append(rain(station, T0 + (pos + back) * G, tenths / 10))
    for i in range(0, len(evs), batch_size):
        batch = evs[i : i + batch_size]
        late = []  # (station, t) of admitted readings behind the watermark
        admitted = []
        for ev in batch:
            before = ref.w
            if ref.admit(ev, None) is None:
                admitted.append((ev, before))
        for (ev, before), o in zip(admitted, ref.settle()):
            if o != Outcome.DUPLICATE and before is not None and ev.t < before:
                late.append((ev.station, ev.t))
        out = p.process(batch).indicators
        emitted.update(as_view(out))
        assert emitted == ref.view()
        wb = math.ceil(ref.w / G) * G
        for r in out:
            if r.window == "rain_day":
                inside = [t for s_, t in late if s_ == r.entity and t > rain_day_start(ref.w)]
            else:
                inside = [t for s_, t in late if s_ == r.entity and t > wb - WINDOWS[r.window]]
            assert r.late == bool(inside), r


def test_ring_wraps_after_72h():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0, 1.0)])
    for j in range(1, 900):
        p.process([rain("VP-001", T0 + j * G, 0.0)])
    view = {r.key: r.value for r in p.flush()}
    assert all(view[("rain_mm", w, "VP-001")] == 0.0 for w in WINDOWS)


def test_bucket_boundaries_exact_window():
    """W - L < t <= W: a reading exactly L before the watermark is out, one bucket later is in."""
    p = RainProcessor(CAT)
    w = T0 + 100 * 3600
    p.process([rain("VP-001", w - 3600, 1.0), rain("VP-001", w - 3600 + G, 2.0), rain("VP-001", w, 4.0)])
    view = {r.key: r.value for r in p.flush()}
    assert view[("rain_mm", "1h", "VP-001")] == 6.0
    assert view[("rain_mm", "3h", "VP-001")] == 7.0


def test_window_expiry_reemits_quiet_station():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0, 5.0), rain("VP-002", T0, 1.0)])
    out = p.process([rain("VP-002", T0 + 3600, 0.0)])
    recs = {r.key: r for r in out.indicators}
    # VP-001 did not report, but its 1h sum left the window and it went stale
    assert recs[("rain_mm", "1h", "VP-001")].value == 0.0
    assert recs[("rain_mm", "1h", "VP-001")].stale is True
    assert recs[("rain_mm", "24h", "VP-001")].value == 5.0
    assert ("rain_mm", "24h", "VP-002") not in recs  # unchanged, not stale: not re-sent


def test_unchanged_values_not_resent():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0, 1.0)])
    assert p.process([rain("VP-001", T0 - 60, 0.0)]).indicators == []


def test_stale_flag_and_recovery():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0, 1.0), rain("VP-002", T0, 1.0)])
    out = p.process([rain("VP-002", T0 + 1799, 0.0)]).indicators
    assert not any(r.entity == "VP-001" for r in out)
    out = p.process([rain("VP-002", T0 + 1800, 0.0)]).indicators
    stale = [r for r in out if r.entity == "VP-001"]
    assert len(stale) == 8 and all(r.stale for r in stale)
    out = p.process([rain("VP-001", T0 + 1900, 0.0)]).indicators
    fresh = [r for r in out if r.entity == "VP-001"]
    assert len(fresh) == 8 and not any(r.stale for r in fresh)


def test_station_never_reported_emits_nothing():
    p = RainProcessor(CAT)
    out = p.process([rain("VP-001", T0, 0.0)]).indicators + p.flush()
    assert out and all(r.entity == "VP-001" for r in out)
    assert {r.value for r in out if r.name == "rain_mm"} == {0.0}


def test_late_event_reemitted_with_late_flag():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0 + 10 * 3600, 1.0)])
    out = p.process([rain("VP-001", T0 + 5 * 3600, 2.0)]).indicators
    by = {r.key: r for r in out}
    assert by[("rain_mm", "6h", "VP-001")].value == 3.0 and by[("rain_mm", "6h", "VP-001")].late
    assert ("rain_mm", "1h", "VP-001") not in by  # outside the 1h window: unchanged
    assert by[("rain_mm", "72h", "VP-001")].late


def test_rejections_carry_reason_and_raw():
    p = RainProcessor(CAT)
    p.process([rain("VP-001", T0 + 100 * 3600, 1.0)])
    old = rain("VP-001", T0 + 28 * 3600, 1.0)  # exactly 72 h before: too late
    fut = rain("VP-001", T0 + 124 * 3600 + 1, 1.0)
    res = p.process([old, fut])
    assert [r.reason for r in res.rejections] == [Reason.TOO_LATE, Reason.FUTURE_TIMESTAMP]
    assert res.rejections[0].feed == "rain" and b'"station":"VP-001"' in res.rejections[0].raw
    assert "ahead" in res.rejections[1].detail
    assert p.watermark == T0 + 100 * 3600
    # wall clock reference: 1 day + 300 s skew
    res = p.process([rain("VP-001", T0 + 101 * 3600, 1.0)], now=T0 + 101 * 3600 - 86400 - 301)
    assert [r.reason for r in res.rejections] == [Reason.FUTURE_TIMESTAMP]


def test_rain_day_resets_at_19h():
    p = RainProcessor(CAT)
    nineteen = parse_ts("2026-10-28T19:00:00+07:00")
    p.process([rain("VP-001", nineteen - G, 3.0), rain("VP-001", nineteen, 4.0)])
    assert {r.key: r.value for r in p.flush()}[("rain_day_mm", "rain_day", "VP-001")] == 0.0
    out = p.process([rain("VP-001", nineteen + G, 1.0)]).indicators
    assert {r.key: r.value for r in out}[("rain_day_mm", "rain_day", "VP-001")] == 1.0


def test_rain_class_boundaries():
    for mm, cls in [(5.99, "light"), (6.0, "rain"), (15.0, "rain"), (15.5, "moderate"), (50.0, "moderate"),
                    (50.01, "heavy"), (100.0, "heavy"), (100.01, "very_heavy")]:
        p = RainProcessor(CAT)
        p.process([rain("VP-001", T0, mm)])
        assert {r.key: r.value for r in p.flush()}[("rain_class", "24h", "VP-001")] == cls, mm


def test_bucket_saturation_keeps_sums_consistent():
    p = RainProcessor(CAT, limits=RainLimits(math.inf, math.inf))  # no quarantine: the buckets' own bound
    p.process([rain("VP-001", T0, 600.0), rain("VP-001", T0 - 1, 100.0), rain("VP-001", T0 + G, 1.0)])
    view = {r.key: r.value for r in p.flush()}
    assert view[("rain_mm", "1h", "VP-001")] == 656.35  # bucket saturated at 655.35, + 1.0
    p.process([rain("VP-001", T0 + 3600, 0.0)])
    view = {r.key: r.value for r in p.flush()}
    assert view[("rain_mm", "1h", "VP-001")] == 1.0


def test_mm_values_match_round_value():
    rng = np.random.default_rng(7)
    h = np.concatenate([np.arange(0, 200_000), rng.integers(0, 864 * 65535, 200_000)])
    assert mm_values(h) == [round_value(x / 100) for x in h.tolist()]


def test_state_round_trip_identical_outputs():
    rng = np.random.default_rng(3)
    evs = [rain(f"VP-00{rng.integers(1, 4)}", T0 + int(rng.integers(0, 200)) * 97, float(rng.integers(0, 50)) / 10) for _ in range(400)]
    a = RainProcessor(CAT)
    for i in range(0, 200, 50):
        a.process(evs[i : i + 50])
    b = RainProcessor(CAT)
    b.set_state(msgspec.msgpack.decode(msgspec.msgpack.encode(a.get_state())))
    for i in range(200, 400, 50):
        ra, rb = a.process(evs[i : i + 50]), b.process(evs[i : i + 50])
        assert msgspec.json.encode(ra.indicators) == msgspec.json.encode(rb.indicators)
        assert ra.rejections == rb.rejections
    assert msgspec.json.encode(a.flush()) == msgspec.json.encode(b.flush())


def test_memory_10k_stations_within_budget():
    cat = parse_catalog("stations:\n" + "".join(f"  - {{id: S{i:05d}, name: s, lat: 21.3, lon: 105.6}}\n" for i in range(10_000)))
    p = RainProcessor(cat)
    p.process([rain(f"S{i:05d}", T0 + (i % 288) * G, 0.2) for i in range(10_000)])
    p.process([rain(f"S{i:05d}", T0 + 80 * 3600, 0.2) for i in range(0, 10_000, 7)])
    assert p.nbytes <= 40 * 2**20, p.nbytes / 2**20  # windows + event identity (codes)
