"""Route matching, the directory and the configuration file (pure, plus one reload from disk)."""

from __future__ import annotations

import os
import time

import pytest

from alerts.lifecycle import alert_from_builtins
from alerts.notify.config import ConfigSource
from alerts.notify.directory import NotifyConfigError
from alerts.notify.planner import Planner
from ioc.cli import main

from tests.notify.helpers import BASE, CATALOG, ENV, UNITS, alert, cfg, write


def told(text_cfg, record) -> set[tuple[str, str, int]]:
    rows = Planner(CATALOG.ancestors).explain(text_cfg, alert_from_builtins(record))
    return {(r["route"], r["person"], r["tier"]) for r in rows}


def test_station_alert_reaches_its_district_through_the_unit_ancestors():
    c = cfg()
    # VP-001 is in ward lien-bao of Vĩnh Yên: Bình covers vinh-yen, Cường (Tam Đảo) does not; the tier-1
    # person covers the province
    assert told(c, alert("VP-001")) == {("rain", "binh", 0), ("rain", "tinh", 1)}


def test_continue_lets_a_second_route_take_the_critical_ones():
    c = cfg()
    got = told(c, alert("VP-001", severity="critical"))
    assert ("rain-en", "eng", 0) in got and ("rain", "binh", 0) in got


def test_unmatched_alert_reaches_nobody_and_first_match_stops_without_continue():
    c = cfg()
    assert told(c, alert("VP-001", labels={"category": "queue", "unit": "lien-bao"})) == set()
    assert told(c, alert("VP-001", labels={"category": "data_quality"})) == {("quality", "eng", 0)}


def test_children_inherit_timers_and_group_by():
    c = cfg()
    rain = c.root.children[0]
    assert rain.group_wait_s == 30 and rain.group_interval_s == 300 and rain.group_by == ("incident",)
    assert rain.escalate[0].after_s == 600


@pytest.mark.parametrize("edit, message", [
    (("units: [vinh-yen]", "units: [atlantis]"), "notify.yaml: people[binh].units: 'atlantis' is not a unit"),
    (("receivers: [bch-vinh-yen, cuong]", "receivers: [nobody]"),
     "notify.yaml: routes.routes[0] (rain).receivers: 'nobody' is not a person or group"),
    (("group_wait: 30s", "group_wait: soon"), "notify.yaml: routes.group_wait: expected a duration"),
    (("telegram: \"222\"", "telegram: \"x y\""), "notify.yaml: people[cuong].telegram: 'x y' is not a Telegram"),
    (("language: en", "language: fr"), "notify.yaml: people[eng].language: expected vi or en"),
    (("quiet_hours: \"22:00-06:00\"", "quiet_hours: \"late\""), "notify.yaml: people[eng].quiet_hours"),
    (("escalate: [{after: 10m, receivers: [tinh]}]", "escalate: [{after: 0s, receivers: [tinh]}]"),
     "notify.yaml: routes.routes[0] (rain).escalate[0].after: must be more than 0"),
])
def test_bad_configuration_names_file_and_entry(edit, message):
    with pytest.raises(NotifyConfigError) as exc:
        cfg(BASE.replace(*edit))
    assert message in str(exc.value)


def test_missing_secret_is_named_and_secret_never_printed():
    with pytest.raises(NotifyConfigError, match="channels.telegram.token_env: the environment variable T_TOKEN"):
        cfg(env={})
    c = cfg()
    assert "secret-token" not in repr(c)


def test_quiet_hours_end_across_midnight():
    q = cfg().directory.people["eng"].quiet_hours
    from ioc.timeutil import parse_ts

    t = parse_ts("2026-10-28T23:30:00+07:00")
    assert q.end_after(t) == parse_ts("2026-10-29T06:00:00+07:00")
    assert q.end_after(parse_ts("2026-10-28T12:00:00+07:00")) is None


def test_reload_on_change_keeps_the_old_one_when_the_new_is_bad(tmp_path, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    path = write(tmp_path / "notify.yaml", BASE)
    src = ConfigSource(path, UNITS)
    first = src.current()
    assert "cuong" in first.directory.people
    write(path, BASE.replace("receivers: [bch-vinh-yen, cuong]", "receivers: [bch-vinh-yen]"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = src.current()
    assert second is not first and second.root.children[0].receivers == ("bch-vinh-yen",) and src.reloads == 1
    write(path, "people: [")  # a broken edit: the running configuration stays
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert src.current() is second and "not valid YAML" in src.last_error


def test_cli_routes_test_prints_who_would_be_told(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "notify.yaml", BASE)
    assert main(["routes", "test", "hazard=heavy_rain", "severity=critical", "entity=VP-001", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "route rain:" in out and "Trần Thị Bình (binh, vi)  telegram 111" in out
    assert "after 10.5 min" in out and "escalation tier 1" in out  # 30 s group_wait + 10 min
    assert "Engineer (eng, en)  telegram 444" in out and "Cường" not in out
    assert main(["routes", "test", "hazard=flood", "--config", str(path)]) == 1
    assert "nobody would be told" in capsys.readouterr().out
    assert main(["routes", "test", "unit=atlantis", "--config", str(path)]) == 2
    bad = write(tmp_path / "bad.yaml", BASE.replace("[vinh-yen]", "[atlantis]"))
    assert main(["routes", "test", "hazard=heavy_rain", "--config", str(bad)]) == 2
    assert "people[binh].units" in capsys.readouterr().err
