"""`ioc run --demo` creates one principal of each role on first start, prints their tokens and the
kiosk URL once, and keeps them (without printing them again) across a restart."""

from __future__ import annotations

import re

import httpx

from tests.conftest import bearer


def test_demo_principals_created_once_and_kept(ioc_server, tmp_path):
    data = tmp_path / "data"
    server = ioc_server("--demo", data_dir=data)
    log = server.log()
    tokens = dict(re.findall(r"^  (demo-\w+) +(\S+)$", log, re.M))
    assert sorted(tokens) == ["demo-admin", "demo-ingest", "demo-operator", "demo-viewer"]
    assert f"{server.url}/?token={tokens['demo-viewer']}" in log
    me = {name: httpx.get(server.url + "/api/me", headers=bearer(t)).json()["role"] for name, t in tokens.items()}
    assert me == {"demo-admin": "admin", "demo-ingest": "ingest", "demo-operator": "operator", "demo-viewer": "viewer"}
    assert httpx.get(server.url + "/api/snapshot", headers=bearer(tokens["demo-viewer"])).status_code == 200
    assert httpx.get(server.url + "/api/snapshot", headers=bearer(tokens["demo-ingest"])).status_code == 403
    server.stop()
    server.log_path.write_text("")
    server.start()
    again = server.log()
    assert "kept from an earlier run" in again and not any(t in again for t in tokens.values())
    assert httpx.get(server.url + "/api/me", headers=bearer(tokens["demo-operator"])).json()["name"] == "demo-operator"
