"""Every user error of every `ioc` command: one line on stderr saying what is wrong and how to fix it, exit 2,
no traceback.  Most cases run `ioc.cli.main` in-process (fast); where startup order matters (a port in use:
no banner, no token) the real `.venv/bin/ioc` entry point runs as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ioc.cli import main

ROOT = Path(__file__).resolve().parents[2]
IOC_BIN = Path(sys.executable).with_name("ioc")
RAIN = '{{"kind": "rain", "station": "{st}", "ts": "2026-10-28T{h:02d}:{m:02d}:00+07:00", "rain_mm": {mm}}}'

CATALOG = """\
province: p
targets: {on_time_rate: 0.98, online_rate: 0.5, digitization_rate: 0.8, online_payment_rate: 0.8}
units:
  - {id: p, name: P, level: province}
  - {id: d1, name: D1, level: district, parent: p}
  - {id: c1, name: C1, level: commune, parent: d1}
stations:
  - {id: S1, name: S1, lat: 21.3, lon: 105.6, district: d1, commune: c1}
sites:
  - {id: s1, name: Site 1, unit: d1, counters: 4, cameras: [cam-1], lat: 21.3, lon: 105.6}
"""

RULE = """\
rules:
  - name: {name}
{extra}    indicator: rain_mm
    window: 24h
    entity: station
    threshold: 100
    message: {{vi: "Mưa lớn tại {{entity_name}}", en: "Heavy rain at {{entity_name}}"}}
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("IOC_CATALOG", "IOC_RULES_DIR", "IOC_DATA_DIR", "IOC_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own exit (its error() prints the one line first)
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(capsys, *argv: str, words: tuple[str, ...]) -> str:
    rc, out, err = run(capsys, *argv)
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, (rc, err)
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    storm = d / "storm.jsonl"  # 82.5 mm in 3 h at S1 / VP-001: rain_3h_intense fires
    lines = [RAIN.format(st=st, h=h, m=m, mm=7.5 if h == 13 else 0.0)
             for h in range(12, 16) for m in range(0, 60, 5) for st in ("VP-001", "S1")]
    storm.write_text("\n".join(lines) + "\n", encoding="utf-8")
    empty = d / "empty-rules"
    empty.mkdir()
    return {"storm": storm, "empty_rules": empty, "dir": d}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


# -- flags -------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (("run", "--port", "70000"), ("ioc: error: --port 70000 is not a TCP port (1-65535)",)),
    (("run", "--port", "http"), ("--port http is not a whole number",)),
    (("run", "--demo", "--speed", "-1"), ("--speed -1 must be a number above 0",)),
    (("run", "--demo", "--speed", "nan"), ("--speed nan is not a finite number",)),
    (("run", "--vrain-url", "vrain.vn/api"), ("--vrain-url vrain.vn/api: expected an http:// or https:// URL",)),
    (("run", "--vrain-interval", "0"), ("--vrain-interval 0 must be a number above 0",)),
    (("run", "--mqtt", "broker:mqtt"), ("--mqtt broker:mqtt: expected HOST:PORT",)),
    (("run", "--log-level", "loud"), ("--log-level: invalid choice: 'loud'", "warning")),
    (("run", "--bogus"), ("unrecognized arguments: --bogus", "ioc --help")),
    (("detect", "x.csv"), ("the following arguments are required: --out", "ioc detect --help")),
    (("detect", "x.csv", "--out", "o.csv", "--threshold", "2"), ("--threshold 2 must be above 0 and at most 1",)),
    (("api", "--port", "0"), ("--port 0 is not a TCP port (1-65535)",)),
    (("worker", "--metrics-port", "99999"), ("--metrics-port 99999 is not a TCP port (0-65535, 0: off)",)),
    (("worker", "--batch-size", "0"), ("--batch-size 0 must be a whole number of 1 or more",)),
    (("simulate", "--speed", "0"), ("--speed 0 must be a number above 0",)),
    (("ingest", "x.jsonl", "--partitions", "-3"), ("--partitions -3 must be a whole number of 1 or more",)),
])
def test_a_bad_flag_value_is_one_line(capsys, argv, words):
    one_line_error(capsys, *argv, words=words)


