"""The `ioc` command line: help, backtest, and clear errors for bad configuration."""

import json
import subprocess
import sys
from pathlib import Path

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
    assert proc.stderr.strip() == f"ioc: {bad}: stations[A].lat: Expected `float`, got `str`"
