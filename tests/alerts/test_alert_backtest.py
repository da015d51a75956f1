"""Backtest: what would have fired, when, for how long."""

from __future__ import annotations

from alerts.backtest import backtest, format_backtest
from alerts.rules import RuleSet

from alerttest_util import T0, ind


def test_backtest_reports_episodes_and_durations(rules):
    values = [50, 120, 130, 95, 80, 40, 110]
    batches = [([], [ind("rain_mm", "24h", "VP-001", T0 + i * 1800, v)], {"rain": T0 + i * 1800})
               for i, v in enumerate(values)]
    res = backtest(batches, RuleSet(tuple(r for r in rules if r.name == "rain_24h_very_heavy")))
    assert res.batches == 7 and len(res.episodes) == 2
    first, second = res.episodes
    assert (first.started, first.ended, first.duration_s, first.peak) == (
        "2026-10-28T13:30:00+07:00", "2026-10-28T15:00:00+07:00", 5400.0, 130.0)
    assert second.ended is None and second.duration_s == 0.0
    text = format_backtest(res)
    assert "2 alert(s) over 7 batch(es)" in text and "1h30m" in text and "(still firing)" in text
    assert "rain_24h_very_heavy" in text.splitlines()[-1]


def test_backtest_empty():
    res = backtest([])
    assert res.episodes == [] and "0 alert(s)" in format_backtest(res)
