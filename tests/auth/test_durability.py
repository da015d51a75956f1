"""An added, rotated or revoked principal survives a SIGKILL: of the writing process (a real
subprocess killed right after the write returned) and of `ioc run` after an admin API call."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from ioc.auth import Authenticator, SqlitePrincipalStore
from tests.conftest import AS_ADMIN, ROOT, bearer

WRITER = """
import sys, time
from ioc.auth import Authenticator, SqlitePrincipalStore
a = Authenticator(SqlitePrincipalStore(sys.argv[1]))
_, keep = a.add("kept", "operator")
_, gone = a.add("gone", "viewer")
a.revoke("gone")
print(keep, gone, flush=True)
time.sleep(60)
"""


def test_writes_survive_sigkill_of_the_writer(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        keep, gone = proc.stdout.readline().split()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    a = Authenticator(SqlitePrincipalStore(tmp_path))
    assert a.authenticate(keep).name == "kept"
    assert a.authenticate(gone) is None
    assert {r["name"]: r["active"] for r in a.listing()} == {"kept": True, "gone": False}


def test_admin_api_changes_survive_sigkill_of_the_server(ioc_server, tmp_path):
    server = ioc_server()
    url = server.url
    added = httpx.post(url + "/api/principals", json={"name": "le.van.binh", "role": "operator"}, headers=AS_ADMIN)
    assert added.status_code == 201 and added.json()["principal"] == {
        "name": "le.van.binh", "role": "operator", "feeds": None, "entities": None}
    binh = bearer(added.json()["token"])
    gw = httpx.post(url + "/api/principals", json={"name": "gw-1", "role": "ingest", "feeds": ["rain"],
                                                   "entities": ["VP-001"]}, headers=AS_ADMIN).json()
    old_gw = bearer(gw["token"])
    rotated = httpx.post(url + "/api/principals/gw-1/rotate", headers=AS_ADMIN).json()
    new_gw = bearer(rotated["token"])
    assert httpx.get(url + "/api/me", headers=old_gw).status_code == 401  # at once, no wait
    assert httpx.delete(url + "/api/principals/le.van.binh", headers=AS_ADMIN).json() == {"revoked": "le.van.binh"}
    assert httpx.get(url + "/api/me", headers=binh).status_code == 401
    assert httpx.delete(url + "/api/principals/viewer", headers=AS_ADMIN).status_code == 409  # from the environment
    assert httpx.delete(url + "/api/principals/nobody", headers=AS_ADMIN).status_code == 404
    assert httpx.post(url + "/api/principals", json={"name": "gw-1", "role": "ingest"},
                      headers=AS_ADMIN).status_code == 409
    bad = httpx.post(url + "/api/principals", json={"name": "x", "role": "boss"}, headers=AS_ADMIN)
    assert bad.status_code == 422 and "unknown role" in bad.json()["detail"]

    server.kill()
    server.start()
    assert httpx.get(url + "/api/me", headers=new_gw).json() == {
        "name": "gw-1", "role": "ingest", "feeds": ["rain"], "entities": ["VP-001"]}
    assert httpx.get(url + "/api/me", headers=old_gw).status_code == 401
    assert httpx.get(url + "/api/me", headers=binh).status_code == 401
    listing = httpx.get(url + "/api/principals", headers=AS_ADMIN).json()["principals"]
    by_name = {p["name"]: p for p in listing}
    assert by_name["le.van.binh"]["active"] is False and by_name["le.van.binh"]["revoked_at"].endswith("+07:00")
    assert by_name["admin"]["source"] == "environment"
    people = httpx.get(url + "/api/people", headers=AS_ADMIN).json()["people"]
    assert "le.van.binh" not in {p["name"] for p in people} and "gw-1" not in {p["name"] for p in people}
    assert "token" not in str(listing) and gw["token"] not in str(listing)
