"""`ioc detect SERIES.csv --out SCORES.csv`: what the anomaly detector would have flagged on a history.

Input: CSV with a header naming `timestamp` and `value` (other columns are ignored), one series, in time
order; timestamps ISO 8601 (`2026-03-01T08:00:00+07:00`) or `YYYY-MM-DD HH:MM:SS`.  A naive timestamp is the
series' own local wall time; an offset is dropped after reading the wall time, since only differences and
the hour of the day matter.  Output: one row per input row, `timestamp,value,anomaly_score,alert,scale,
expected_low,expected_high`; each row's score uses only the rows up to it.  During the warm-up (the first
day or 288 rows, whichever comes first) the detector has no verdict: `anomaly_score` is written 0, `alert`
0 and the explanation columns are empty.  An empty value (a gap, as Grafana exports it) is written back
with score 0 and not learned: no data is not a reading.  A row whose timestamp or value cannot be read, or
that goes back in time, stops the run with its line number (exit 2): a silently skipped row would shift
what the user compares.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from alerts.anomaly import make_detector

EXIT_BAD_INPUT = 2


class DetectError(ValueError):
    """Bad input, with the line number in the message."""


def parse_wall_time(text: str) -> float:
    """Wall-clock seconds of an ISO 8601 or `YYYY-MM-DD HH:MM:SS` timestamp (offset dropped)."""
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc).timestamp()


def _columns(header: list[str]) -> tuple[int, int]:
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    if "timestamp" not in names or "value" not in names:
        raise DetectError(f"line 1: the header must name the columns timestamp and value, got {','.join(header)!r}")
    return names.index("timestamp"), names.index("value")


def detect(src: TextIO, dst: TextIO, detector: str = "robust", threshold: float | None = None) -> tuple[int, int]:
    """Score every row of `src` into `dst`; returns (rows, alert rows).  Raises DetectError."""
    params = {} if threshold is None else {"threshold": threshold}
    det = make_detector(detector, params)
    reader = csv.reader(src)
    header = next(reader, None)
    if header is None:
        raise DetectError("line 1: empty file (expected a header timestamp,value)")
    it, iv = _columns(header)
    out = csv.writer(dst, lineterminator="\n")
    out.writerow(["timestamp", "value", "anomaly_score", "alert", "scale", "expected_low", "expected_high"])
    rows = alerts = 0
    prev_t = -math.inf
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        try:
            ts_text, v_text = row[it], row[iv]
        except IndexError:
            raise DetectError(f"line {line}: expected {len(header)} columns, got {len(row)}") from None
        try:
            t = parse_wall_time(ts_text)
        except ValueError:
            raise DetectError(f"line {line}: cannot read timestamp {ts_text!r} "
                              "(use ISO 8601 or YYYY-MM-DD HH:MM:SS)") from None
        if not v_text.strip():
            if t < prev_t:
                raise DetectError(f"line {line}: timestamp {ts_text!r} goes back in time (sort the rows first)")
            prev_t = t
            rows += 1
            out.writerow([ts_text, v_text, "0", "0", "", "", ""])
            continue
        try:
            x = float(v_text)
        except ValueError:
            raise DetectError(f"line {line}: cannot read value {v_text!r} as a number") from None
        if not math.isfinite(x):
            raise DetectError(f"line {line}: value {v_text!r} is not a finite number")
        if t < prev_t:
            raise DetectError(f"line {line}: timestamp {ts_text!r} goes back in time (sort the rows first)")
        prev_t = t
        sc = det.score_one(t, x)
        det.learn_one(t, x)
        rows += 1
        if sc is None:
            out.writerow([ts_text, v_text, "0", "0", "", "", ""])
            continue
        alerts += sc.alert
        out.writerow([ts_text, v_text, f"{sc.score:.6f}", "1" if sc.alert else "0", sc.scale,
                      f"{sc.expected_low:.6g}", f"{sc.expected_high:.6g}"])
    return rows, alerts


def run(path: Path, out_path: Path, detector: str = "robust", threshold: float | None = None,
        err: TextIO = sys.stderr) -> int:
    """The CLI's body: 0 on success, 2 on unreadable or bad input (one clear line on stderr)."""
    try:
        src = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        print(f"ioc detect: cannot read {path}: {exc.strerror}", file=err)
        return EXIT_BAD_INPUT
    buf = io.StringIO()
    try:
        with src:
            rows, alerts = detect(src, buf, detector, threshold)
    except DetectError as exc:
        print(f"ioc detect: {path}: {exc}", file=err)
        return EXIT_BAD_INPUT
    except UnicodeDecodeError:
        print(f"ioc detect: {path}: not UTF-8 text", file=err)
        return EXIT_BAD_INPUT
    try:
        out_path.write_text(buf.getvalue(), encoding="utf-8")
    except OSError as exc:
        print(f"ioc detect: cannot write {out_path}: {exc.strerror}", file=err)
        return EXIT_BAD_INPUT
    print(f"ioc detect: {rows} rows scored, {alerts} alert rows → {out_path}", file=err)
    return 0
