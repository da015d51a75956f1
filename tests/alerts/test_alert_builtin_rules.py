"""Table-driven tests of every built-in rule: fires, stays quiet, resolves, flaps within hysteresis quietly."""

from __future__ import annotations

import pytest


from alerttest_util import T0, cam, engine_for, ind, make_catalog, rain

from alerts.engine import AlertEngine
from streams.pipeline import Pipeline
from ioc.catalog import demo_catalog

H = 3600.0
DAY = 86400.0


def states(alerts):
    return [(a.rule, a.state, a.severity, a.labels.get("level")) for a in alerts]


# rule, (indicator, window), entity, values (one per 5 min), expected transition per step
SINGLE = [
    ("rain_24h_very_heavy", ("rain_mm", "24h"), "VP-001",
     [50, 100, 100.5, 95, 101, 91, 89.9, 101],
     [None, None, "firing", None, None, None, "resolved", "firing"]),
    ("rain_3h_intense", ("rain_mm", "3h"), "VP-001",
     [69.9, 70, 65, 60, 75, 59.9],
     [None, "firing", None, None, None, "resolved"]),
    ("dossier_overdue", ("dossier_overdue_open", "now"), "vinh-yen",
     [0, 2, 5, 1, 0, 0, 3],
     [None, "firing", None, None, "resolved", None, "firing"]),
]


@pytest.mark.parametrize("rule,key,entity,values,expected", SINGLE, ids=[c[0] for c in SINGLE])
def test_single_indicator_rules(rules, rule, key, entity, values, expected):
    eng = engine_for(rules, rule)
    feed = {"rain_mm": "rain", "dossier_overdue_open": "dossier"}[key[0]]
    got, ids = [], []
    for i, v in enumerate(values):
        t = T0 + i * 300
        out = eng.process([], [ind(key[0], key[1], entity, t, v)], {feed: t})
        assert len(out) <= 1
        got.append(out[0].state if out else None)
        ids += [a.id for a in out]
        for a in out:
            assert a.rule == rule and a.entity == entity and a.ts == ind("x", "y", "z", t, 0).ts
            assert a.severity == eng.rule(rule).severity
            assert a.message["vi"] and a.message["en"] and a.message["vi"] != a.message["en"]
    assert got == expected
    # flapping inside the hysteresis band never re-notifies: one notification per transition
    kinds = [n["kind"] for n in eng.drain_notifications()]
    assert kinds == [s for s in expected if s]
    # a re-trigger after resolution is a new alert with a new id; the first keeps its id until resolved
    assert ids[0] == ids[1]
    if len(ids) > 2:
        assert ids[2] != ids[0]


