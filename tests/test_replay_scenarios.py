"""`ioc replay` over a multi-day scenario: final values equal brute force.

A dozen rain stations over four days with a link outage whose buffered
readings arrive hours late, out-of-order readings, malformed lines and
too-late lines; cameras at three sites; dossiers across units.  The final
record per key (written at the watermark = largest valid event time) must
equal a brute-force computation over the accepted raw events.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ioc.timeutil import format_ts, parse_ts, period_key

ROOT = Path(__file__).resolve().parents[1]
T0 = parse_ts("2026-10-26T00:00:00+07:00")
STATIONS = [f"VP-{i:03d}" for i in range(1, 13)]
RAIN_WINDOWS = {"1h": 3600, "3h": 10800, "6h": 21600, "12h": 43200, "24h": 86400, "72h": 259200}


def rain_scenario(rnd: random.Random) -> tuple[list[str], list[dict]]:
    """Lines in arrival order, and the valid events among them."""
    lines: list[str] = []
    valid: list[dict] = []
    buffered: list[dict] = []
    for step in range(4 * 288):  # four days of 5-minute readings
        t = T0 + 300 * (step + 1)
        for s in STATIONS:
            mm = 0.0 if rnd.random() < 0.6 else round(rnd.random() * 4, 1)
            ev = {"kind": "rain", "station": s, "ts": format_ts(t), "rain_mm": mm}
            if s == "VP-003" and 300 <= step < 330:  # link outage: buffered, uploaded 2.5 h later
                buffered.append(ev)
                continue
            lines.append(json.dumps(ev))
            valid.append(ev)
        if step == 360:  # the buffered upload arrives late, out of order
            rnd.shuffle(buffered)
            for ev in buffered:
                lines.append(json.dumps(ev))
                valid.append(ev)
            buffered = []
        if step % 97 == 5:
            lines.append('{"kind":"rain","station":"VP-001","ts":"garbage","rain_mm":1}')
            lines.append("{truncated")
            lines.append(json.dumps({"kind": "rain", "station": "VP-002", "ts": format_ts(t), "rain_mm": -1}))
        if step == 1000:  # older than the 72 h held: too late
            lines.append(json.dumps({"kind": "rain", "station": "VP-004", "ts": format_ts(t - 80 * 3600), "rain_mm": 9.9}))
    return lines, valid


def camera_scenario(rnd: random.Random) -> tuple[list[str], list[dict]]:
    lines, valid = [], []
    for minute in range(3 * 24 * 60, 4 * 24 * 60, 1):
        t = T0 + 60 * minute
        for site, cam in (("vinh-yen", "cam-vy-1"), ("phuc-yen", "cam-py-1"), ("tam-dao", "cam-td-1")):
            if rnd.random() < 0.2:
                continue
            ev = {"kind": "camera", "camera": cam, "site": site, "ts": format_ts(t), "waiting": rnd.randint(0, 30), "counters_open": rnd.randint(1, 4)}
            lines.append(json.dumps(ev))
            valid.append(ev)
    return lines, valid


def run_replay(tmp_path: Path, lines: list[str], name: str) -> tuple[dict, str, int]:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / f"{name}-out.jsonl"
    proc = subprocess.run([sys.executable, "-m", "ioc.cli", "replay", str(src), "--emit", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    final = {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "indicator":
            final[(rec["name"], rec["window"], rec["entity"])] = rec
    return final, proc.stderr, proc.returncode


def test_rain_replay_equals_brute_force_with_late_uploads(tmp_path):
    lines, valid = rain_scenario(random.Random(7))
    final, stderr, code = run_replay(tmp_path, lines, "rain")
    assert code == 0
    assert "bad_timestamp" in stderr and "bad_json" in stderr and "negative_value" in stderr and "too_late" in stderr
    watermark = max(parse_ts(e["ts"]) for e in valid)
    for s in STATIONS:
        for window, length in RAIN_WINDOWS.items():
            expected = sum(e["rain_mm"] for e in valid if e["station"] == s and watermark - length < parse_ts(e["ts"]) <= watermark)
            rec = final[("rain_mm", window, s)]
            assert rec["ts"] == format_ts(watermark)
            assert rec["value"] == pytest.approx(expected, abs=1e-6), (s, window)


def test_replay_is_byte_identical(tmp_path):
    lines, _ = rain_scenario(random.Random(3))
    lines += camera_scenario(random.Random(4))[0]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}.jsonl"
        subprocess.run([sys.executable, "-m", "ioc.cli", "replay", str(src), "--emit", str(out)], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 1000


def test_camera_replay_equals_brute_force(tmp_path):
    lines, valid = camera_scenario(random.Random(11))
    final, _, code = run_replay(tmp_path, lines, "cam")
    assert code == 0
    watermark = max(parse_ts(e["ts"]) for e in valid)
    for site in ("vinh-yen", "phuc-yen", "tam-dao"):
        window = [e["waiting"] for e in valid if e["site"] == site and watermark - 900 < parse_ts(e["ts"]) <= watermark]
        assert final[("queue_waiting_avg", "15m", site)]["value"] == pytest.approx(sum(window) / len(window), abs=1e-3)
        assert final[("queue_waiting_max", "15m", site)]["value"] == max(window)


def test_dossier_replay_counts_by_period_and_rolls_up(tmp_path):
    """received/online by the period of `received`, processed and on-time by the period of `processed`."""
    rnd = random.Random(5)
    units = ["vinh-yen", "phuc-yen", "tam-dao"]  # demo-catalog districts (their parent is the province)
    lines, received, processed = [], {}, {}
    t = parse_ts("2026-10-01T08:00:00+07:00")
    for i in range(600):
        t += rnd.randint(600, 7200)
        unit = rnd.choice(units)
        code = f"D-{i:04d}"
        due = t + rnd.choice([1, 2, 3]) * 86400
        channel = "online" if rnd.random() < 0.7 else "direct"
        lines.append(json.dumps({"kind": "dossier", "dossier": code, "unit": unit, "ts": format_ts(t), "status": "received", "channel": channel, "due": format_ts(due)}))
        received[code] = (unit, t, channel, due)
        if rnd.random() < 0.8:
            done = t + rnd.randint(3600, 4 * 86400)
            processed[code] = done
            lines.append(json.dumps({"kind": "dossier", "dossier": code, "unit": unit, "ts": format_ts(done), "status": "processed"}))
    # events arrive in event-time order (as one-stop-shop software emits them)
    lines.sort(key=lambda line: parse_ts(json.loads(line)["ts"]))
    final, _, code = run_replay(tmp_path, lines, "dossiers")
    assert code == 0
    watermark = max(parse_ts(json.loads(line)["ts"]) for line in lines)
    for period in ("day", "month", "year"):
        key = period_key(watermark, period)
        for unit in units + ["vinh-phuc"]:
            mine = [c for c, (u, *_r) in received.items() if unit in (u, "vinh-phuc")]
            rec_in = [c for c in mine if period_key(received[c][1], period) == key]
            rec = final.get(("dossier_received", period, unit))
            if rec_in:
                assert rec["value"] == len(rec_in), (unit, period)
                online = sum(1 for c in rec_in if received[c][2] == "online")
                assert final[("dossier_online_rate", period, unit)]["value"] == pytest.approx(online / len(rec_in), abs=1e-3)
            proc_in = [c for c in mine if c in processed and processed[c] <= watermark and period_key(processed[c], period) == key]
            if proc_in:
                on_time = sum(1 for c in proc_in if processed[c] <= received[c][3])
                assert final[("dossier_on_time_rate", period, unit)]["value"] == pytest.approx(on_time / len(proc_in), abs=1e-3)
            else:
                assert ("dossier_on_time_rate", period, unit) not in final or final[("dossier_on_time_rate", period, unit)]["value"] is None
    for unit in units:
        overdue = sum(1 for c, (u, rt, ch, due) in received.items() if u == unit and c not in processed and due < watermark)
        if overdue or ("dossier_overdue_open", "now", unit) in final:
            assert final[("dossier_overdue_open", "now", unit)]["value"] == overdue


POISON = [
    '{"kind": "rain", "station": "VP-001", "ts": "9999-12-31T23:59:59Z", "rain_mm": 1}',  # far future
    '{"kind": "rain", "station": "VP-001", "ts": "0001-01-01T00:00:00+14:00", "rain_mm": 1}',  # far past
    '{"kind": "camera", "camera": "c", "site": "s", "ts": "2026-10-27T00:00:00+07:00", "waiting": 9223372036854775808,'
    ' "counters_open": 1}',  # 2^63
    '{"kind": "rain", "station": "VP-001", "ts": "2026-10-27T00:00:00+07:00", "rain_mm": 1e300}',
    '{"a": ' * 5000 + "1" + "}" * 5000,  # deep
    '{"kind": "rain", "station": "VP-001", "x": "' + "z" * (1 << 20) + '"}',  # huge
    "\x00\x01\x02 not json",
    '{"kind": "rain", "station": "VP-009", "ts": "2026-11-20T00:00:00+07:00", "rain_mm": 5}',  # weeks ahead
]


def test_poison_lines_change_nothing_and_are_reported_by_line(tmp_path):
    """Every known poison line, sprinkled through a scenario: same final values as without them."""
    lines, _ = rain_scenario(random.Random(5))
    poisoned: list[str] = []
    where: list[int] = []
    for i, line in enumerate(lines):
        if i % 1500 == 700:
            for p in POISON:
                poisoned.append(p)
                where.append(len(poisoned))
        poisoned.append(line)
    clean, _, code = run_replay(tmp_path, lines, "clean")
    dirty, stderr, dirty_code = run_replay(tmp_path, poisoned, "dirty")
    assert code == dirty_code == 0 and "Traceback" not in stderr
    assert dirty == clean
    reported = {int(line.split(":")[1]) for line in stderr.splitlines() if line.startswith(str(tmp_path / "dirty.jsonl"))}
    assert set(where) <= reported
