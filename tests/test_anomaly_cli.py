"""`ioc detect SERIES.csv --out SCORES.csv` as a user runs it (a real subprocess)."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def ioc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ioc.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def write_series(path: Path, values, start="2026-03-01 00:00:00", step_min=5, iso=False) -> list[str]:
    t0 = datetime.fromisoformat(start)
    stamps = []
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("timestamp,value\n")
        for i, v in enumerate(values):
            t = t0 + timedelta(minutes=step_min * i)
            s = t.strftime("%Y-%m-%dT%H:%M:%S+07:00") if iso else t.strftime("%Y-%m-%d %H:%M:%S")
            stamps.append(s)
            fh.write(f"{s},{v}\n")
    return stamps


def read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_scores_one_row_per_input_row_zero_while_warming_up_and_flags_the_spike(tmp_path):
    xs = np.round(50 + np.random.default_rng(1).normal(0, 2, 600), 3)
    xs[500] = 80.0
    src, dst = tmp_path / "series.csv", tmp_path / "scores.csv"
    stamps = write_series(src, xs.tolist())
    p = ioc("detect", str(src), "--out", str(dst))
    assert p.returncode == 0, p.stderr
    assert "600 rows scored" in p.stderr
    rows = read(dst)
    assert list(rows[0])[:4] == ["timestamp", "value", "anomaly_score", "alert"]
    assert [r["timestamp"] for r in rows] == stamps and len(rows) == 600
    assert all(r["anomaly_score"] == "0" and r["alert"] == "0" for r in rows[:288])  # warm-up: 0, documented
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    assert rows[500]["alert"] == "1" and float(rows[500]["anomaly_score"]) >= 0.5
    assert float(rows[500]["expected_low"]) < 50 < float(rows[500]["expected_high"]) < 80
    assert sum(r["alert"] == "1" for r in rows) <= 3


def test_iso_timestamps_with_offset_give_the_same_scores(tmp_path):
    xs = (10 + np.sin(np.arange(400) / 7.0)).round(4).tolist()
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_series(a, xs)
    write_series(b, xs, iso=True)
    assert ioc("detect", str(a), "--out", str(tmp_path / "a.out")).returncode == 0
    assert ioc("detect", str(b), "--out", str(tmp_path / "b.out")).returncode == 0
    sa = [r["anomaly_score"] for r in read(tmp_path / "a.out")]
    sb = [r["anomaly_score"] for r in read(tmp_path / "b.out")]
    assert sa == sb


def test_bad_row_is_a_clear_error_with_its_line_number(tmp_path):
    src = tmp_path / "bad.csv"
    write_series(src, [1.0, 2.0, 3.0])
    with open(src, "a", encoding="utf-8") as fh:
        fh.write("2026-03-01 00:15:00,abc\n")
    p = ioc("detect", str(src), "--out", str(tmp_path / "o.csv"))
    assert p.returncode == 2
    assert "line 5" in p.stderr and "'abc'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o.csv").exists()  # nothing half-written
    src.write_text("time,val\n2026-03-01 00:00:00,1\n", encoding="utf-8")
    p = ioc("detect", str(src), "--out", str(tmp_path / "o.csv"))
    assert p.returncode == 2 and "timestamp and value" in p.stderr
    src.write_text("timestamp,value\nyesterday,1\n", encoding="utf-8")
    p = ioc("detect", str(src), "--out", str(tmp_path / "o.csv"))
    assert p.returncode == 2 and "line 2" in p.stderr and "cannot read timestamp" in p.stderr
    p = ioc("detect", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.csv"))
    assert p.returncode == 2 and "cannot read" in p.stderr


def test_twenty_thousand_rows(tmp_path):
    """A series as long as the longest we expect from an export (speed: `python -m benchmarks anomaly`)."""
    xs = np.round(100 + np.random.default_rng(2).normal(0, 5, 20000), 3).tolist()
    src = tmp_path / "big.csv"
    write_series(src, xs)
    p = ioc("detect", str(src), "--out", str(tmp_path / "big.out"))
    assert p.returncode == 0, p.stderr
    rows = read(tmp_path / "big.out")
    assert len(rows) == 20000 and sum(r["alert"] == "1" for r in rows) <= 5  # plain noise: next to no alarms


def test_an_empty_value_is_a_gap_not_a_reading(tmp_path):
    xs = np.round(50 + np.random.default_rng(3).normal(0, 2, 400), 3).tolist()
    src, dst = tmp_path / "gaps.csv", tmp_path / "gaps.out"
    stamps = write_series(src, ["" if 300 <= i < 310 else v for i, v in enumerate(xs)])
    p = ioc("detect", str(src), "--out", str(dst))
    assert p.returncode == 0, p.stderr
    rows = read(dst)
    assert [r["timestamp"] for r in rows] == stamps
    assert all(r["value"] == "" and r["anomaly_score"] == "0" and r["alert"] == "0" for r in rows[300:310])
    full = tmp_path / "full.csv"  # the same series without the gap's rows, same timestamps
    full.write_text("timestamp,value\n" + "".join(f"{stamps[i]},{xs[i]}\n" for i in range(400) if not 300 <= i < 310),
                    encoding="utf-8")
    assert ioc("detect", str(full), "--out", str(tmp_path / "full.out")).returncode == 0
    # the gap teaches the detector nothing: every later score is the one without those rows
    assert [r["anomaly_score"] for r in rows[310:]] == [r["anomaly_score"] for r in read(tmp_path / "full.out")][300:]


def test_help_lists_detect_and_its_output_columns():
    assert "detect" in ioc("--help").stdout
    out = ioc("detect", "--help").stdout
    assert "timestamp,value" in out and "anomaly_score" in out and "--out" in out
