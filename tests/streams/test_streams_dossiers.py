"""DossierProcessor: Decision 766 on-time rule, roll-up, periods, overdue, state."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.catalog import parse_catalog
from ioc.errors import Reason
from ioc.events import DossierEvent
from ioc.records import round_value
from ioc.timeutil import format_ts, parse_ts, period_key
from streams.core import Outcome
from streams.dossiers import ATTRS, DossierProcessor


def values(ev: DossierEvent) -> tuple:
    return tuple(getattr(ev, a) for a in ATTRS)

CAT = parse_catalog(
    """
targets: {on_time_rate: 0.98, online_rate: 0.5, digitization_rate: 0.8, online_payment_rate: 0.8}
units:
  - {id: p, name: P, level: province}
  - {id: d1, name: D1, level: district, parent: p}
  - {id: d2, name: D2, level: district, parent: p}
  - {id: c1, name: C1, level: commune, parent: d1}
"""
)
H = 3600.0
T0 = parse_ts("2026-10-28T08:00:00+07:00")


def dv(dossier: str, t: float, status: str, unit: str = "c1", **kw) -> DossierEvent:
    from datetime import datetime, timezone

    if "due_t" in kw:
        kw["due"] = datetime.fromtimestamp(kw.pop("due_t"), timezone.utc)
    return DossierEvent(dossier=dossier, unit=unit, ts=datetime.fromtimestamp(t, timezone.utc), status=status, **kw)


def view(records) -> dict:
    return {r.key: r.value for r in records}


# ---------------------------------------------------------------- Decision 766 on-time rule
ON_TIME_CASES = [
    # (description, events as (hours after T0, status), due hours, on time?)
    ("processed before due", [(0, "received"), (5, "processed")], 10, True),
    ("processed exactly at due", [(0, "received"), (10, "processed")], 10, True),
    ("processed after due", [(0, "received"), (11, "processed")], 10, False),
    ("one supplement pause extends due", [(0, "received"), (2, "supplement_requested"), (6, "in_process"), (13, "processed")], 10, True),
    ("pause ends at the next status, not at processing", [(0, "received"), (2, "supplement_requested"), (3, "in_process"), (13, "processed")], 10, False),
    ("two supplement requests: late even if fast", [(0, "received"), (1, "supplement_requested"), (2, "in_process"), (3, "supplement_requested"), (4, "in_process"), (5, "processed")], 10, False),
    ("pause ended by processing itself", [(0, "received"), (8, "supplement_requested"), (20, "processed")], 10, True),
    ("out-of-order arrival is reordered by event time", [(13, "processed"), (0, "received"), (6, "in_process"), (2, "supplement_requested")], 10, True),
]


@pytest.mark.parametrize("desc,events,due_h,on_time", ON_TIME_CASES, ids=[c[0] for c in ON_TIME_CASES])
def test_on_time_rule(desc, events, due_h, on_time):
    p = DossierProcessor(CAT)
    for h, status in events:
        kw = {"due_t": T0 + due_h * H} if status == "received" else {}
        p.process([dv("A", T0 + h * H, status, **kw)])
    v = view(p.flush())
    assert v[("dossier_processed", "day", "c1")] == 1
    assert v[("dossier_on_time_rate", "day", "c1")] == (1.0 if on_time else 0.0)


def test_processed_without_known_due_is_excluded_from_on_time():
    p = DossierProcessor(CAT)
    p.process([dv("A", T0, "processed"), dv("B", T0, "received", due_t=T0 + H), dv("B", T0 + 0.5 * H, "processed")])
    v = view(p.flush())
    assert v[("dossier_processed", "day", "c1")] == 2
    assert v[("dossier_on_time_rate", "day", "c1")] == 1.0  # only B counts


# ---------------------------------------------------------------- roll-up, rates, unknown
def test_roll_up_to_every_ancestor_and_unknown_units():
    p = DossierProcessor(CAT)
    out = p.process(
        [
            dv("A", T0, "received", unit="c1", channel="online"),
            dv("B", T0, "received", unit="d2", channel="direct"),
            dv("C", T0, "received", unit="ghost", channel="online"),
        ]
    ).indicators
    v = view(out)
    assert v[("dossier_received", "year", "c1")] == 1
    assert v[("dossier_received", "year", "d1")] == 1
    assert v[("dossier_received", "year", "d2")] == 1
    assert v[("dossier_received", "year", "p")] == 2  # ghost is not in the tree
    assert v[("dossier_online_rate", "month", "p")] == 0.5
    ghost = [r for r in out if r.entity == "ghost"]
    assert ghost and all(r.unknown for r in ghost)
    assert not any(r.unknown for r in out if r.entity != "ghost")
    periods = {r.window: r.period for r in out if r.name == "dossier_received"}
    assert periods == {"day": "2026-10-28", "month": "2026-10", "year": "2026"}
    assert all(r.ts == format_ts(T0) for r in out)


def test_empty_set_rates_not_emitted():
    p = DossierProcessor(CAT)
    out = p.process([dv("A", T0, "received", unit="c1")]).indicators + p.flush()
    names = {r.name for r in out}
    assert "dossier_online_payment_rate" not in names  # no fee-bearing dossier
    assert "dossier_on_time_rate" not in names  # nothing processed
    assert all(r.value is not None for r in out)
    # a new day: yesterday's rates are retracted once with null, never 0 or 1
    p.process([dv("B", T0, "received", unit="c1", fee=True, paid_online=False)])
    out = p.process([dv("C", T0 + 24 * H, "in_process", unit="d2")]).indicators
    day_rates = {r.key: r.value for r in out if r.window == "day" and r.name.endswith("_rate") and r.entity == "c1"}
    assert day_rates == {
        ("dossier_online_rate", "day", "c1"): None,
        ("dossier_digitization_rate", "day", "c1"): None,
        ("dossier_online_payment_rate", "day", "c1"): None,
    }
    assert not any(r.value is None for r in p.flush())
    assert view(p.flush())[("dossier_received", "day", "c1")] == 0


def test_flags_arriving_later_count_for_the_received_period():
    p = DossierProcessor(CAT)
    p.process([dv("A", T0, "received", fee=True), dv("B", T0, "received")])
    v = view(p.process([dv("A", T0 + 2 * H, "processed", paid_online=True, digitized=True)]).indicators)
    assert v[("dossier_online_payment_rate", "day", "c1")] == 1.0
    assert v[("dossier_digitization_rate", "day", "c1")] == 0.5


def test_a_feed_without_paid_online_has_no_payment_rate_not_zero():
    """fee: true but paid_online never sent: no data (a grey tile), not 0 % (a permanently red one)."""
    p = DossierProcessor(CAT)
    v = view(p.process([dv("A", T0, "received", fee=True), dv("B", T0, "processed", fee=True)]).indicators
             + p.flush())
    assert ("dossier_online_payment_rate", "day", "c1") not in v
    v = view(p.process([dv("C", T0 + 60, "received", fee=True, paid_online=False)]).indicators)
    assert v[("dossier_online_payment_rate", "day", "c1")] == 0.0  # a known payment, made otherwise: 0 %
    v = view(p.process([dv("A", T0 + 120, "processed", paid_online=True)]).indicators)
    assert v[("dossier_online_payment_rate", "day", "c1")] == 0.5  # A's payment now known; B's still not
    from ioc.events import parse_event

    bad = parse_event(b'{"kind":"dossier","dossier":"D","unit":"c1","ts":"2026-10-28T08:00:00+07:00",'
                      b'"status":"received","fee":true,"paid_online":"yes"}')
    assert bad.reason == Reason.WRONG_TYPE and "paid_online" in bad.detail  # true / false / null only


# ---------------------------------------------------------------- overdue and backlog
def test_overdue_open_follows_watermark_and_pauses():
    p = DossierProcessor(CAT)
    p.process(
        [
            dv("A", T0, "received", due_t=T0 + 2 * H),
            dv("B", T0, "received", due_t=T0 + 2 * H),
            dv("B", T0 + 1 * H, "supplement_requested"),
        ]
    )
    v = view(p.process([dv("X", T0 + 3 * H, "in_process", unit="d2")]).indicators)
    # A passed its due with no event of its own; B's clock is paused
    assert v[("dossier_overdue_open", "now", "c1")] == 1
    assert view(p.flush())[("dossier_open", "now", "c1")] == 2
    p.process([dv("B", T0 + 5 * H, "in_process")])  # paused 4 h: due now T0 + 6 h
    assert view(p.flush())[("dossier_overdue_open", "now", "c1")] == 1
    v = view(p.process([dv("X", T0 + 6.5 * H, "fee_due", unit="d2")]).indicators)
    assert v[("dossier_overdue_open", "now", "c1")] == 2
    assert v[("dossier_overdue_open", "now", "p")] == 2
    v = view(p.process([dv("A", T0 + 7 * H, "processed"), dv("B", T0 + 7 * H, "withdrawn")]).indicators)
    assert v[("dossier_overdue_open", "now", "c1")] == 0
    assert v[("dossier_open", "now", "c1")] == 0


def test_overdue_boundary_is_strict():
    p = DossierProcessor(CAT)
    p.process([dv("A", T0, "received", due_t=T0 + H)])
    assert view(p.process([dv("X", T0 + H, "in_process", unit="d2")]).indicators).get(("dossier_overdue_open", "now", "c1")) is None
    v = view(p.process([dv("X", T0 + H + 1, "in_process", unit="d2")]).indicators)
    assert v[("dossier_overdue_open", "now", "c1")] == 1


def test_late_event_marks_records_late():
    p = DossierProcessor(CAT)
    p.process([dv("A", T0 + 5 * H, "received")])
    out = p.process([dv("B", T0 + 1 * H, "received", unit="d2")]).indicators
    by = {r.key: r for r in out}
    assert by[("dossier_received", "day", "d2")].late
    assert by[("dossier_received", "day", "p")].late
    assert all(r.ts == format_ts(T0 + 5 * H) for r in out)


# ---------------------------------------------------------------- admission and year rollover
def test_rejections_future_and_before_year_start():
    p = DossierProcessor(CAT)
    jan = parse_ts("2027-01-01T00:00:00+07:00")
    p.process([dv("A", jan - H, "received"), dv("A", jan + H, "in_process")])
    res = p.process([dv("B", jan - 1, "received"), dv("C", jan + 26 * H, "received"), dv("D", jan, "received")])
    assert [(r.position, r.reason) for r in res.rejections] == [(0, Reason.TOO_LATE), (1, Reason.FUTURE_TIMESTAMP)]
    assert res.accepted == 1 and p.watermark == jan + H
    v = view(p.flush())
    assert v[("dossier_received", "year", "c1")] == 1  # D; A was received last year
    assert v[("dossier_open", "now", "c1")] == 2


def test_closed_dossiers_dropped_at_new_year_and_not_resurrected():
    p = DossierProcessor(CAT)
    jan = parse_ts("2027-01-01T00:00:00+07:00")
    p.process([dv("A", jan - 5 * H, "received"), dv("A", jan - 4 * H, "processed")])
    p.process([dv("B", jan + H, "received")])
    assert "A" not in p._d
    p.process([dv("A", jan + 2 * H, "in_process")])  # trailing event of a dossier closed last year
    assert view(p.flush())[("dossier_open", "now", "c1")] == 1


# ---------------------------------------------------------------- ranking
def test_unit_score_and_rank():
    p = DossierProcessor(CAT)
    p.process(
        [
            dv("A", T0, "received", unit="d1", channel="online", digitized=True, due_t=T0 + H),
            dv("A", T0 + 0.5 * H, "processed", unit="d1"),
            dv("B", T0, "received", unit="d2", channel="direct", due_t=T0 + H),
            dv("B", T0 + 2 * H, "processed", unit="d2"),
        ]
    )
    v = view(p.flush())
    assert v[("unit_score", "year", "d1")] == 100.0  # online, digitization, on-time full; no fee → not counted
    assert v[("unit_score", "year", "d2")] == 0.0
    assert v[("unit_rank", "year", "d1")] == 1 and v[("unit_rank", "year", "d2")] == 2
    assert v[("unit_rank", "year", "p")] == 1
    assert v[("unit_score", "year", "p")] == round_value((100.0 + 0.5 / 0.8 * 100 + 0.5 / 0.98 * 100) / 3)


def test_departments_rank_among_themselves_not_with_their_province():
    """Provincial departments carry the province's level; the province is not one of them (its departments
    used to start at rank 2 of 3 behind the province's own aggregate)."""
    cat = parse_catalog(
        """
units:
  - {id: p, name: P, level: province}
  - {id: so-a, name: Sở A, level: province, parent: p}
  - {id: so-b, name: Sở B, level: province, parent: p}
"""
    )
    p = DossierProcessor(cat)
    p.process([
        dv("A", T0, "received", unit="so-a", channel="online", due_t=T0 + H),
        dv("A", T0 + 0.5 * H, "processed", unit="so-a"),
        dv("B", T0, "received", unit="so-b", channel="direct", due_t=T0 + H),
        dv("B", T0 + 2 * H, "processed", unit="so-b"),
    ])
    v = view(p.flush())
    assert v[("unit_score", "year", "p")] is not None
    assert (v[("unit_rank", "year", "so-a")], v[("unit_rank", "year", "so-b")]) == (1, 2)
    assert v[("unit_rank", "year", "p")] == 1  # alone in its group


