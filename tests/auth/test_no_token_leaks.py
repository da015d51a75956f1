"""Tokens never appear in the server log (access log included), the data dir (journal, checkpoint,
dead letters, alert store, principals) or any response body of a scripted session — except the
one answer that hands a new token out, once."""

from __future__ import annotations

import httpx
from websockets.sync.client import connect

from tests.auth.helpers import storm, wait_for
from tests.conftest import ADMIN_TOKEN, AS_ADMIN, AS_INGEST, AS_OPERATOR, INGEST_TOKEN, OPERATOR_TOKEN, VIEWER_TOKEN


def test_tokens_never_leak(ioc_server, tmp_path):
    data = tmp_path / "data"
    server = ioc_server("--log-level", "info", data_dir=data)
    url = server.url
    bodies: list[bytes] = []
    handed_out: list[str] = []

    def call(method: str, path: str, **kw) -> httpx.Response:
        r = httpx.request(method, url + path, timeout=10, **kw)
        bodies.append(r.content)
        return r

    def new_token(r: httpx.Response) -> str:
        bodies.pop()  # this answer carries its own new token, by design; checked on its own below
        token = r.json()["token"]
        assert r.content.count(token.encode()) == 1 and not any(t.encode() in r.content for t in handed_out)
        handed_out.append(token)
        return token

    op = new_token(call("POST", "/api/principals", json={"name": "pham.thu", "role": "operator"}, headers=AS_ADMIN))
    gw = new_token(call("POST", "/api/principals", json={"name": "gw-a", "role": "ingest", "feeds": ["rain"]},
                        headers=AS_ADMIN))
    call("POST", "/api/ingest", json=storm("VP-003"), headers=AS_INGEST)
    call("POST", "/api/ingest", content=b'{"kind":"rain","station":"VP-003"}\n{not json', headers=AS_INGEST)
    call("POST", f"/api/ingest?token={gw}", json=[storm("VP-004")[0], {"kind": "camera"}])  # token in the URL
    alerts = wait_for(lambda: call("GET", f"/api/alerts?token={op}").json()["alerts"])
    aid = alerts[0]["id"]
    call("POST", f"/api/alerts/{aid}/ack", json={"comment": "đã nhận"}, headers={"Authorization": f"Bearer {op}"})
    call("POST", f"/api/alerts/{aid}/comments", json={"text": "đang xử lý"}, headers=AS_OPERATOR)
    call("POST", "/api/silences", json={"matchers": {"rule": "x"}, "duration": "1h"}, headers=AS_OPERATOR)
    call("GET", f"/api/alerts/{aid}/history?token={VIEWER_TOKEN}")
    call("GET", "/api/snapshot", headers={"Authorization": f"Bearer {gw}"})  # 403: an ingest token cannot read
    call("GET", "/api/snapshot", headers={"Authorization": "Bearer wrong-" + op})
    call("GET", "/api/principals", headers=AS_ADMIN)
    call("GET", "/api/me", headers={"Authorization": f"Bearer {op}"})
    new_token(call("POST", "/api/principals/pham.thu/rotate", headers=AS_ADMIN))
    call("DELETE", "/api/principals/gw-a", headers=AS_ADMIN)
    call("GET", f"/api/snapshot?token={gw}")  # revoked
    call("GET", "/metrics")
    # the browser surfaces (ioc/pages.py, ioc/ws_auth.py): kiosk exchange, sign-in form, /ws with ?token=
    kiosk = call("GET", f"/wall/rain?lang=vi&token={VIEWER_TOKEN}")
    assert kiosk.status_code == 303
    call("GET", "/wall/rain", cookies={"ioc_session": kiosk.cookies["ioc_session"]})
    call("GET", f"/?token=wrong-{VIEWER_TOKEN}")
    signin = call("POST", "/signin", data={"token": OPERATOR_TOKEN, "next": f"/console?token={OPERATOR_TOKEN}"})
    call("GET", "/signin", params={"next": f"/wall/kpi?token={ADMIN_TOKEN}"})
    bodies.extend(str(r.headers).encode() for r in (kiosk, signin))  # Location, Set-Cookie
    with connect(f"ws://127.0.0.1:{server.port}/ws?token={VIEWER_TOKEN}", open_timeout=5) as ws:
        bodies.append(ws.recv(timeout=5).encode())
    server.stop()

    secrets = [VIEWER_TOKEN, OPERATOR_TOKEN, ADMIN_TOKEN, INGEST_TOKEN, *handed_out]
    log = server.log_path.read_bytes()
    assert b"GET /api/alerts?token=*** HTTP/1.1" in log  # the access log ran, redacted
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {"journal", "principals.sqlite3", "dead-letter.jsonl", "alerts.sqlite3"} <= {
        p.relative_to(data).parts[0] for p in files}, files
    places = {"server log": log, **{str(p.relative_to(data)): p.read_bytes() for p in files},
              **{f"response {i}": b for i, b in enumerate(bodies)}}
    found = [(where, s[:6]) for where, blob in places.items() for s in secrets if s.encode() in blob]
    assert found == []
