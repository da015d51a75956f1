"""Two named operators act on one alert of a real `ioc run`: every action keeps its author, through SIGKILL.

Operators are created with `ioc users add` on the data dir before the start (issue 17); the
acknowledgement, comments and assignment go through the HTTP API, and are read back from the
alert, its history (the audit log) and the snapshot — before and after a crash restart.
"""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.conftest import AS_INGEST, AS_VIEWER, IOC, ROOT, bearer
from tests.integration.test_alert_restart import receiver, wait_for  # noqa: F401 - the fixture is used

pytestmark = pytest.mark.integration


def add_operator(data_dir, name: str) -> str:
    out = subprocess.run([*IOC, "users", "add", name, "--role", "operator", "--data-dir", str(data_dir)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


def actions_of(url: str, aid: str) -> list[tuple]:
    history = httpx.get(f"{url}/api/alerts/{aid}/history", headers=AS_VIEWER).json()["history"]
    return [(h["transition"], h.get("by"), h.get("to") or h.get("text")) for h in history if h["transition"] != "firing"]


def check(url: str, aid: str, expected_actions: list[tuple]) -> None:
    a = httpx.get(f"{url}/api/alerts/{aid}", headers=AS_VIEWER).json()
    assert a["acknowledged"]["by"] == "lan" and a["acknowledged"]["comment"] == "đã báo xã Đại Đình"
    assert [(c["by"], c["text"]) for c in a["comments"]] == [
        ("lan", "đã báo xã Đại Đình"), ("minh", "đội xung kích đã đến"), ("minh", "mực nước suối đang giảm")]
    assert all(c["at"].endswith("+07:00") for c in a["comments"])
    assert a["assignee"]["name"] == "minh" and a["assignee"]["by"] == "lan"
    assert actions_of(url, aid) == expected_actions
    snap = httpx.get(f"{url}/api/snapshot", headers=AS_VIEWER).json()
    (rec,) = [r for r in snap["alerts"] if r["id"] == aid]
    assert [c["by"] for c in rec["comments"]] == ["lan", "minh", "minh"] and rec["assignee"]["name"] == "minh"


def test_two_operators_act_on_one_alert_and_it_survives_sigkill(ioc_server, receiver, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    lan, minh = bearer(add_operator(data, "lan")), bearer(add_operator(data, "minh"))
    env = {"IOC_WEBHOOK_URL": receiver.url}
    server = ioc_server(data_dir=data, extra_env=env)
    url, port = server.url, server.port
    storm = [{"kind": "rain", "station": "VP-001", "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 7.5}
             for m in range(5, 60, 5)]  # 82.5 mm within 3 h → rain_3h_intense
    assert httpx.post(url + "/api/ingest", json=storm, headers=AS_INGEST).json()["accepted"] == 11
    alerts = wait_for(lambda: httpx.get(url + "/api/alerts", params={"rule": "rain_3h_intense"},
                                        headers=AS_VIEWER).json()["alerts"])
    aid = alerts[0]["id"]
    assert wait_for(lambda: [c for c in receiver.calls if c[1]["alert"]["id"] == aid])

    r = httpx.post(f"{url}/api/alerts/{aid}/ack", json={"comment": "đã báo xã Đại Đình"}, headers=lan)
    assert r.status_code == 200 and r.json()["result"] == "acknowledged"
    r = httpx.post(f"{url}/api/alerts/{aid}/ack", json={"comment": "đội xung kích đã đến"}, headers=minh)
    assert r.status_code == 200 and r.json()["result"] == "commented" and "by lan" in r.json()["detail"]
    r = httpx.post(f"{url}/api/alerts/{aid}/assign", json={"to": "lan"}, headers=minh)
    assert r.status_code == 200 and r.json()["assignee"] == {**r.json()["assignee"], "name": "lan", "by": "minh"}
    assert httpx.post(f"{url}/api/alerts/{aid}/unassign", headers=lan).json()["result"] == "unassigned"
    r = httpx.post(f"{url}/api/alerts/{aid}/comments", json={"text": "mực nước suối đang giảm"}, headers=minh)
    assert r.status_code == 200 and len(r.json()["comments"]) == 3
    r = httpx.post(f"{url}/api/alerts/{aid}/assign", json={"to": "minh"}, headers=lan)
    assert r.status_code == 200 and r.json()["result"] == "assigned"
    expected = [("acknowledged", "lan", None), ("commented", "minh", "đội xung kích đã đến"),
                ("assigned", "minh", "lan"), ("unassigned", "lan", None),
                ("commented", "minh", "mực nước suối đang giảm"), ("assigned", "lan", "minh")]
    check(url, aid, expected)

    server.kill()  # SIGKILL: the actions are in the journal and the store, nothing else ran
    server2 = ioc_server(data_dir=data, port=port, extra_env=env)
    check(server2.url, aid, expected)
    server2.kill()  # twice: the journal is replayed again, the audit keeps each action once
    server3 = ioc_server(data_dir=data, port=port, extra_env=env)
    check(server3.url, aid, expected)
    time.sleep(1.0)  # give a wrong re-notification time to arrive
    assert [key for key, _ in receiver.calls if key.startswith(aid)] == [f"{aid}:firing"]  # nobody told twice
    # the actions are journaled and stored under names: no token in the output, journal or stores
    tokens = [h["Authorization"][7:].encode() for h in (lan, minh)]
    files = [server3.log_path, *(f for f in data.rglob("*") if f.is_file())]
    assert len(files) > 3 and not [(f.name, t) for f in files for t in tokens if t in f.read_bytes()]