def test_missing_or_unusable_paths_are_one_line(capsys, tmp_path, files):
    a_file = write(tmp_path, "a-file", "x")
    one_line_error(capsys, "run", "--catalog", tmp_path / "nope.yaml", words=("--catalog", "nope.yaml: no such file",))
    one_line_error(capsys, "run", "--data-dir", a_file, words=("--data-dir", "is not a directory",))
    one_line_error(capsys, "run", "--sensorthings-map", tmp_path / "nope.yaml", words=("--sensorthings-map",
                                                                                       "no such file"))
    one_line_error(capsys, "replay", files["storm"], "--rules", tmp_path / "nope",
                   words=("--rules", "no such rules directory"))
    one_line_error(capsys, "backtest", files["storm"], "--rules", files["empty_rules"],
                   words=("--rules", "has no *.yaml rule files"))
    one_line_error(capsys, "users", "list", "--data-dir", a_file, words=("--data-dir", "is not a directory"))
    one_line_error(capsys, "worker", "--catalog", tmp_path / "nope.yaml", words=("--catalog", "no such file"))


@pytest.mark.parametrize("command", ["replay", "backtest", "detect"])
def test_a_missing_input_file_is_one_line(capsys, tmp_path, command):
    extra = ("--out", str(tmp_path / "o.csv")) if command == "detect" else ()
    one_line_error(capsys, command, tmp_path / "missing.jsonl", *extra,
                   words=(f"ioc {command}: cannot read", "missing.jsonl", "No such file"))


def test_a_sensorthings_map_that_is_not_a_mapping_is_one_line(capsys, tmp_path):
    bad = write(tmp_path, "st.yaml", "- 17\n- 18\n")
    one_line_error(capsys, "run", "--data-dir", tmp_path / "d", "--port", "1", "--sensorthings-map", bad,
                   words=("--sensorthings-map", "expected a YAML mapping"))


# -- IOC_* variables: the same sources for every command --------------------------
def test_env_paths_are_checked_and_named(capsys, monkeypatch, tmp_path, files):
    monkeypatch.setenv("IOC_CATALOG", str(tmp_path / "nope.yaml"))
    for argv in (("replay", files["storm"]), ("backtest", files["storm"]), ("api",)):
        one_line_error(capsys, *argv, words=(f"IOC_CATALOG={tmp_path / 'nope.yaml'}: no such file",
                                             "unset IOC_CATALOG"))
    monkeypatch.delenv("IOC_CATALOG")
    monkeypatch.setenv("IOC_RULES_DIR", str(files["empty_rules"]))
    one_line_error(capsys, "replay", files["storm"], words=("IOC_RULES_DIR=", "has no *.yaml rule files"))
    monkeypatch.delenv("IOC_RULES_DIR")
    monkeypatch.setenv("IOC_DATA_DIR", str(write(tmp_path, "f", "x")))
    one_line_error(capsys, "users", "list", words=("IOC_DATA_DIR=", "is not a directory"))
    monkeypatch.setenv("IOC_PARTITIONS", "four")
    one_line_error(capsys, "worker", words=("IOC_PARTITIONS='four': expected a number",))


