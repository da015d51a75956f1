"""Every route of the OpenAPI document (plus /openapi.json, /docs, /redoc, the pages, static assets and
/ws) × every kind of caller, on a real `ioc run` (uvicorn): each answer is the expected 2xx / 401 / 403
(for /ws: a snapshot, or a close with 4401 / 4403) (tests/auth/matrix.py)."""

from __future__ import annotations

import itertools
import json

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.auth.helpers import add_user, storm, users, wait_for
from tests.auth.matrix import CALLERS, EXTRA_ROUTES, ROUTES, WS_CLOSE, WS_ROUTES, expected
from tests.conftest import AS_ADMIN, AS_INGEST, AS_OPERATOR, AS_VIEWER, VIEWER_TOKEN, bearer


def ws_answer(url: str, headers: dict) -> str | int:
    """"snapshot" when admitted, else the close code."""
    with connect(url, open_timeout=5, additional_headers=headers) as ws:
        try:
            return json.loads(ws.recv(timeout=5))["type"]
        except ConnectionClosed as exc:
            return exc.rcvd.code


class Ctx:
    """What allowed calls need: an alert, fresh principals and silences to delete."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._n = itertools.count()
        assert httpx.post(url + "/api/ingest", json=storm("VP-001"), headers=AS_INGEST).json()["accepted"] == 11
        alerts = wait_for(lambda: httpx.get(url + "/api/alerts", params={"rule": "rain_3h_intense"},
                                            headers=AS_VIEWER).json()["alerts"])
        self.alert_id = alerts[0]["id"]

    viewer_token = VIEWER_TOKEN

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._n)}"

    def fresh_principal(self) -> str:
        name = self.unique("p")
        r = httpx.post(self.url + "/api/principals", json={"name": name, "role": "viewer"}, headers=AS_ADMIN)
        assert r.status_code == 201, r.text
        return name

    def fresh_test_alert(self) -> str:
        """An active test alert (alerts/test_alert.py): the current one, or a new one."""
        r = httpx.post(self.url + "/api/alerts/test", json={}, headers=AS_OPERATOR)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def fresh_silence(self) -> str:
        r = httpx.post(self.url + "/api/silences", json={"matchers": {"rule": "x"}, "duration": "1h"},
                       headers=AS_OPERATOR)
        assert r.status_code == 201, r.text
        return r.json()["id"]


def test_authorization_matrix(ioc_server, tmp_path):
    data = tmp_path / "data"
    revoked = add_user(data, "former.operator", "operator")
    assert users(data, "revoke", "former.operator").returncode == 0
    other_feed = add_user(data, "gw-dossiers", "ingest", "--feeds", "dossier")
    server = ioc_server(data_dir=data)
    headers = {
        "none": {}, "malformed": {"Authorization": "Basic Zm9vOmJhcg=="}, "revoked": bearer(revoked),
        "viewer": AS_VIEWER, "operator": AS_OPERATOR, "admin": AS_ADMIN, "ingest_other_feed": bearer(other_feed),
        "ingest": AS_INGEST,
    }
    doc = httpx.get(server.url + "/openapi.json", headers=AS_VIEWER).json()
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    assert documented - set(ROUTES) == set(), "routes without a row in tests/auth/matrix.py ROUTES"
    assert set(ROUTES) - documented == set(), "rows in ROUTES for routes the app no longer has"

    ctx = Ctx(server.url)
    wrong = []
    cells = 0
    for (method, path), route in {**ROUTES, **EXTRA_ROUTES}.items():
        for caller in CALLERS:
            call = route.call(ctx)
            url = server.url + path.format(**call.params)
            r = httpx.request(method, url, headers={**headers[caller], **call.headers}, json=call.json, timeout=10)
            cells += 1
            want = expected(route.need, caller)
            got = "2xx" if 200 <= r.status_code < 300 else str(r.status_code)
            if got != want:
                wrong.append(f"{method} {path} as {caller}: {r.status_code} (want {want}) {r.text[:120]}")
            elif want == "401":
                assert r.headers.get("www-authenticate") == "Bearer", (method, path, caller)
            elif want in ("401", "403") and r.headers["content-type"].startswith("text/html"):
                # a page: a person gets the sign-in form saying why, in both languages (ioc/pages.py)
                assert 'data-testid="signin-form"' in r.text and 'lang="en"' in r.text, (method, path, caller)
            elif want == "403":
                body = r.json()
                reason = body.get("reason") or body["results"][0]["reason"]  # ingest: per event
                assert reason in ("forbidden", "forbidden_feed"), (method, path, caller, r.text)
    for path, need in WS_ROUTES.items():
        for caller in CALLERS:
            cells += 1
            want = expected(need, caller)
            got = ws_answer(server.ws_url.removesuffix("/ws") + path, headers[caller])
            if got != ("snapshot" if want == "2xx" else WS_CLOSE[want]):
                wrong.append(f"WebSocket {path} as {caller}: {got} (want {want})")
    assert not wrong, "\n".join(wrong)
    assert cells == len(CALLERS) * (len(ROUTES) + len(EXTRA_ROUTES) + len(WS_ROUTES))

    # what was refused is counted, by reason
    metrics = httpx.get(server.url + "/metrics").text
    for reason in ("missing", "malformed", "revoked", "forbidden"):
        assert f'ioc_auth_failures_total{{reason="{reason}"}}' in metrics, reason
