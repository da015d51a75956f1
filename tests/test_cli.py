"""The `ioc` command line: help, backtest, and clear errors for bad configuration."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ioc(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ioc.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, **kw)


def test_help_explains_every_command():
    out = ioc("--help").stdout
    for command in ("run", "replay", "backtest"):
        assert command in out
    assert "--demo" in ioc("run", "--help").stdout
    assert "--emit" in ioc("replay", "--help").stdout


def test_backtest_prints_what_would_have_fired_and_for_how_long(tmp_path):
    lines = [
        {"kind": "rain", "station": "VP-001", "ts": f"2026-10-28T{h:02d}:{m:02d}:00+07:00", "rain_mm": 7.5 if h == 13 else 0.0}
        for h in range(12, 18) for m in range(0, 60, 5)
    ]
    src = tmp_path / "storm.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = ioc("backtest", str(src)).stdout
    assert "rain_3h_intense" in out and "VP-001" in out
    assert "rain_24h_very_heavy" not in out  # 90 mm in 24 h stays under 100


def test_bad_catalog_is_a_one_line_error(tmp_path):
    bad = tmp_path / "cat.yaml"
    bad.write_text("stations:\n  - {id: A, name: a, lat: x, lon: 1}\n")
    proc = ioc("replay", str(bad), "--catalog", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"ioc: error: {bad}: stations[A].lat: Expected `float`, got `str`"


# -- bad input files: one clear line, an exit status, never a traceback ---------------
RAIN = '{{"kind": "rain", "station": "VP-001", "ts": "{ts}", "rain_mm": {mm}}}'
GOOD = [RAIN.format(ts=f"2026-10-28T13:{m:02d}:00+07:00", mm=1.5) for m in range(0, 60, 5)]
WATERMARK = "watermark rain: 2026-10-28T13:55:00+07:00"


def _lines(tmp_path, *lines: str, name: str = "in.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _clean(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-2000:]


BAD_LINES = {
    "year 9999": (RAIN.format(ts="9999-12-31T23:59:59Z", mm=1), {"bad_timestamp"}),
    "year 1": (RAIN.format(ts="0001-01-01T00:00:00+14:00", mm=1), {"bad_timestamp"}),
    "2 days ahead": (RAIN.format(ts="2026-10-30T14:00:00+07:00", mm=1), {"future_timestamp"}),
    "a week late": (RAIN.format(ts="2026-10-21T13:00:00+07:00", mm=1), {"too_late"}),
    "2^63": ('{"kind": "camera", "camera": "c1", "site": "vinh-yen", "ts": "2026-10-28T13:20:00+07:00", '
             '"waiting": 9223372036854775808, "counters_open": 1}', {"out_of_range", "invalid_value"}),
    "rain 1e300": (RAIN.format(ts="2026-10-28T13:20:00+07:00", mm="1e300"), {"out_of_range", "invalid_value"}),
    "nested objects": ('{"a": ' * 50_000 + "1" + "}" * 50_000, {"too_deep"}),
    "nested arrays": ('{"kind": "rain", "x": ' + "[" * 50_000 + "]" * 50_000 + "}", {"too_deep"}),
    "2 MiB line": ('{"kind": "rain", "x": "' + "y" * (2 << 20) + '"}', {"too_large"}),
    "not JSON": ("\x00\xff{{{", {"bad_json"}),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_replay_reports_a_bad_line_by_number_and_keeps_the_rest(tmp_path, case):
    bad, reasons = BAD_LINES[case]
    src = _lines(tmp_path, *GOOD[:6], bad, *GOOD[6:])
    proc = ioc("replay", str(src))
    _clean(proc)
    assert proc.returncode == 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{src}:7: "), err
    assert err[0].split(": ")[1] in reasons
    assert f"accepted: {len(GOOD)}" in proc.stdout
    assert WATERMARK in proc.stdout  # the bad line never moved the watermark


def test_replay_far_future_first_line_does_not_move_the_watermark(tmp_path):
    src = _lines(tmp_path, RAIN.format(ts="9999-12-31T23:59:59Z", mm=1), *GOOD)
    proc = ioc("replay", str(src), "--emit", str(tmp_path / "out.jsonl"))
    _clean(proc)
    assert proc.returncode == 0 and proc.stderr.startswith(f"{src}:1: bad_timestamp: ")
    assert "9999" not in (tmp_path / "out.jsonl").read_text()


def _one_line_error(proc, returncode: int, expected: str) -> None:
    _clean(proc)
    assert proc.returncode == returncode
    assert proc.stderr.strip() == expected


@pytest.mark.parametrize("command", ["replay", "backtest"])
def test_missing_directory_or_non_gzip_input_is_one_line_and_exit_2(tmp_path, command):
    good = _lines(tmp_path, *GOOD)
    missing = tmp_path / "missing.jsonl"
    out = tmp_path / "out.jsonl"
    emit = ["--emit", str(out)] if command == "replay" else []
    _one_line_error(ioc(command, str(good), str(missing), *emit), 2,
                    f"ioc {command}: cannot read {missing}: No such file or directory")
    _one_line_error(ioc(command, str(tmp_path)), 2, f"ioc {command}: cannot read {tmp_path}: is a directory")
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text(GOOD[0] + "\n")
    _one_line_error(ioc(command, str(fake)), 2, f"ioc {command}: cannot read {fake}: not a gzip file")
    assert not out.exists()  # all inputs are checked before anything is written


def test_emit_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    src = _lines(tmp_path, *GOOD)
    out = tmp_path / "no-such-dir" / "out.jsonl"
    _one_line_error(ioc("replay", str(src), "--emit", str(out)), 2,
                    f"ioc replay: cannot write {out}: No such file or directory")


def _storm(n: int) -> list[str]:
    from ioc.timeutil import format_ts, parse_ts

    t0 = parse_ts("2026-10-28T00:00:00+07:00")
    return [RAIN.format(ts=format_ts(t0 + 300 * i), mm=round(3 + (i * 7919) % 11 * 0.7, 1)) for i in range(n)]


def test_truncated_gzip_replays_what_was_read_then_exits_1(tmp_path):
    import gzip

    lines = _storm(2000)
    whole = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    out = tmp_path / "out.jsonl"
    proc = ioc("replay", str(cut), "--emit", str(out))
    _clean(proc)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ioc replay: {cut}: truncated or corrupt gzip after line "), err
    n = int(err[0].split("after line ")[1].split(":")[0])
    assert 0 < n < len(lines)
    # the output is exactly that of the lines read before the cut
    prefix = _lines(tmp_path, *lines[:n], name="prefix.jsonl")
    ref = tmp_path / "ref.jsonl"
    assert ioc("replay", str(prefix), "--emit", str(ref)).returncode == 0
    assert out.read_bytes() == ref.read_bytes() and out.stat().st_size > 0

    bt = ioc("backtest", str(cut))
    _clean(bt)
    assert bt.returncode == 1 and "alert(s) over" in bt.stdout
    assert bt.stderr.strip().splitlines()[-1].startswith(f"ioc backtest: {cut}: truncated or corrupt gzip after line {n}")


def test_backtest_reports_bad_lines_and_refused_times(tmp_path):
    src = _lines(tmp_path, *GOOD[:3], BAD_LINES["2 days ahead"][0], BAD_LINES["nested objects"][0], *GOOD[3:])
    proc = ioc("backtest", str(src))
    _clean(proc)
    assert proc.returncode == 0
    err = proc.stderr.strip().splitlines()
    assert [e.split(": ")[:2] for e in err] == [[f"{src}:4", "future_timestamp"], [f"{src}:5", "too_deep"]]


def test_replay_help_documents_exit_status_and_limits():
    for command in ("replay", "backtest"):
        out = ioc(command, "--help").stdout
        assert "exit status:" in out and "too_large" in out and "too_deep" in out
        assert f"ioc {command}: cannot read FILE" in out


def test_unknown_station_cap_is_configurable(tmp_path):
    """IOC_MAX_UNKNOWN_ENTITIES: ids missing from the catalog are kept up to the cap, then refused with a reason."""
    import os

    lines = [json.dumps({"kind": "rain", "station": f"NOT-IN-CATALOG-{i}", "ts": "2026-10-28T13:05:00+07:00",
                         "rain_mm": 1.0}) for i in range(5)]
    src = _lines(tmp_path, *lines)
    out = tmp_path / "out.jsonl"
    r = ioc("replay", str(src), "--emit", str(out), env=dict(os.environ, IOC_MAX_UNKNOWN_ENTITIES="2"))
    assert r.returncode == 0, r.stderr
    refused = [line for line in r.stderr.splitlines() if "unknown_entity_limit" in line]
    assert [line.split(":")[1] for line in refused] == ["3", "4", "5"]  # line numbers of the 3rd..5th new id
    entities = {json.loads(x)["entity"] for x in out.read_text().splitlines() if x.startswith('{"type":"indicator"')}
    assert entities == {"NOT-IN-CATALOG-0", "NOT-IN-CATALOG-1"}
    r = ioc("replay", str(src), "--emit", str(out), env=dict(os.environ, IOC_MAX_UNKNOWN_ENTITIES="many"))
    assert r.returncode != 0 and "IOC_MAX_UNKNOWN_ENTITIES" in r.stderr and "Traceback" not in r.stderr