# ---------------------------------------------------------------- brute force
UNITS = ["c1", "d1", "d2", "ghost"]
STATUSES = ["received", "received", "in_process", "supplement_requested", "fee_due", "processed", "returned", "rejected", "withdrawn"]
BASE = parse_ts("2026-12-31T12:00:00+07:00")
CLOSED = {"processed", "returned", "rejected", "withdrawn"}
ANCESTORS = {"c1": ["c1", "d1", "p"], "d1": ["d1", "p"], "d2": ["d2", "p"], "ghost": ["ghost"], "p": ["p"]}


class Ref:
    def __init__(self) -> None:
        self.w = None
        self.events: dict[str, list] = {}
        self.frozen: set[str] = set()
        self.n = 0

    def admit(self, ev: DossierEvent, now) -> Reason | None:
        ref = now + 300 if now is not None else self.w
        if ref is not None and ev.t > ref + 86400:
            return Reason.FUTURE_TIMESTAMP
        if self.w is not None and period_key(ev.t, "year") < period_key(self.w, "year"):
            return Reason.TOO_LATE
        if self.w is not None and period_key(ev.t, "year") > period_key(self.w, "year"):
            for d, evs in list(self.events.items()):
                if any(e.status in CLOSED for _, e in evs):
                    del self.events[d]
                    self.frozen.add(d)
        self.w = ev.t if self.w is None else max(self.w, ev.t)
        self.last_outcome = Outcome.ACCEPTED
        if ev.dossier not in self.frozen:
            # natural key (dossier, status, ts at 0.01 s): a re-send is a duplicate or replaces the values
            lst = self.events.setdefault(ev.dossier, [])
            for j, (n, e) in enumerate(lst):
                if e.status == ev.status and round(e.t * 100) == round(ev.t * 100):
                    if values(e) == values(ev):
                        self.last_outcome = Outcome.DUPLICATE
                    else:
                        self.last_outcome = Outcome.CORRECTED
                        lst[j] = (n, ev)
                    break
            else:
                self.n += 1
                lst.append((self.n, ev))
        return None

    def dossier(self, evs):
        evs = sorted(evs, key=lambda x: (x[1].t, x[0]))

        def last(attr):
            vals = [(e.t, n, getattr(e, attr)) for n, e in evs if getattr(e, attr) is not None]
            return max(vals, key=lambda v: (v[0], v[1]))[2] if vals else None

        seq = [e for _, e in evs]
        recv = min((e.t for e in seq if e.status == "received"), default=None)
        proc = min((e.t for e in seq if e.status == "processed"), default=None)
        closed = any(e.status in CLOSED for e in seq)
        due = last("due_t")
        # supplement requests before the first closing event; each pauses until the next event
        first_close = next((i for i, e in enumerate(seq) if e.status in CLOSED), len(seq))
        pauses = []  # (start, end or None)
        for i, e in enumerate(seq[:first_close]):
            if e.status == "supplement_requested":
                pauses.append((e.t, seq[i + 1].t if i + 1 < len(seq) else None))
        on_time = None
        if proc is not None and due is not None:
            before = [(s, e) for s, e in pauses if s <= proc and e is not None and e <= proc]
            on_time = len(before) <= 1 and proc <= due + sum(e - s for s, e in before)
        overdue = False
        if not closed and due is not None:
            done = sum(e - s for s, e in pauses if e is not None)
            if pauses and pauses[-1][1] is None:
                overdue = due + done < pauses[-1][0]
            else:
                overdue = due + done < self.w
        fee = last("fee") is True and last("paid_online") is not None  # the payment rate's denominator
        return dict(unit=last("unit"), recv=recv, proc=proc, closed=closed, on_time=on_time, overdue=overdue,
                    online=last("channel") == "online", dig=last("digitized") is True, fee=fee,
                    paid=fee and last("paid_online") is True)

    def values(self) -> dict:
        c: dict = {}

        def add(u, key):
            for a in ANCESTORS[u]:
                c[(a, *key)] = c.get((a, *key), 0) + 1

        for evs in self.events.values():
            d = self.dossier(evs)
            for w in ("day", "month", "year"):
                cur = period_key(self.w, w)
                if d["recv"] is not None and period_key(d["recv"], w) == cur:
                    for k in ("recv", "online", "dig", "fee", "paid"):
                        if k == "recv" or d[k]:
                            add(d["unit"], (k, w))
                if d["proc"] is not None and period_key(d["proc"], w) == cur:
                    add(d["unit"], ("proc", w))
                    if d["on_time"] is not None:
                        add(d["unit"], ("den", w))
                        if d["on_time"]:
                            add(d["unit"], ("ont", w))
            if not d["closed"]:
                add(d["unit"], ("open", "now"))
                if d["overdue"]:
                    add(d["unit"], ("overdue", "now"))
        units = {k[0] for k in c}
        out = {}
        g = lambda *k: c.get(k, 0)  # noqa: E731
        scores = {}
        for u in units:
            for w in ("day", "month", "year"):
                per = period_key(self.w, w)
                out[("dossier_received", w, u)] = (g(u, "recv", w), per)
                out[("dossier_processed", w, u)] = (g(u, "proc", w), per)
                for name, num, den in [("online", "online", "recv"), ("digitization", "dig", "recv"),
                                       ("online_payment", "paid", "fee"), ("on_time", "ont", "den")]:
                    if g(u, den, w):
                        out[(f"dossier_{name}_rate", w, u)] = (round_value(g(u, num, w) / g(u, den, w)), per)
            out[("dossier_open", "now", u)] = (g(u, "open", "now"), None)
            out[("dossier_overdue_open", "now", u)] = (g(u, "overdue", "now"), None)
            parts = []
            for name, target in [("online", 0.5), ("digitization", 0.8), ("online_payment", 0.8), ("on_time", 0.98)]:
                v = out.get((f"dossier_{name}_rate", "year", u))
                if v is not None:
                    parts.append(min(1.0, (g(u, {"online": "online", "digitization": "dig", "online_payment": "paid", "on_time": "ont"}[name], "year") / g(u, {"online": "recv", "digitization": "recv", "online_payment": "fee", "on_time": "den"}[name], "year")) / target) * 100)
            if parts:
                scores[u] = round_value(sum(parts) / len(parts))
                out[("unit_score", "year", u)] = (scores[u], period_key(self.w, "year"))
        levels = {"p": "province", "d1": "district", "d2": "district", "c1": "commune"}
        for lvl in set(levels.values()):
            ranked = sorted((-s, u) for u, s in scores.items() if levels.get(u) == lvl)
            for i, (_, u) in enumerate(ranked, 1):
                out[("unit_rank", "year", u)] = (i, period_key(self.w, "year"))
        return out


