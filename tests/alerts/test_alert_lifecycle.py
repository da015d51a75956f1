"""Lifecycle: ack, resolve, stable ids, re-trigger updates, silences, incidents, audit, replay determinism."""

from __future__ import annotations

import hashlib

import pytest

from alerts.engine import AlertEngine
from alerts.lifecycle import NotActive, NotFound
from ioc.records import encode

from alerttest_util import T0, cam, engine_for, ind, rain


def fire24(eng, station, t, v):
    return eng.process([], [ind("rain_mm", "24h", station, t, v)], {"rain": t})


def test_acknowledge_then_resolve_with_audit_log(rules):
    eng = engine_for(rules, "rain_24h_very_heavy", "rain_risk_level")
    out = fire24(eng, "VP-001", T0, 120)
    a = next(x for x in out if x.rule == "rain_24h_very_heavy")
    acked = eng.acknowledge(a.id, by="lan", comment="đã gọi trạm", at=T0 + 7200.5)
    assert acked.state == "firing" and acked.id == a.id
    assert acked.acknowledged == {"by": "lan", "at": "2026-10-28T15:00:00.500+07:00", "comment": "đã gọi trạm"}
    assert acked.ts == a.ts  # the record keeps event time; the ack carries the wall-clock `at`
    assert eng.drain_updates() == [acked] and eng.drain_updates() == []
    assert eng.acknowledge(a.id, by="someone-else") == acked  # idempotent
    assert [x.id for x in eng.list(state="acknowledged")] == [a.id]
    assert a.id not in [x.id for x in eng.list(state="unacknowledged")]
    # still acknowledged while it keeps firing; resolves normally
    assert fire24(eng, "VP-001", T0 + 300, 130) == []
    (r,) = [x for x in fire24(eng, "VP-001", T0 + 600, 50) if x.rule == "rain_24h_very_heavy"]
    assert r.state == "resolved" and r.acknowledged["by"] == "lan"
    assert [e["transition"] for e in eng.history(a.id)] == ["firing", "acknowledged", "resolved"]
    with pytest.raises(NotActive):
        eng.acknowledge(a.id, by="lan")
    with pytest.raises(NotFound):
        eng.acknowledge("nope", by="lan")
    assert eng.get(a.id).state == "resolved"


