"""Replay a multi-day storm over the demo province: Decision 18 levels per commune, district and province.

The storm: every gauge of the mountain districts Tam Đảo, Lập Thạch and Sông Lô (12 of the 36 communes,
so under half of the province) records 1 mm every 5 minutes from 07:00 to 19:00 on four days
(144 mm a day); the plain stays dry.  Art. 44: band A by 50 mm in 12 h at 11:10 on day 1 (level 1,
khoản 1); on day 3 at 11:10 the third consecutive rain day makes it level 2 (khoản 2 điểm a, matched
ignoring extent: under half); it resolves when the 24 h sums fall under 90 mm.  Art. 46: from 19:00
of day 1 (the next rain day, with one previous rain day), level 1 in the high / very-high communes
of KV4 (Vĩnh Phúc), none in the medium ones.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from alerts.engine import AlertEngine
from alerts.rules import builtin_rules
from ioc.catalog import demo_catalog
from ioc.events import RainEvent
from ioc.timeutil import format_ts, parse_ts
from streams.pipeline import Pipeline

T0 = parse_ts("2026-10-26T07:00:00+07:00")
MOUNTAIN_DISTRICTS = ("tam-dao", "lap-thach", "song-lo")
RULES = ("rain_risk_level", "flash_flood_landslide_risk")


def storm(cat, steps=4 * 288 + 80, extra=None):
    mountain = {s.id for s in cat.stations.values() if s.district in MOUNTAIN_DISTRICTS}
    for step in range(1, steps):
        t = T0 + 300 * step
        hour = ((t + 7 * 3600) % 86400) / 3600
        wet = 7 < hour <= 19 and step <= 3 * 288 + 144
        ts = datetime.fromisoformat(format_ts(t))
        yield t, [RainEvent(station=s, ts=ts, rain_mm=1.0 if (wet and s in mountain) else 0.0)
                  for s in sorted(cat.stations)] + (extra(t, ts) if extra else [])


def run(cat, engine, **kw):
    pipe = Pipeline(cat, engine)
    out = []
    for _, events in storm(cat, **kw):
        out += pipe.process(events).alerts
    return out


@pytest.fixture(scope="module")
def replay():
    cat = demo_catalog()
    eng = AlertEngine([r for r in builtin_rules() if r.name in RULES], cat)
    return cat, eng, run(cat, eng)


def transitions(alerts, rule, entity):
    """(state, ts, level) whenever the state or level changes."""
    out, last = [], None
    for a in alerts:
        if a.rule == rule and a.entity == entity:
            cur = (a.state, a.labels.get("level"))
            if cur != last:
                out.append((a.state, a.ts[:16], a.labels.get("level")))
                last = cur
    return out


ART44 = [("firing", "2026-10-26T11:10", "1"), ("firing", "2026-10-28T11:10", "2"),
         ("resolved", "2026-10-30T11:35", "2")]


@pytest.mark.parametrize("area", ["tt-tam-dao", "quang-son", "nhan-dao", "tam-dao", "lap-thach", "song-lo",
                                  "vinh-phuc"])
def test_art44_levels_per_commune_district_and_province(replay, area):
    _, _, alerts = replay
    assert transitions(alerts, "rain_risk_level", area) == ART44


def test_art44_plain_areas_stay_quiet(replay):
    cat, _, alerts = replay
    quiet = {"vinh-tuong", "yen-lac", *cat.children["vinh-tuong"], *cat.children["yen-lac"], "vinh-yen"}
    assert not [a for a in alerts if a.entity in quiet]


def test_art44_alert_names_clause_amount_days_and_extent(replay):
    _, _, alerts = replay
    lv2 = next(a for a in alerts if a.rule == "rain_risk_level" and a.entity == "vinh-phuc"
               and a.labels["level"] == "2")
    assert lv2.severity == "critical"
    assert lv2.labels["clause"] == "Điều 44 khoản 2 điểm a"
    assert (lv2.labels["basis"], lv2.labels["days"], lv2.labels["band"]) == ("observed", "3", "A")
    assert lv2.labels["extent_fallback"] == "true" and lv2.labels["area_level"] == "province"
    assert lv2.labels["color"] == "light_yellow" and lv2.labels["unit"] == "vinh-phuc"
    assert "Điều 44 khoản 2 điểm a" in lv2.message["vi"] and "3 ngày mưa" in lv2.message["vi"]
    assert "33% số xã" in lv2.message["vi"] and "Art. 44(2)(a)" in lv2.message["en"]
    assert "3 days of rain" in lv2.message["en"] and "indicative" in lv2.message["en"]
    lv1 = next(a for a in alerts if a.rule == "rain_risk_level" and a.entity == "vinh-phuc")
    assert lv1.severity == "warning" and lv1.labels["clause"] == "Điều 44 khoản 1"
    assert "50,0 mm trong 12 giờ" in lv1.message["vi"] and "50.0 mm in 12 h" in lv1.message["en"]


def test_art46_levels_per_commune_by_susceptibility(replay):
    cat, _, alerts = replay
    fired = {a.entity for a in alerts if a.rule == "flash_flood_landslide_risk"}
    mountain = {c for d in MOUNTAIN_DISTRICTS for c in cat.children[d]}
    assert fired == {c for c in mountain if cat.susceptibility(c) in ("high", "very_high")}
    assert {cat.susceptibility(c) for c in mountain - fired} <= {"low", "medium"}
    assert transitions(alerts, "flash_flood_landslide_risk", "tt-tam-dao") == [
        ("firing", "2026-10-26T19:00", "1"), ("resolved", "2026-10-30T11:35", "1")]
    a = next(a for a in alerts if a.rule == "flash_flood_landslide_risk" and a.entity == "tt-tam-dao")
    assert (a.labels["group"], a.labels["susceptibility"], a.labels["clause"]) == ("KV4", "very_high", "Điều 46")
    assert a.labels["basis"] == "observed" and "Điều 46" in a.message["vi"]
    assert not [a for a in alerts if a.rule == "flash_flood_landslide_risk" and a.entity in MOUNTAIN_DISTRICTS]


def test_replay_is_deterministic_and_restores_from_a_checkpoint(replay):
    cat, eng, alerts = replay
    rules = [r for r in builtin_rules() if r.name in RULES]
    # stop mid-storm (day 3, 10:00), checkpoint, restore into a new engine, finish: the same alerts
    cut = 2 * 288 + 36
    first = AlertEngine(rules, cat)
    pipe = Pipeline(cat, first)
    got = []
    it = storm(cat)
    for _ in range(cut):
        got += pipe.process(next(it)[1]).alerts
    state = first.get_state()
    assert state["core"]["risk"]["VP-010"][2]  # rain-day history of a gauge is in the checkpoint
    second = AlertEngine(rules, cat)
    second.set_state(state)
    pipe.engine = second
    for _, events in it:
        got += pipe.process(events).alerts
    key = [(a.rule, a.entity, a.state, a.ts, a.labels.get("level"), a.id) for a in alerts]
    assert [(a.rule, a.entity, a.state, a.ts, a.labels.get("level"), a.id) for a in got] == key


def test_an_operator_level_on_a_restored_engine_keeps_the_observed_level_under_it(replay):
    """After a restart from a checkpoint (no batch yet), raising by 1 starts from the observed level."""
    cat, _, _ = replay
    rules = [r for r in builtin_rules() if r.name in RULES]
    first = AlertEngine(rules, cat)
    pipe = Pipeline(cat, first)
    it = storm(cat)
    for _ in range(2 * 288 + 36):  # day 3, 10:00: level 1 (2 rain days)
        pipe.process(next(it)[1])
    again = AlertEngine(rules, cat)
    again.set_state(first.get_state())
    out = again.set_risk_level("tam-dao", raise_by=1, reason="lũ thượng nguồn", by="lan", at=T0)
    (a,) = [a for a in out if a.entity == "tam-dao"]
    assert (a.labels["level"], a.labels["observed_level"], a.labels["basis"]) == ("2", "1", "manual")
    assert a.labels["set_by"] == "lan" and a.state == "firing"
    assert again.risk_manual()[0]["reason"] == "lũ thượng nguồn"
    (saved,) = again.get_state()["core"]["risk_manual"]  # in the checkpoint, with who, why and when
    assert saved[:2] == ["rain_risk_level", "tam-dao"] and saved[2]["by_name"] == "lan" and saved[2]["by"] == 1
