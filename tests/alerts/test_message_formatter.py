"""alerts/messages.py: numbers, times, plurals and names in alert messages, in Vietnamese and English."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from alerts.messages import TemplateError, check_template, fmt_number, fmt_time, render, render_all
from alerts.rules import RuleError, parse_rules


@pytest.mark.parametrize("x,spec,vi,en", [
    (50.4, ".1f", "50,4", "50.4"),
    (104.25, ".1f", "104,2", "104.2"),      # Python rounds half to even on the binary value, as the wall does
    (1234.5, ".1f", "1.234,5", "1,234.5"),
    (1234567, "d", "1.234.567", "1,234,567"),
    (5000.0, "", "5.000", "5,000"),
    (100.0, "", "100", "100"),
    (12.345, "", "12,35", "12.35"),         # compact: at most two decimals, trailing zeros dropped
    (0.5, "", "0,5", "0.5"),
    (-0.01, ".1f", "0,0", "0.0"),           # no "-0,0"
    (6.0, ".1f", "6,0", "6.0"),
])
def test_numbers_use_the_languages_separators(x, spec, vi, en):
    assert (fmt_number(x, "vi", spec), fmt_number(x, "en", spec)) == (vi, en)


def test_nan_and_missing_values_render_a_question_mark():
    assert fmt_number(math.nan, "vi", ".1f") == "?"
    assert render("{value:.1f} mm, {nope}", {"value": math.nan}, "vi") == "? mm, ?"


def test_times_are_local_hours_then_day_month():
    t = datetime(2026, 10, 28, 6, 10, tzinfo=timezone.utc)  # 13:10 in Hà Nội
    assert fmt_time(t) == fmt_time(t.timestamp()) == fmt_time("2026-10-28T13:10:00+07:00") == "13:10 28/10"
    assert render("lúc {ts}, giờ {ts:%H:%M}", {"ts": t}, "vi") == "lúc 13:10 28/10, giờ 13:10"
    assert fmt_time(datetime(2026, 12, 31, 17, 5, tzinfo=timezone.utc)) == "00:05 01/01"  # crosses the date


@pytest.mark.parametrize("n,en", [(0, "0 dossiers"), (1, "1 dossier"), (2, "2 dossiers"), (1234, "1,234 dossiers")])
def test_english_plurals_and_vietnamese_invariant_nouns(n, en):
    assert render("{n:d|dossier|dossiers}", {"n": n}, "en") == en
    assert render("{n:d|hồ sơ}", {"n": n}, "vi") == f"{fmt_number(n, 'vi', 'd')} hồ sơ"
    assert render("{n:d|minute|minutes}", {"n": 1.0}, "en") == "1 minute"


@pytest.mark.parametrize("template,name,want", [
    ("Mưa tại trạm {s}.", "Trạm đo mưa Tam Đảo", "Mưa tại Trạm đo mưa Tam Đảo."),
    ("Mưa tại trạm đo mưa {s}.", "Trạm đo mưa Tam Đảo", "Mưa tại Trạm đo mưa Tam Đảo."),
    ("Mưa tại trạm {s}.", "VP-999", "Mưa tại trạm VP-999."),
    ("Rain at station {s}.", "Station 7", "Rain at Station 7."),
    ("Hàng chờ tại {s}", "Một cửa Vĩnh Yên", "Hàng chờ tại Một cửa Vĩnh Yên"),
    ("{s} mất tín hiệu", "Trạm đo mưa Liên Bảo", "Trạm đo mưa Liên Bảo mất tín hiệu"),
    ("trạm{s}", "trạm X", "trạmtrạm X"),   # glued to the template's word: not a word of its own, kept
])
def test_names_are_not_doubled(template, name, want):
    assert render(template, {"s": name}, "vi") == want


def test_per_language_values_and_render_all():
    values = {"entity_name": {"vi": "Thành phố Vĩnh Yên", "en": "Vinh Yen City"}, "value": 3.0}
    got = render_all({"vi": "{entity_name}: {value:d|hồ sơ}", "en": "{entity_name}: {value:d|dossier|dossiers}"},
                     values)
    assert got == {"vi": "Thành phố Vĩnh Yên: 3 hồ sơ", "en": "Vinh Yen City: 3 dossiers"}


def test_a_template_that_cannot_render_is_shown_as_written_not_raised():
    with pytest.raises(TemplateError, match="format '.1f' given for the text"):
        render("{s:.1f}", {"s": "abc"}, "vi")
    assert render_all({"vi": "{s:.1f}"}, {"s": "abc"}) == {"vi": "{s:.1f}"}


@pytest.mark.parametrize("template,problem", [
    ("{nope}", "unknown placeholder {nope}"),
    ("{value:.1x}", "placeholder {value:.1x}: unknown number format '.1x'"),
    ("{value:d|a|b|c}", "expected '|word' or '|singular|plural'"),
    ("{value!r}", "conversion !r is not supported"),
    ("{value", "bad template"),
])
def test_check_template_names_the_problem(template, problem):
    assert problem in (check_template(template, {"value", "ts"}) or "")


def test_check_template_accepts_every_supported_form():
    assert check_template("{value} {value:.1f} {value:d} {value:d|x|xs} {value:.0f|hồ sơ} {ts:%H:%M}",
                          {"value", "ts"}) is None


def test_rule_loading_checks_both_message_and_resolved_message():
    base = ("rules: [{name: r1, indicator: rain_mm, window: 3h, threshold: 70, entity: station, "
            "message: {vi: '{value:.1f} mm', en: '{value:.1f} mm'}, ")
    (r,) = parse_rules(base + "resolved_message: {vi: 'hết {value:.1f}', en: 'ended {value:.1f}'}}]")
    assert r.resolved_message == {"vi": "hết {value:.1f}", "en": "ended {value:.1f}"}
    with pytest.raises(RuleError, match=r"rule 'r1': resolved_message.en: placeholder \{value:\.1q\}"):
        parse_rules(base + "resolved_message: {vi: 'a', en: '{value:.1q}'}}]", "bad.yaml")
    with pytest.raises(RuleError, match="resolved_message: when given, needs text in both Vietnamese and English"):
        parse_rules(base + "resolved_message: {vi: 'a'}}]", "bad.yaml")