def test_replay_and_backtest_read_IOC_CATALOG_and_IOC_RULES_DIR(capsys, monkeypatch, tmp_path, files):
    # the catalog of IOC_CATALOG is the one used: its error names that file
    bad_cat = write(tmp_path, "cat.yaml", CATALOG.replace("commune: c1}", "commune: c9}"))
    monkeypatch.setenv("IOC_CATALOG", str(bad_cat))
    one_line_error(capsys, "backtest", files["storm"], words=(str(bad_cat), "stations[S1].commune", "'c9'"))
    monkeypatch.setenv("IOC_CATALOG", str(write(tmp_path, "good.yaml", CATALOG)))
    # IOC_RULES_DIR switches a built-in rule off, as --rules does
    rc, out, _ = run(capsys, "backtest", files["storm"])
    assert rc == 0 and "rain_3h_intense" in out and "S1" in out
    assert run(capsys, "replay", files["storm"], "--emit", tmp_path / "before.jsonl")[0] == 0
    assert '"rule":"rain_3h_intense"' in (tmp_path / "before.jsonl").read_text()
    rules = tmp_path / "rules"
    write(rules, "off.yaml", "rules:\n  - {name: rain_3h_intense, enabled: false}\n")
    monkeypatch.setenv("IOC_RULES_DIR", str(rules))
    rc, out, _ = run(capsys, "backtest", files["storm"])
    assert rc == 0 and "rain_3h_intense" not in out
    assert run(capsys, "replay", files["storm"], "--emit", tmp_path / "after.jsonl")[0] == 0  # the same rules
    after = (tmp_path / "after.jsonl").read_text()
    assert '"type":"alert"' in after and '"rule":"rain_3h_intense"' not in after


# -- rules --------------------------------------------------------------------------
def test_a_rule_name_typo_is_an_error_with_the_right_name(capsys, tmp_path, files):
    rules = tmp_path / "rules"
    x = write(rules, "x.yaml", RULE.format(name="rain_24h_very_hevy", extra=""))
    line = one_line_error(capsys, "replay", files["storm"], "--rules", rules, words=())
    assert line == (f"ioc: error: unknown rule 'rain_24h_very_hevy' in {x}; did you mean 'rain_24h_very_heavy'? "
                    "To add a new rule, set `new: true`")
    one_line_error(capsys, "run", "--rules", rules, "--data-dir", tmp_path / "d", "--port", "1",
                   words=("unknown rule 'rain_24h_very_hevy'",))
    write(rules, "x.yaml", "rules:\n  - {name: rain_3h_intens, enabled: false}\n")
    one_line_error(capsys, "backtest", files["storm"], "--rules", rules,
                   words=("unknown rule 'rain_3h_intens'", "did you mean 'rain_3h_intense'?", "enabled: false"))


def test_new_rules_are_marked_and_may_not_shadow_a_builtin(capsys, tmp_path, files):
    rules = tmp_path / "rules"
    write(rules, "x.yaml", RULE.format(name="rain_24h_very_heavy", extra="    new: true\n"))
    one_line_error(capsys, "backtest", files["storm"], "--rules", rules,
                   words=("rule 'rain_24h_very_heavy' is marked `new: true` but a built-in rule has that name",))
    write(rules, "x.yaml", RULE.format(name="rain_24h_over_50", extra="    new: true\n").replace("100", "50"))
    rc, out, err = run(capsys, "backtest", files["storm"], "--rules", rules)
    assert rc == 0 and "rain_24h_over_50" in out and "rain_3h_intense" in out, err  # added next to the pack
    write(rules, "x.yaml", RULE.format(name="rain_24h_over_50", extra="    new: yes please\n"))
    one_line_error(capsys, "backtest", files["storm"], "--rules", rules, words=("new: expected true or false",))


def test_several_rule_problems_are_one_line(capsys, tmp_path, files):
    rules = tmp_path / "rules"
    write(rules, "a.yaml", RULE.format(name="rain_24h_very_heavy", extra="").replace("threshold: 100", "threshold: x"))
    write(rules, "b.yaml", RULE.format(name="Bad-Name", extra=""))
    line = one_line_error(capsys, "replay", files["storm"], "--rules", rules, words=("a.yaml", "b.yaml", "; "))
    assert "threshold: expected a number" in line and "not a snake_case name" in line