dossier_event = st.builds(
    lambda d, u, minutes, status, channel, due_h, fee, paid, dig: dv(
        f"D{d}", BASE + minutes * 60, status, unit=u,
        **{k: v for k, v in dict(channel=channel, fee=fee, paid_online=paid, digitized=dig).items() if v is not None},
        **({"due_t": BASE + due_h * H} if due_h is not None else {}),
    ),
    st.integers(0, 2),
    st.sampled_from(UNITS[:1] * 3 + UNITS),
    st.one_of(
        st.integers(-14, 24).map(lambda h: h * 60),  # whole hours: ties and exact due times
        st.integers(-14 * 60, 24 * 60),
        st.integers(3 * 24 * 60, 4 * 24 * 60),
    ),
    st.sampled_from(STATUSES + ["supplement_requested", "in_process", "processed"]),
    st.sampled_from([None, "online", "direct"]),
    st.one_of(st.none(), st.integers(-12, 30), st.integers(-12 * 60, 30 * 60).map(lambda m: m / 60)),
    st.sampled_from([None, True, False]),
    st.sampled_from([None, True, False]),
    st.sampled_from([None, True, False]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(dossier_event, min_size=1, max_size=8), min_size=1, max_size=6))
def test_indicators_equal_brute_force(batches):
    p = DossierProcessor(CAT)
    ref = Ref()
    emitted: dict = {}
    for batch in batches:
        expected, outcomes = [], []
        for ev in batch:
            expected.append(ref.admit(ev, None))
            outcomes.append(Outcome.REJECTED if expected[-1] else ref.last_outcome)
        res = p.process(batch)
        assert {r.position: r.reason for r in res.rejections} == {i: r for i, r in enumerate(expected) if r}
        assert res.outcome.tolist() == outcomes
        assert p.watermark == ref.w
        for r in res.indicators:
            if r.value is None:
                emitted.pop(r.key, None)
            else:
                emitted[r.key] = (r.value, r.period)
        flushed = {r.key: (r.value, r.period) for r in p.flush()}
        assert emitted == flushed
        want = ref.values()
        for key, val in flushed.items():
            zero = (0, val[1])
            assert want.get(key, zero) == val, key
        for key, val in want.items():
            if val[0] not in (0, None):
                assert flushed.get(key) == val, key


def test_state_round_trip_identical_outputs():
    evs = [
        dv(f"D{i % 7}", T0 + (i * 37 % 50) * 600, ["received", "in_process", "supplement_requested", "processed"][i % 4],
           unit=UNITS[i % 4], due_t=T0 + (i % 9) * H, channel="online" if i % 3 else "direct", fee=bool(i % 2))
        for i in range(120)
    ]
    a = DossierProcessor(CAT)
    for i in range(0, 60, 10):
        a.process(evs[i : i + 10])
    b = DossierProcessor(CAT)
    b.set_state(msgspec.msgpack.decode(msgspec.msgpack.encode(a.get_state())))
    for i in range(60, 120, 10):
        ra, rb = a.process(evs[i : i + 10]), b.process(evs[i : i + 10])
        assert msgspec.json.encode(ra.indicators) == msgspec.json.encode(rb.indicators)
    later = [dv("Z", T0 + 30 * H, "in_process", unit="d2")]
    assert msgspec.json.encode(a.process(later).indicators) == msgspec.json.encode(b.process(later).indicators)
    assert msgspec.json.encode(a.flush()) == msgspec.json.encode(b.flush())
