"""Rule files: the built-in pack, and clear errors naming file, rule and problem."""

from __future__ import annotations

import re

import pytest

from alerts.rules import RuleError, builtin_rules, load_rules, parse_duration, parse_rules

CONTRACT = {"rain_24h_very_heavy", "rain_3h_intense", "rain_risk_level", "sensor_stale", "dossier_overdue",
            "queue_long", "anomaly"}


def test_builtin_pack_has_the_contract_rules_with_bilingual_messages():
    rs = builtin_rules()
    assert CONTRACT <= set(rs.names)
    for r in rs:
        assert r.message["vi"] and r.message["en"], r.name
    assert rs.get("rain_24h_very_heavy").threshold == 100 and rs.get("rain_24h_very_heavy").op == ">"
    assert rs.get("rain_24h_very_heavy").clear_threshold == 90
    assert rs.get("rain_3h_intense").op == ">=" and rs.get("rain_3h_intense").severity == "critical"
    q = rs.get("queue_long")
    assert q.per == ("queue_counters_open", "now") and q.for_s == 300


def test_risk_rules_are_decision18_levels_per_area():
    rs = builtin_rules()
    for name, article in (("rain_risk_level", 44), ("flash_flood_landslide_risk", 46)):
        r = rs.get(name)
        assert (r.kind, r.entity, r.params["article"], r.feeds) == ("risk", "unit", article, ("rain",))
        assert not r.verify and r.resolved_message["vi"] and r.resolved_message["en"]
        assert set(r.inputs()) == {("rain_mm", "24h"), ("rain_mm", "12h"), ("rain_day_mm", "rain_day")}


@pytest.mark.parametrize("extra,expected", [
    ("params: {article: 45}", "params.article: expected 44 (heavy rain) or 46"),
    ("params: {article: 44, tables: x.yaml}", "params: unknown parameter(s) ['tables']"),
])
def test_risk_rule_errors(extra, expected):
    text = f"rules: [{{name: r1, kind: risk, entity: unit, {extra}, message: {{vi: a, en: b}}}}]"
    with pytest.raises(RuleError, match=re.escape(expected)):
        parse_rules(text, "bad.yaml")
    with pytest.raises(RuleError, match="a risk level is an area's: entity: unit"):
        parse_rules("rules: [{name: r1, kind: risk, entity: station, params: {article: 44}, message: {vi: a, en: b}}]")


@pytest.mark.parametrize("text,expected", [
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: abc, entity: station,"
     " message: {vi: a, en: b}}]", "bad.yaml: rule 'r1': threshold: expected a number, got 'abc'"),
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: 1, entity: station, message: {vi: a}}]",
     "bad.yaml: rule 'r1': message: needs text in both Vietnamese and English"),
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: 1, op: '=>', entity: station,"
     " message: {vi: a, en: b}}]", "bad.yaml: rule 'r1': op: unknown comparison '=>'"),
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: 1, for: 5 minutes, entity: station,"
     " message: {vi: a, en: b}}]", "bad.yaml: rule 'r1': for: expected a duration"),
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: 1, entity: station,"
     " message: {vi: '{nope}', en: b}}]", "bad.yaml: rule 'r1': message.vi: unknown placeholder {nope}"),
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: 100, clear: {op: '<', threshold: 200},"
     " entity: station, message: {vi: a, en: b}}]", "bad.yaml: rule 'r1': clear: the clear condition < 200"),
    ("rules: [{name: r1, kind: thresold, entity: station, message: {vi: a, en: b}}]",
     "bad.yaml: rule 'r1': kind: unknown kind 'thresold'"),
    ("rules: [{name: r1, indicator: rain_mm, window: 24h, threshold: 1, entity: station, severty: warning,"
     " message: {vi: a, en: b}}]", "bad.yaml: rule 'r1': unknown field(s) ['severty']"),
    ("rules: [{name: r1, kind: levels, entity: station, message: {vi: a, en: b},"
     " levels: [{level: 1, any: [{indicator: rain_mm, window: 24h, op: '>=', value: x}]}],"
     " clear: [{indicator: rain_mm, window: 24h, op: '<', value: 90}]}]",
     "bad.yaml: rule 'r1': levels[0].any[0].value: expected a number, got 'x'"),
    ("rules: {name: r1}", "bad.yaml: a rule file is a mapping with a `rules:` list"),
    ("rules: [oops", "bad.yaml: not valid YAML"),
])
def test_invalid_rules_name_file_rule_and_problem(text, expected):
    with pytest.raises(RuleError) as e:
        parse_rules(text, "bad.yaml")
    assert expected in str(e.value)


def test_all_errors_reported_and_duplicates_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text("rules: [{name: dup, indicator: rain_mm, window: 1h, threshold: 1, "
                                     "entity: station, message: {vi: a, en: b}}]")
    (tmp_path / "b.yaml").write_text("rules: [{name: dup, indicator: rain_mm, window: 1h, threshold: 1, "
                                     "entity: station, message: {vi: a, en: b}},"
                                     "{name: other, indicator: rain_mm, window: 1h, threshold: z, entity: station,"
                                     " message: {vi: a, en: b}}]")
    with pytest.raises(RuleError) as e:
        load_rules(tmp_path)
    msg = str(e.value)
    assert "b.yaml: rule 'other': threshold" in msg
    with pytest.raises(RuleError, match="no such rule file"):
        load_rules(tmp_path / "missing")


def test_duplicate_name_across_files(tmp_path):
    rule = ("rules: [{name: dup, indicator: rain_mm, window: 1h, threshold: 1, entity: station,"
            " message: {vi: a, en: b}}]")
    (tmp_path / "a.yaml").write_text(rule)
    (tmp_path / "b.yaml").write_text(rule)
    with pytest.raises(RuleError, match=r"b.yaml: rule 'dup': defined twice \(also in .*a.yaml\)"):
        load_rules(tmp_path)


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_a_rules_directory_switches_a_builtin_rule_off(tmp_path):
    from alerts.rules import with_overrides

    (tmp_path / "off.yaml").write_text("rules:\n  - {name: rain_3h_intense, enabled: false}\n", encoding="utf-8")
    override = load_rules(tmp_path)
    assert override.disabled == {"rain_3h_intense"} and len(override) == 0
    merged = with_overrides(builtin_rules(), override)
    assert merged.get("rain_3h_intense") is None
    assert merged.get("rain_24h_very_heavy") is not None and len(merged) == len(builtin_rules()) - 1
