"""The `anomaly` rule kind end to end in the AlertEngine: any indicator series by configuration, sampled
in event time, firing with an explanation (vi and en), clearing with hysteresis, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alerttest_util import T0, engine_for, ind, make_catalog
from alerts.engine import AlertEngine
from alerts.rules import RuleError, load_rules, parse_rules
from alerts.store_sqlite import SqliteAlertStore

QUEUE_RULE = """
rules:
  - name: queue_anomaly
    kind: anomaly
    indicator: queue_waiting
    window: now
    entity: site
    severity: info
    params: {step: 15m, threshold: 0.5, clear_threshold: 0.2}
    message:
      vi: "{entity_name}: {observed_vi} người chờ lúc {at}, thường {expected_low_vi}–{expected_high_vi} ({scale_vi}, điểm {score_vi})"
      en: "{entity_name}: {observed} waiting at {at}, usually {expected_low}–{expected_high} ({scale_en}, score {score})"
"""
STEP = 900.0
SITE = "mc-vinh-yen"


def queue_engine() -> AlertEngine:
    return AlertEngine(parse_rules(QUEUE_RULE, "queue.yaml"), make_catalog())


def feed(eng: AlertEngine, values, start: int = 0):
    """One queue_waiting value per 15-minute step (the watermark at each boundary); all alerts out."""
    out = []
    for i, v in enumerate(values, start):
        t = T0 + i * STEP
        out += eng.process([], [ind("queue_waiting", "now", SITE, t, float(v))], {"camera": t})
    return out


def ordinary(n: int, seed: int = 2) -> np.ndarray:
    return np.round(12.0 + np.random.default_rng(seed).normal(0.0, 1.5, n), 1)


def test_fires_with_an_explanation_then_clears_with_hysteresis():
    eng = queue_engine()
    assert feed(eng, ordinary(400)) == []  # a day of warm-up (no verdict), then ordinary days
    surge = feed(eng, [40.0, 41.0, 39.5], 400)
    (a,) = [x for x in surge if x.state == "firing"]
    assert (a.rule, a.entity, a.severity, a.value) == ("queue_anomaly", SITE, "info", 40.0)
    assert a.labels["direction"] == "above" and a.labels["scale"] in ("point", "level", "step")
    assert "Một cửa Vĩnh Yên: 40 người chờ lúc" in a.message["vi"] and "Một cửa Vĩnh Yên: 40 waiting" in a.message["en"]
    lo, hi = a.message["en"].split("usually ")[1].split(" (")[0].split("–")
    assert 0 < float(lo) < 12 < float(hi) < 40  # the expected range, in the series' own units
    assert "," in a.message["vi"].split("thường ")[1].split(" (")[0]  # comma decimals in Vietnamese
    assert not any(x.state == "resolved" for x in surge)  # still high: stays firing (score ≥ clear threshold)
    back = feed(eng, ordinary(40, seed=4), 403)
    assert [x.state for x in back] == ["resolved"]  # back to normal: cleared once


def test_a_level_shift_alerts_once_and_becomes_the_baseline():
    eng = queue_engine()
    feed(eng, ordinary(400))
    out = feed(eng, ordinary(300, seed=5) + 25.0, 400)
    assert [x.state for x in out].count("firing") == 1
    assert out[-1].state == "resolved" and not eng.active()


def test_rule_state_round_trips_through_a_checkpoint():
    a, b = queue_engine(), queue_engine()
    feed(a, ordinary(300))
    feed(b, ordinary(300))
    c = queue_engine()
    c.set_state(json.loads(json.dumps(a.get_state())))
    tail = list(ordinary(100, seed=8))
    tail[50] = 45.0
    out_b, out_c = feed(b, tail, 300), feed(c, tail, 300)
    assert [(x.state, x.ts, x.value, x.message) for x in out_c] == [(x.state, x.ts, x.value, x.message) for x in out_b]
    assert any(x.state == "firing" for x in out_b)


def test_builtin_anomaly_rule_watches_dossiers_received_per_unit_per_hour(rules):
    eng = engine_for(rules, "anomaly")
    rng = np.random.default_rng(11)
    count, day, out = 0, None, []
    for h in range(24 * 4):
        t = T0 + h * 3600.0
        d = int((t + 7 * 3600) // 86400)
        if d != day:
            day, count = d, 0  # the day's running count resets at local midnight
        count += int(rng.poisson(6)) if h != 24 * 3 + 5 else 90
        out += eng.process([], [ind("dossier_received", "day", "vinh-yen", t, count)], {"dossier": t})
    (a,) = [x for x in out if x.state == "firing"]
    assert a.rule == "anomaly" and a.entity == "vinh-yen" and a.value == 90.0
    assert "số hồ sơ tiếp nhận trong giờ" in a.message["vi"] and "dossiers received in the hour" in a.message["en"]


def test_unknown_indicator_or_window_is_a_load_error_naming_file_and_rule(tmp_path):
    bad = QUEUE_RULE.replace("window: now", "window: 24h")
    p = tmp_path / "mine.yaml"
    p.write_text(bad, encoding="utf-8")
    with pytest.raises(RuleError) as e:
        load_rules(p)
    msg = str(e.value)
    assert str(p) in msg and "'queue_anomaly'" in msg and "queue_waiting" in msg and "now" in msg
    with pytest.raises(RuleError, match="no indicator 'queue_len'"):
        parse_rules(QUEUE_RULE.replace("queue_waiting", "queue_len"), "x.yaml")
    with pytest.raises(RuleError, match="per site, not per 'station'"):
        parse_rules(QUEUE_RULE.replace("entity: site", "entity: station"), "x.yaml")
    with pytest.raises(RuleError, match="clear_threshold"):
        parse_rules(QUEUE_RULE.replace("clear_threshold: 0.2", "clear_threshold: 0.9"), "x.yaml")
    with pytest.raises(RuleError, match="params.detector"):
        parse_rules(QUEUE_RULE.replace("step: 15m,", "step: 15m, detector: magic,"), "x.yaml")


def test_several_anomaly_rules_may_watch_different_series(rules):
    extra = parse_rules(QUEUE_RULE, "queue.yaml")
    eng = AlertEngine([*rules, *extra], make_catalog())
    assert {r.name for r in eng.rules if r.kind == "anomaly"} == {"anomaly", "queue_anomaly"}


def test_an_alert_of_the_former_hour_of_week_detector_is_retired_on_restart(rules, tmp_path):
    store = SqliteAlertStore(tmp_path)
    old = AlertEngine([r for r in rules if r.name == "anomaly"], make_catalog(), store=store)
    # what the former detector left in a data dir: an active alert scoped by feed
    old._lc.fire(("anomaly", "vinh-yen", "dossier"), ts="2026-10-28T14:00:00+07:00", t=T0 + 3600, value=40.0,
                 severity="info", labels={"category": "anomaly"}, message={"vi": "cũ", "en": "old"}, feed="dossier")
    old._persist()
    (a,) = old.active()
    store.close()
    store2 = SqliteAlertStore(tmp_path)
    eng = AlertEngine([r for r in rules if r.name == "anomaly"], make_catalog(), store=store2)
    assert eng.active() == []
    assert eng.get(a.id).state == "resolved"
    store2.close()