def test_stable_deterministic_id_and_retrigger_updates_not_duplicates(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = fire24(eng, "VP-001", T0, 101)
    assert a.id == hashlib.sha1(f"rain_24h_very_heavy|VP-001|{a.started}".encode()).hexdigest()[:16]
    for i, v in enumerate([110, 150, 99, 180], 1):
        assert fire24(eng, "VP-001", T0 + i * 300, v) == []  # value updates only
    (only,) = eng.active()
    assert only.id == a.id and only.value == 180.0 and "180.0 mm" in only.message["en"]
    assert len(eng.drain_notifications()) == 1


def _storm_batches():
    batches = []
    for i in range(6):
        t = T0 + i * 300
        inds = []
        for s in range(15):
            v = 80 + i * 8 + s
            inds += [ind("rain_mm", "24h", f"ST-{s:02d}", t, v), ind("rain_mm", "3h", f"ST-{s:02d}", t, v * 0.6)]
        batches.append(([rain(f"ST-{s:02d}", t, 1.0) for s in range(14)], inds, {"rain": t}))
    return batches


def test_replay_is_byte_identical(rules):
    outs = []
    for _ in range(2):
        eng = AlertEngine(rules)
        outs.append(b"\n".join(encode(a) for b in _storm_batches() for a in eng.process(*b)))
    assert outs[0] == outs[1] and outs[0].count(b'"state":"firing"') >= 15


def test_storm_over_15_stations_is_one_incident(rules):
    eng = engine_for(rules, "rain_24h_very_heavy", "rain_3h_intense", "rain_risk_level")
    fired = [a for b in _storm_batches() for a in eng.process(*b) if a.state == "firing"]
    assert len({a.entity for a in fired}) == 15
    assert len({a.incident for a in fired}) == 1 and fired[0].incident
    # all clear, then a new storm 7 h later is a new incident
    t = T0 + 3600
    eng.process([], [ind("rain_mm", w, f"ST-{s:02d}", t, 0) for s in range(15) for w in ("24h", "12h", "3h")],
                {"rain": t})
    assert eng.active() == []
    (b, *_) = fire24(eng, "ST-01", T0 + 8 * 3600, 150)
    assert b.incident != fired[0].incident


def test_silence_mutes_notifications_until_expiry(rules):
    eng = engine_for(rules, "rain_24h_very_heavy", "dossier_overdue")
    s = eng.add_silence({"rule": "rain_*", "entity": "VP-00?"}, ends_at=T0 + 3600, by="lan", comment="bảo trì")
    (a,) = fire24(eng, "VP-001", T0 + 60, 150)
    assert a.state == "firing"  # the alert exists and is listed ...
    assert eng.drain_notifications() == []  # ... but nobody is notified
    (d,) = eng.process([], [ind("dossier_overdue_open", "now", "u1", T0 + 60, 2)], {"dossier": T0 + 60})
    assert [n["kind"] for n in eng.drain_notifications()] == ["firing"]  # not matched by the silence
    fire24(eng, "VP-001", T0 + 1800, 160)
    assert eng.drain_notifications() == []
    fire24(eng, "VP-001", T0 + 3600, 160)  # expiry reached in event time: the muted notification goes out once
    (n,) = eng.drain_notifications()
    assert (n["kind"], n["alert_id"], n["key"]) == ("firing", a.id, f"{a.id}:firing")
    fire24(eng, "VP-001", T0 + 3900, 170)
    assert eng.drain_notifications() == []
    assert eng.remove_silence(s.id) and not eng.remove_silence(s.id)


def test_silence_removed_early_and_acknowledged_alert_not_renotified(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    s = eng.add_silence({"rule": "rain_24h_very_heavy"}, ends_at=T0 + 7200)
    (a,) = fire24(eng, "VP-001", T0, 150)
    (b,) = fire24(eng, "VP-002", T0, 150)
    eng.acknowledge(b.id, by="lan", at=T0)
    eng.remove_silence(s.id)
    fire24(eng, "VP-001", T0 + 60, 151)
    assert [n["alert_id"] for n in eng.drain_notifications()] == [a.id]  # b was acknowledged meanwhile


def test_list_filters_by_state_severity_rule_and_unit_drilldown(rules, catalog):
    eng = engine_for(rules, "rain_24h_very_heavy", "rain_3h_intense", "queue_long", catalog=catalog)
    eng.process([], [ind("rain_mm", "24h", "VP-001", T0, 150), ind("rain_mm", "3h", "VP-002", T0, 90)], {"rain": T0})
    eng.process([], [ind("queue_waiting", "now", "mc-vinh-yen", T0, 50),
                     ind("queue_counters_open", "now", "mc-vinh-yen", T0, 2)], {"camera": T0})
    eng.process([], [], {"camera": T0 + 300})
    assert {a.rule for a in eng.list()} == {"rain_24h_very_heavy", "rain_3h_intense", "queue_long"}
    assert [a.rule for a in eng.list(severity="critical")] == ["rain_3h_intense"]
    assert {a.entity for a in eng.list(unit="vinh-yen")} == {"VP-002", "mc-vinh-yen"}
    assert len(eng.list(unit="vinh-phuc")) == 3  # the province sees its districts' alerts
    assert [a.entity for a in eng.list(rule="rain_24h_very_heavy")] == ["VP-001"]
    assert eng.list(state="resolved") == []
    assert eng.list()[0].rule == "queue_long"  # newest first
    q = eng.list(rule="queue_long")[0]
    assert "Một cửa Vĩnh Yên" in q.message["vi"] and q.labels["unit"] == "vinh-yen"


def test_checkpoint_state_round_trip_continues_identically(rules):
    batches = _storm_batches()
    ref = AlertEngine(rules)
    ref_out = [encode(a) for b in batches for a in ref.process(*b)]
    first = AlertEngine(rules)
    out = [encode(a) for b in batches[:3] for a in first.process(*b)]
    state = first.get_state()
    import json

    second = AlertEngine(rules)
    second.set_state(json.loads(json.dumps(state)))  # must survive JSON
    out += [encode(a) for b in batches[3:] for a in second.process(*b)]
    assert out == ref_out


def test_camera_stale_and_queue_alerts_on_same_site_do_not_collide(rules):
    eng = engine_for(rules, "sensor_stale")
    eng.process([cam("x", "s", T0, 1, 1), rain("x", T0, 0)], [], {"camera": T0, "rain": T0})
    out = eng.process([cam("other", "s", T0 + 1800, 1, 1), rain("other", T0 + 1800, 0)], [],
                      {"camera": T0 + 1800, "rain": T0 + 1800})
    assert sorted((a.entity, a.labels["feed"]) for a in out) == [("x", "camera"), ("x", "rain")]
    assert len({a.id for a in out}) == 2