# -- catalog ------------------------------------------------------------------------
CATALOG_ERRORS = {
    "dangling commune": (("commune: c1}", "commune: c9}"), "stations[S1].commune: 'c9' is not a unit in the catalog"),
    "district is a commune": (("district: d1, commune", "district: c1, commune"),
                              "stations[S1].district: 'c1' is a commune, not a district"),
    "dangling site unit": (("unit: d1,", "unit: d7,"), "sites[s1].unit: 'd7' is not a unit in the catalog"),
    "dangling parent": (("parent: d1}", "parent: d2}"), "units[c1]: parent 'd2' is not a unit in the catalog"),
    "cycle": (("{id: p, name: P, level: province}", "{id: p, name: P, level: province, parent: c1}"),
              "parent chain has a cycle"),
    "duplicate id": (("  - {id: c1, name: C1, level: commune, parent: d1}\n",
                      "  - {id: c1, name: C1, level: commune, parent: d1}\n  - {id: c1, name: C, level: commune}\n"),
                     "units[c1]: duplicate id"),
    "percentage target": (("on_time_rate: 0.98", "on_time_rate: 98"),
                          "targets.on_time_rate: 98 is not a fraction between 0 and 1: write 0.98"),
    "negative target": (("online_rate: 0.5", "online_rate: -0.5"), "targets.online_rate: -0.5 is not a fraction"),
    "swapped lat/lon": (("lat: 21.3, lon: 105.6, district", "lat: 105.6, lon: 21.3, district"),
                        "stations[S1].lat/lon: (105.6, 21.3) is outside Vietnam"),
    "site outside Vietnam": (("cameras: [cam-1], lat: 21.3, lon: 105.6", "cameras: [cam-1], lat: 48.85, lon: 2.35"),
                             "sites[s1].lat/lon: (48.85, 2.35) is outside Vietnam"),
    "no counters": (("counters: 4", "counters: 0"), "sites[s1].counters: 0 must be 1 or more"),
    "zero service time": (("counters: 4,", "counters: 4, service_minutes_per_person: 0,"),
                          "sites[s1].service_minutes_per_person: 0 must be above 0"),
    "camera in two sites": (("cameras: [cam-1], lat: 21.3, lon: 105.6}\n",
                             "cameras: [cam-1], lat: 21.3, lon: 105.6}\n  - {id: s2, name: S2, cameras: [cam-1]}\n"),
                            "sites[s2].cameras: camera 'cam-1' is already a camera of site 's1'"),
}


@pytest.mark.parametrize("case", sorted(CATALOG_ERRORS))
def test_a_bad_catalog_names_file_entry_and_field(capsys, tmp_path, files, case):
    (old, new), words = CATALOG_ERRORS[case]
    assert old in CATALOG
    cat = write(tmp_path, "cat.yaml", CATALOG.replace(old, new, 1))
    line = one_line_error(capsys, "replay", files["storm"], "--catalog", cat, words=(words,))
    assert line.startswith(f"ioc: error: {cat}: "), line


def test_the_catalogs_that_ship_load(capsys, tmp_path, files):
    for cat in (ROOT / "sensors" / "demo_catalog.yaml", ROOT / "docs" / "examples" / "catalog-template.yaml",
                write(tmp_path, "ok.yaml", CATALOG)):
        rc, out, err = run(capsys, "replay", files["storm"], "--catalog", cat)
        assert rc == 0 and "events read" in out, (cat, err)


# -- startup order: the real entry point --------------------------------------------
def test_a_port_in_use_is_one_line_before_any_banner_or_token(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
        proc = subprocess.run([str(IOC_BIN), "run", "--demo", "--port", str(port), "--data-dir", str(data)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"ioc: error: --port {port}: port {port} on 127.0.0.1 is already in use "
                                   "(is another ioc running? stop it or choose another port with --port)")
    assert proc.stdout == ""  # no banner, no "demo principals", no token
    # and no principal was created whose token nobody saw: the next run prints fresh ones
    from ioc.auth.authenticator import Authenticator
    from ioc.auth.sqlite_store import SqlitePrincipalStore

    auth = Authenticator(SqlitePrincipalStore(data))
    try:
        assert [p for p in auth.listing() if p["source"] == "stored"] == []
    finally:
        auth.close()


def test_help_shows_where_defaults_come_from(capsys):
    rc, out, _ = run(capsys, "replay", "--help")
    assert rc == 0 and "$IOC_CATALOG" in out and "$IOC_RULES_DIR" in out