def test_rain_24h_message_and_value(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = eng.process([], [ind("rain_mm", "24h", "VP-001", T0, 104.25)], {"rain": T0})
    assert a.value == 104.25
    assert "104.2 mm" in a.message["en"] and "24 giờ" in a.message["vi"]
    assert a.started == a.ts == "2026-10-28T13:00:00+07:00"


def test_rain_risk_level_grades_escalates_and_clears(rules):
    """Per area (alerts/risk, tests/alerts/risk): one gauge of Tam Đảo town raises its commune, district, province."""
    eng = engine_for(rules, "rain_risk_level", catalog=demo_catalog())
    steps = [((60, 30), []),
             ((80, 50), [("firing", "warning", "1")]),            # 12 h ≥ 50 → level 1 (Art. 44(1))
             ((210, 60), [("firing", "critical", "2")]),          # band B for 1 day → level 2 (Art. 44(2)(b))
             ((150, 60), [("firing", "warning", "1")]),           # downgrade is an update
             ((95, 40), []),                                      # in the hysteresis band: nothing
             ((85, 40), [("resolved", "warning", "1")])]
    ids = set()
    for i, ((v24, v12), expected) in enumerate(steps):
        t = T0 + i * 600
        out = eng.process([], [ind("rain_mm", "24h", "VP-010", t, v24), ind("rain_mm", "12h", "VP-010", t, v12)],
                          {"rain": t})
        assert {a.entity for a in out} <= {"tt-tam-dao", "tam-dao", "vinh-phuc"}
        mine = [a for a in out if a.entity == "tt-tam-dao"]
        assert [(a.state, a.severity, a.labels["level"]) for a in mine] == expected, i
        assert len(out) == 3 * len(mine)  # the district and the province follow their commune
        ids |= {a.id for a in mine}
        for a in mine:
            assert a.labels["basis"] == "observed"
    assert len(ids) == 1
    kinds = sorted(n["kind"] for n in eng.drain_notifications())
    assert kinds == sorted(["firing", "escalated", "resolved"] * 3)  # the downgrade did not notify


def test_rain_risk_level_duration_clause_consecutive_rain_days(rules):
    eng = engine_for(rules, "rain_risk_level", catalog=demo_catalog())
    levels = []
    for day in range(3):
        t = T0 + day * DAY
        out = eng.process([], [ind("rain_mm", "24h", "VP-010", t, 120), ind("rain_mm", "12h", "VP-010", t, 40),
                               ind("rain_day_mm", "rain_day", "VP-010", t, 120)], {"rain": t})
        levels += [(a.labels["level"], a.labels["days"]) for a in out if a.entity == "tt-tam-dao"]
    # third consecutive rain day ≥ 100 mm on the mountain → level 2 (Art. 44(2)(a), ignoring extent)
    assert levels == [("1", "1"), ("1", "2"), ("2", "3")]


def test_queue_long_needs_five_minutes_in_event_time_and_keeps_firing(rules):
    eng = engine_for(rules, "queue_long")
    site = "mc-vinh-yen"
    out = eng.process([], [ind("queue_waiting", "now", site, T0, 40), ind("queue_counters_open", "now", site, T0, 4)],
                      {"camera": T0})
    assert out == []
    seen = {}
    for dt in (60, 120, 240, 299, 300, 360):  # constant value: only the watermark advances
        seen[dt] = states(eng.process([], [], {"camera": T0 + dt}))
    assert all(v == [] for k, v in seen.items() if k < 300)
    assert seen[300] == [("queue_long", "firing", "warning", None)]
    # 24 / 4 = 6 per counter: the clear condition (≤ 6) must hold for keep_firing_for 2 min
    assert eng.process([], [ind("queue_waiting", "now", site, T0 + 400, 24)], {"camera": T0 + 400}) == []
    assert eng.process([], [], {"camera": T0 + 500}) == []
    (a,) = eng.process([], [], {"camera": T0 + 520})
    assert a.state == "resolved" and a.value == 6.0


def test_queue_long_interrupted_wait_restarts_and_zero_counters(rules):
    eng = engine_for(rules, "queue_long")
    site = "s"
    eng.process([], [ind("queue_waiting", "now", site, T0, 40), ind("queue_counters_open", "now", site, T0, 4)],
                {"camera": T0})
    eng.process([], [ind("queue_waiting", "now", site, T0 + 200, 30)], {"camera": T0 + 200})  # 7.5: not > 8
    assert eng.process([], [ind("queue_waiting", "now", site, T0 + 250, 40)], {"camera": T0 + 250}) == []
    assert eng.process([], [], {"camera": T0 + 400}) == []  # only 150 s since it rose again
    assert states(eng.process([], [], {"camera": T0 + 550})) == [("queue_long", "firing", "warning", None)]
    # no counter open with 9 people waiting counts as 9 per counter
    eng2 = engine_for(rules, "queue_long")
    eng2.process([], [ind("queue_waiting", "now", site, T0, 9), ind("queue_counters_open", "now", site, T0, 0)],
                 {"camera": T0})
    (a,) = eng2.process([], [], {"camera": T0 + 300})
    assert a.value == 9.0


def test_sensor_stale_relative_to_its_feed_watermark(rules):
    eng = engine_for(rules, "sensor_stale")
    out = []
    for i in range(9):  # VP-001 reports every 5 min; VP-002 stops after the first reading
        t = T0 + i * 300
        evs = [rain("VP-001", t, 0.0)] + ([rain("VP-002", t, 0.0)] if i == 0 else [])
        out += eng.process(evs, [], {"rain": t})
    (a,) = out
    assert (a.rule, a.entity, a.state, a.labels["feed"]) == ("sensor_stale", "VP-002", "firing", "rain")
    assert a.ts == "2026-10-28T13:30:00+07:00" and a.value == 30.0
    assert a.labels["last_seen"] == "2026-10-28T13:00:00+07:00"
    # the feed itself pauses (watermark frozen): no more stale alerts, VP-001 is not blamed
    assert eng.process([], [], {"rain": T0 + 8 * 300}) == []
    # VP-002 reports again → resolved
    (r,) = eng.process([rain("VP-002", T0 + 2700, 0.2)], [], {"rain": T0 + 2700})
    assert (r.entity, r.state, r.id) == ("VP-002", "resolved", a.id)


def test_sensor_stale_ignores_never_seen_catalog_sensors_by_default(rules, catalog):
    """A catalog sensor that never reported is "no data" (grey on the wall), not an alert, unless asked."""
    eng = engine_for(rules, "sensor_stale", catalog=catalog)
    out = []
    for i in range(7):
        t = T0 + i * 300
        out += eng.process([rain("VP-001", t, 0.0), cam("cam-x", "mc-vinh-yen", t, 1, 1)], [], {"rain": t, "camera": t})
    assert out == []


def test_sensor_stale_catalog_station_that_never_reports_and_cameras(rules, catalog):
    import dataclasses

    from alerts.rules import RuleSet

    stale = rules.get("sensor_stale")
    watched = dataclasses.replace(stale, params={**stale.params, "catalog": True})
    eng = AlertEngine(RuleSet((watched,)), catalog)
    out = []
    for i in range(7):
        t = T0 + i * 300
        out += eng.process([rain("VP-001", t, 0.0), cam("cam-x", "mc-vinh-yen", t, 1, 1)], [],
                           {"rain": t, "camera": t})
    got = sorted((a.entity, a.labels["feed"], a.labels.get("unit")) for a in out)
    assert got == [("VP-002", "rain", "vinh-yen"), ("cam-vy-1", "camera", "vinh-yen")]


def test_flatline_stuck_sensor_but_not_a_dry_gauge(rules):
    eng = engine_for(rules, "sensor_flatline")
    out = []
    for i in range(14):
        t = T0 + i * 300
        out += eng.process([cam("cam-1", "s", t, 17, 2), rain("VP-001", t, 0.0)], [], {"camera": t, "rain": t})
    (a,) = out
    assert (a.rule, a.entity, a.state, a.severity, a.value) == ("sensor_flatline", "cam-1", "firing", "info", 17.0)
    (r,) = eng.process([cam("cam-1", "s", T0 + 14 * 300, 16, 2)], [], {"camera": T0 + 14 * 300})
    assert r.state == "resolved"


def test_implausible_reading_is_a_data_quality_alert_and_never_a_rain_alert(rules):
    # the rain processor quarantines the reading (out of the sums); the engine raises the data-quality alert
    eng = engine_for(rules, "implausible_reading", "rain_24h_very_heavy", catalog=make_catalog())
    pipe = Pipeline(eng.catalog, eng)
    pipe.process([rain("VP-001", T0, 1.0)])
    t = T0 + 300
    out = pipe.process([rain("VP-001", t, 250.0)]).alerts
    (bad,) = out  # no rain_24h_very_heavy: the 250 mm are not in the sums
    assert (bad.rule, bad.state, bad.severity, bad.value, bad.labels["reason"]) == (
        "implausible_reading", "firing", "warning", 250.0, "reading_too_large")
    assert "data_quality" not in bad.labels
    # a 5-min reading of 80 mm is 480 mm/h over the 10-min floor: implausible rate
    eng2 = engine_for(rules, "implausible_reading", catalog=make_catalog())
    pipe2 = Pipeline(eng2.catalog, eng2)
    pipe2.process([rain("VP-002", T0, 0.0)])
    (a,) = pipe2.process([rain("VP-002", T0 + 300, 80.0)]).alerts
    assert a.labels["reason"] == "rate_too_high"
    # plausible readings for an hour → resolved
    assert pipe.process([rain("VP-001", T0 + 1800, 1.0)]).alerts == []
    (r,) = pipe.process([rain("VP-001", T0 + 300 + 3600, 1.0)]).alerts
    assert (r.rule, r.state) == ("implausible_reading", "resolved")


def test_late_indicator_marks_the_alert_late(rules):
    eng = engine_for(rules, "rain_3h_intense")
    eng.process([], [ind("rain_mm", "3h", "VP-001", T0, 10)], {"rain": T0})
    (a,) = eng.process([], [ind("rain_mm", "3h", "VP-001", T0 + 60, 80, late=True)], {"rain": T0 + 60})
    assert a.late is True
    (b,) = eng.process([], [ind("rain_mm", "3h", "VP-002", T0 + 120, 80)], {"rain": T0 + 120})
    assert b.late is False


def test_no_data_is_not_zero(rules):
    eng = engine_for(rules, "dossier_overdue")
    eng.process([], [ind("dossier_overdue_open", "now", "u", T0, 3)], {"dossier": T0})
    # a stale indicator with no value neither fires nor clears
    assert eng.process([], [ind("dossier_overdue_open", "now", "u", T0 + 60, None, stale=True)],
                       {"dossier": T0 + 60}) == []
    assert len(eng.active()) == 1
