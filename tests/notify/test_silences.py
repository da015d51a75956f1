"""Silences apply to the non-critical only: a critical alert reaches the outbox (and people) under a silence."""

from __future__ import annotations

from alerts.engine import AlertEngine
from alerts.rules import builtin_rules
from ioc.records import Indicator
from ioc.timeutil import format_ts, parse_ts

T0 = parse_ts("2026-10-28T13:00:00+07:00")


def ind(window: str, entity: str, t: float, value: float) -> Indicator:
    return Indicator(name="rain_mm", window=window, entity=entity, ts=format_ts(t), value=value)


def test_a_silence_mutes_the_warning_but_not_the_critical():
    rules = [r for r in builtin_rules() if r.name in ("rain_24h_very_heavy", "rain_3h_intense")]
    eng = AlertEngine(rules)
    eng.add_silence({"rule": "rain_*"}, ends_at=T0 + 3600, by="lan", comment="bảo trì trạm")
    eng.process([], [ind("24h", "VP-001", T0 + 60, 150.0), ind("3h", "VP-002", T0 + 60, 90.0)], {"rain": T0 + 60})
    sent = eng.drain_notifications()
    assert [(n["alert"]["rule"], n["alert"]["severity"]) for n in sent] == [("rain_3h_intense", "critical")]
    assert {a.rule for a in eng.list()} == {"rain_24h_very_heavy", "rain_3h_intense"}  # both alerts exist
