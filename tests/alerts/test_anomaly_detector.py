"""The streaming anomaly detectors (alerts/anomaly/): warm-up, detection delays per anomaly type,
scale invariance, determinism, state round-trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alerts.anomaly import RobustDetector, WindowedZScore, detector_from_state, make_detector

STEP_S = 300.0
T_START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def run(det, xs, t0: float = T_START, step_s: float = STEP_S):
    """Scores (None while warming up) of every point, each scored before it is learnt."""
    out = []
    for i, x in enumerate(xs):
        t = t0 + i * step_s
        out.append(det.score_one(t, float(x)))
        det.learn_one(t, float(x))
    return out


def noise(n: int, seed: int = 1, level: float = 10.0, sd: float = 1.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, sd, n)


def first_alert(scores, start: int) -> int | None:
    for i in range(start, len(scores)):
        if scores[i] is not None and scores[i].alert:
            return i - start
    return None


def test_no_score_while_warming_up_then_a_verdict_after_288_points_or_a_day():
    five_min = run(RobustDetector(), noise(400))
    assert all(s is None for s in five_min[:288]) and all(s is not None for s in five_min[288:])
    hourly = run(RobustDetector(), noise(60), step_s=3600.0)  # a day comes before 288 points
    assert all(s is None for s in hourly[:24]) and all(s is not None for s in hourly[24:])
    assert all(0.0 <= s.score <= 1.0 for s in five_min[288:])


def test_ordinary_noise_is_quiet():
    scores = run(RobustDetector(), noise(3000))
    ready = [s for s in scores if s is not None]
    assert sum(s.alert for s in ready) <= 3  # ≤ 0.1 % of points
    assert np.median([s.score for s in ready]) < 0.05  # a sparse score: near 0 normally


def test_spike_detected_at_once_with_an_explanation():
    xs = noise(1200)
    xs[900] += 8.0
    scores = run(RobustDetector(), xs)
    assert first_alert(scores, 900) == 0  # delay: the spike point itself
    s = scores[900]
    assert s.score >= 0.5 and s.scale in ("point", "level", "step")
    assert s.observed == pytest.approx(xs[900]) and s.expected_low < 10.0 < s.expected_high < s.observed


def test_level_shift_flagged_then_absorbed():
    xs = noise(2000)
    xs[1000:] += 6.0
    scores = run(RobustDetector(), xs)
    assert first_alert(scores, 1000) is not None and first_alert(scores, 1000) <= 2  # within 2 points
    later = scores[1100:]
    assert sum(s.alert for s in later) <= 2  # the new level is the baseline now: no alarm forever
    assert max(s.likelihood for s in scores[1200:]) < 0.5


def test_drift_detected_within_a_day():
    xs = noise(3000)
    ramp = np.minimum(np.arange(1000) / 200.0, 1.0) * 8.0  # 8 σ over 200 points (~17 h)
    xs[2000:] += ramp
    scores = run(RobustDetector(), xs)
    delay = first_alert(scores, 2000)
    assert delay is not None and delay <= 150, delay
    assert scores[2000 + delay].scale in ("mean_6", "mean_36", "level", "point", "spread")


def test_seasonal_break_detected_within_three_hours():
    n = 288 * 8  # 8 days of 5-minute points
    t = np.arange(n) * STEP_S
    season = 6.0 * np.sin(2 * np.pi * (t % 86400.0) / 86400.0)
    xs = 20.0 + season + np.random.default_rng(3).normal(0.0, 1.0, n)
    onset = 288 * 6 + 60  # day 7, 05:00: the daily pattern fails to appear
    xs[onset:onset + 288] -= season[onset:onset + 288]
    scores = run(RobustDetector(), xs)
    assert sum(s.alert for s in scores[288 * 3:onset]) <= 2  # the cycle itself is learnt, not alarmed
    delay = first_alert(scores, onset)
    assert delay is not None and delay <= 36, delay  # 36 points = 3 h
    assert any(s.seasonal == "daily" for s in scores[onset:onset + 36] if s is not None)


def test_scale_invariance_same_scores_times_1000():
    xs = noise(1500, seed=7)
    xs[1200] += 9.0
    a = run(RobustDetector(), xs)
    b = run(RobustDetector(), xs * 1000.0)
    for sa, sb in zip(a, b):
        assert (sa is None) == (sb is None)
        if sa is not None:
            assert sa.score == pytest.approx(sb.score, abs=1e-9) and sa.alert == sb.alert
            assert sb.observed == pytest.approx(sa.observed * 1000.0)


def test_a_flat_series_that_comes_alive_alarms_once_not_every_few_hours():
    xs = np.concatenate([np.full(600, 5.0), 5.0 + np.random.default_rng(0).normal(0.0, 1.0, 2400)])
    alerts = [i for i, s in enumerate(run(RobustDetector(), xs)) if s is not None and s.alert]
    assert alerts[:1] == [600] and len(alerts) <= 2  # the spreads re-anchor on the noisier regime


def test_intermittent_bursts_are_learnt_as_normal():
    rng = np.random.default_rng(0)
    xs = np.where(rng.random(4000) < 0.05, rng.exponential(10.0, 4000), 0.0)  # 5 % of points are bursts
    scores = run(RobustDetector(), xs)
    assert sum(s.alert for s in scores[1500:] if s is not None) <= 1  # ~125 bursts later on: common, not news


def test_small_series_near_zero_is_not_blind():
    xs = noise(1200, level=0.1, sd=0.002)  # an absolute floor of 1 would hide this spike
    xs[1000] += 0.02
    assert first_alert(run(RobustDetector(), xs), 1000) == 0


def test_deterministic():
    xs = noise(1000, seed=5)
    xs[700] -= 7
    a = [s and s.score for s in run(RobustDetector(), xs)]
    b = [s and s.score for s in run(RobustDetector(), xs)]
    assert a == b


@pytest.mark.parametrize("name", ["robust", "zscore"])
def test_state_round_trip_through_json_continues_identically(name):
    xs = noise(1600, seed=9)
    xs[1300] += 10
    whole = run(make_detector(name, {"min_points": 50} if name == "zscore" else {}), xs)
    det = make_detector(name, {"min_points": 50} if name == "zscore" else {})
    first = run(det, xs[:800])
    restored = detector_from_state(json.loads(json.dumps(det.get_state())))
    second = run(restored, xs[800:], t0=T_START + 800 * STEP_S)
    assert [s and s.score for s in first + second] == [s and s.score for s in whole]


def test_zscore_baseline_speaks_the_same_protocol():
    det = WindowedZScore(window=500, min_points=100)
    xs = noise(400)
    xs[300] += 12
    scores = run(det, xs)
    assert scores[99] is None and scores[100] is not None
    assert scores[300].alert and not math.isnan(scores[300].expected)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("nope")
    with pytest.raises(TypeError):
        make_detector("robust", {"windw": 3})
    with pytest.raises(ValueError, match="threshold"):
        RobustDetector(threshold=2.0)
