"""Restore never fails, one process per data dir, future-dated input in the demo.

Real `ioc run` processes (uvicorn) on free ports, killed with SIGKILL.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime, timedelta

import httpx
import msgspec
import pytest

from tests.conftest import AS_INGEST, AS_VIEWER, IOC, OPERATOR_TOKEN, ROOT, VIEWER_TOKEN

pytestmark = pytest.mark.integration

VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pat = rf"^{name}" + (rf"\{{{re.escape(sel)}\}}" if sel else "") + r" (\S+)$"
    m = re.search(pat, text, re.M)
    return float(m.group(1)) if m else 0.0


def serves(url: str) -> None:
    """The restarted server answers every read surface without a 5xx."""
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    assert httpx.get(url + "/api/snapshot", headers=AS_VIEWER, timeout=5).status_code == 200
    assert httpx.get(url + "/api/alerts", headers=VIEWER, timeout=5).status_code == 200
    assert httpx.get(url + "/api/silences", headers=VIEWER, timeout=5).status_code == 200
    assert httpx.get(url + "/metrics", timeout=5).status_code == 200


def now_local(offset_s: float = 0.0) -> str:
    return (datetime.now().astimezone() + timedelta(seconds=offset_s)).isoformat(timespec="seconds")


# ---------------------------------------------------------------------- one process per data dir
def test_second_process_on_the_same_data_dir_refuses_with_one_line(ioc_server, tmp_path):
    data = tmp_path / "data"
    first = ioc_server(data_dir=data)
    # the holder's own port: the data dir lock is checked first, so the error is about the lock
    proc = subprocess.run([*IOC, "run", "--port", str(first.port), "--data-dir", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=first.env)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(data.resolve()) in lines[0] and f"pid {first.proc.pid}" in lines[0]
    assert httpx.get(first.url + "/healthz").status_code == 200  # the holder is unaffected

    first.kill()  # SIGKILL: the kernel releases the lock, a new process starts at once
    second = ioc_server(data_dir=data)
    assert httpx.get(second.url + "/healthz").json()["status"] == "ok"


# ---------------------------------------------------------------------- future-dated in the demo
def test_demo_refuses_an_event_a_day_ahead_of_its_clock_and_no_watermark_moves(ioc_server):
    server = ioc_server("--demo")
    url = server.url
    time.sleep(1.0)  # let the simulators catch up to the present
    before = httpx.get(url + "/healthz").json()["watermarks"]
    ahead = (datetime.fromisoformat(before["camera"]) + timedelta(hours=23)).isoformat()
    body = [
        {"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": ahead, "waiting": 4, "counters_open": 2},
        {"kind": "rain", "station": "VP-001", "ts": ahead, "rain_mm": 1.0},
    ]
    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, json=body)
    assert r.status_code == 400, r.text
    assert [x["reason"] for x in r.json()["rejections"]] == ["future_timestamp", "future_timestamp"]
    after = httpx.get(url + "/healthz").json()["watermarks"]
    for feed in ("camera", "rain"):
        assert datetime.fromisoformat(after[feed]) < datetime.fromisoformat(ahead) - timedelta(hours=20), after
    # the simulated cameras are still accepted (nothing was pushed out as too late)
    assert metric(url, "ioc_events_rejected_total", feed="camera", reason="too_late") == 0
    assert metric(url, "ioc_events_rejected_total", feed="camera", reason="future_timestamp") == 1


# ---------------------------------------------------------------------- poison input, then a crash
POISON = {
    "ts 9999-12-31": {"kind": "rain", "station": "VP-001", "ts": "9999-12-31T23:59:59Z", "rain_mm": 1},
    "year-0 offset": {"kind": "rain", "station": "VP-001", "ts": "0001-01-01T00:00:00+14:00", "rain_mm": 1},
    "odd offset": {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+23:59", "rain_mm": 1},
    "waiting 1e23": {"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T13:10:00+07:00",
                     "waiting": 1e23, "counters_open": 1},
    "int 2^63": {"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T13:10:00+07:00",
                 "waiting": 2**63, "counters_open": 1},
    "int 10^24": {"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T13:10:00+07:00",
                  "waiting": 10**24, "counters_open": 2**64},
    "rain 1e300": {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 1e300},
}
DEEP = b'{"kind":"rain","station":"VP-001","ts":"2026-10-28T13:10:00+07:00","rain_mm":1,"x":' + b"[" * 3000 + b"]" * 3000 + b"}"


def test_server_restarts_and_serves_after_every_kind_of_poison_input(ioc_server, tmp_path):
    data = tmp_path / "data"
    server = ioc_server(data_dir=data)
    url, port = server.url, server.port
    good = {"kind": "rain", "station": "VP-002", "ts": "2026-10-28T13:05:00+07:00", "rain_mm": 2.0}
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=good).json()["accepted"] == 1
    for name, poison in POISON.items():
        body = msgspec.json.encode([poison, dict(good, ts="2026-10-28T13:10:00+07:00")])
        r = httpx.post(url + "/api/ingest", headers=AS_INGEST, content=body)
        assert r.status_code < 500, (name, r.status_code, r.text)
        r = httpx.post(url + "/api/ingest", headers=AS_INGEST, content=msgspec.json.encode(poison))
        assert r.status_code < 500, (name, r.status_code, r.text)
    r = httpx.post(url + "/api/ingest", headers=AS_INGEST, content=DEEP + b"\n" + msgspec.json.encode(good))
    assert r.status_code < 500, r.text
    for ends_at in (1e300, float("1e308"), -1e300, "9999-12-31T23:59:59+07:00"):
        r = httpx.post(url + "/api/silences", headers=OPERATOR,
                       content=json.dumps({"matchers": {"rule": "rain_*"}, "ends_at": ends_at}).encode())
        assert r.status_code < 500 and r.status_code != 201, (ends_at, r.status_code, r.text)
    serves(url)

    server.kill()
    t0 = time.monotonic()
    server2 = ioc_server(data_dir=data, port=port)
    restart_s = time.monotonic() - t0
    serves(server2.url)
    assert httpx.get(server2.url + "/healthz").json()["watermarks"]["rain"] == "2026-10-28T13:10:00+07:00"
    assert restart_s < 20
    server2.stop()  # a graceful stop checkpoints the state: it must encode and load again
    assert server2.proc.returncode == 0, server2.log()
    server3 = ioc_server(data_dir=data, port=port)
    serves(server3.url)
    assert "restored 0 journaled events" in server3.log()


# ---------------------------------------------------------------------- damaged files on disk
def _write_poisoned_journal(data) -> None:
    """A journal as an older version (or a disk) may have left it: poison that got in, a damaged line."""
    journal = data / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    ok = b'{"kind":"rain","station":"VP-003","ts":"2026-10-28T13:%02d:00+07:00","rain_mm":1.5}'
    lines = [
        b'#{"batch":2,"now":null}', ok % 5, ok % 10,
        b'#{"batch":1,"now":null}', b'{"kind":"rain","station":"VP-001","ts":"9999-12-31T23:59:59Z","rain_mm":1}',
        b'#{"batch":1,"now":null}', b'{"kind":"camera","camera":"cam-vy-1","site":"vinh-yen",'
                                    b'"ts":"2026-10-28T13:10:00+07:00","waiting":100000000000000000000000,"counters_open":1}',
        b'#{"batch":2,"now":null}', ok % 15, b'{"kind":"rain","station":"VP-0\x00\xff garbage',
        b'#{"op":{"op":"silence_add","matchers":{"rule":"rain_*"},"ends_at":1e300,"by":"x"}}',
        b'#{"op":{"op":"ack","id":"nope","by":"x","at":1e300}}',
        b'#{"op":"not an object"}',
        b'#{"batch":1,"now":null}', ok % 20,
        b'#{"batch":3,"now":1.0}', ok % 25,  # torn at the crash: cut off, never applied
    ]
    (journal / "journal-00000000.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def test_poisoned_and_damaged_journal_is_quarantined_and_the_server_starts(ioc_server, tmp_path):
    data = tmp_path / "data"
    _write_poisoned_journal(data)
    server = ioc_server(data_dir=data)
    url = server.url
    serves(url)
    health = httpx.get(url + "/healthz").json()
    assert health["status"] == "degraded" and health["quarantined"] >= 4, health
    assert health["watermarks"]["rain"] == "2026-10-28T13:20:00+07:00"  # good entries kept, poison not
    snap = httpx.get(url + "/api/snapshot", headers=AS_VIEWER).json()
    vp3 = {r["window"]: r["value"] for r in snap["indicators"] if r["name"] == "rain_mm" and r["entity"] == "VP-003"}
    assert vp3["1h"] == 6.0  # 13:05, 13:10, 13:15, 13:20 (the torn 13:25 never counted)
    # the poison is refused when decoded (a journal_line) or when re-processed (a journal_entry),
    # depending on how strict the event decoder is; either way it is quarantined, not applied
    lines = metric(url, "ioc_restore_quarantined_total", what="journal_line")
    entries = metric(url, "ioc_restore_quarantined_total", what="journal_entry")
    assert lines + entries >= 3 and lines >= 1
    assert metric(url, "ioc_restore_quarantined_total", what="journal_op") >= 2  # at=1e300, not an object
    quarantined = [json.loads(x) for x in (data / "quarantine.jsonl").read_text().splitlines()]
    assert {q["what"] for q in quarantined} >= {"journal_line", "journal_op"}
    assert all(q["reason"] for q in quarantined)
    assert any("9999-12-31" in q["raw"] for q in quarantined)
    # it keeps working: new input, a checkpoint (health recovers from the quarantine only by a restart)
    more = {"kind": "rain", "station": "VP-003", "ts": "2026-10-28T13:30:00+07:00", "rain_mm": 1.0}
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=more).json()["accepted"] == 1
    server.stop()
    assert server.proc.returncode == 0, server.log()
    again = ioc_server(data_dir=data, port=server.port)
    assert httpx.get(again.url + "/healthz").json()["status"] == "ok"
    assert httpx.get(again.url + "/healthz").json()["watermarks"]["rain"] == "2026-10-28T13:30:00+07:00"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_checkpoint_is_quarantined_and_the_previous_one_plus_journal_used(ioc_server, tmp_path, damage):
    data = tmp_path / "data"
    env = {"IOC_CHECKPOINT_INTERVAL_S": "0.3"}
    server = ioc_server(data_dir=data, extra_env=env)
    url = server.url
    for m in range(5, 60, 5):
        ev = {"kind": "rain", "station": "VP-004", "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 1.0}
        assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=ev).json()["accepted"] == 1
        time.sleep(0.12)  # several checkpoints land in between
    deadline = time.monotonic() + 5
    while metric(url, "ioc_checkpoints_total") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    server.kill()
    cp = data / "checkpoint.msgpack"
    assert cp.exists() and (data / "checkpoint.msgpack.prev").exists()
    raw = cp.read_bytes()
    cp.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": b"\x00\xffnot msgpack" * 10, "empty": b""}[damage])

    t0 = time.monotonic()
    server2 = ioc_server(data_dir=data, port=server.port, extra_env=env)
    restart_s = time.monotonic() - t0
    url2 = server2.url
    serves(url2)
    snap = httpx.get(url2 + "/api/snapshot", headers=AS_VIEWER).json()
    vp4 = {r["window"]: r["value"] for r in snap["indicators"] if r["name"] == "rain_mm" and r["entity"] == "VP-004"}
    assert vp4["1h"] == 11.0, vp4  # nothing lost, nothing counted twice
    health = httpx.get(url2 + "/healthz").json()
    assert health["status"] == "degraded" and health["quarantined"] == 1, health
    assert metric(url2, "ioc_restore_quarantined_total", what="checkpoint") == 1
    assert list((data / "quarantine").iterdir()), "the bad checkpoint is kept aside for inspection"
    assert restart_s < 20


def test_checkpoint_that_cannot_be_written_is_visible_and_retried(ioc_server, tmp_path):
    data = tmp_path / "data"
    server = ioc_server(data_dir=data, extra_env={"IOC_CHECKPOINT_INTERVAL_S": "0.2"})
    url = server.url
    ev = {"kind": "rain", "station": "VP-005", "ts": "2026-10-28T13:05:00+07:00", "rain_mm": 1.0}
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=ev).json()["accepted"] == 1
    tmp = data / "checkpoint.tmp"
    tmp.unlink(missing_ok=True)
    tmp.mkdir()  # the checkpoint's temporary file cannot be created
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and metric(url, "ioc_checkpoint_failures_total") < 2:
        time.sleep(0.1)
    assert metric(url, "ioc_checkpoint_failures_total") >= 2  # retried, the loop is alive
    health = httpx.get(url + "/healthz").json()
    assert health["status"] == "degraded" and any("checkpoint" in r for r in health["degraded"]), health
    tmp.rmdir()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and httpx.get(url + "/healthz").json()["status"] != "ok":
        time.sleep(0.1)
    assert httpx.get(url + "/healthz").json()["status"] == "ok"  # recovered by itself
