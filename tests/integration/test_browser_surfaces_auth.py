"""Access control of the browser surfaces on a real `ioc run` (uvicorn): what
the pages and `/ws` say when they refuse, the kiosk token exchange, the
WebSocket Origin allowlist and revocation, the CSRF guard on
cookie-authenticated actions, sign-out, and the security headers
(ioc/pages.py, ioc/ws_auth.py, ioc/csrf.py, ioc/security_headers.py).
Who gets what on every route is the matrix in tests/auth/test_matrix.py."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ADMIN_TOKEN, AS_ADMIN, AS_OPERATOR, AS_VIEWER, INGEST_TOKEN, OPERATOR_TOKEN, VIEWER_TOKEN, bearer

pytestmark = pytest.mark.integration

SNAPSHOT = "snapshot"


def ws_outcome(server, headers: dict | None = None, origin: str | None = None, query: str = ""):
    """"snapshot" when the socket was admitted, else the (code, reason) it was closed with."""
    with connect(server.ws_url + query, open_timeout=5, additional_headers=headers or {}, origin=origin) as ws:
        try:
            return json.loads(ws.recv(timeout=5))["type"]
        except ConnectionClosed as exc:
            return exc.rcvd.code, exc.rcvd.reason


def add_principal(url: str, name: str, role: str, **scope) -> str:
    r = httpx.post(url + "/api/principals", headers=AS_ADMIN, json={"name": name, "role": role, **scope})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def session_of(url: str, token: str) -> str:
    r = httpx.post(url + "/signin", json={"token": token})
    assert r.status_code == 200, r.text
    return r.cookies["ioc_session"]


def test_refusals_say_why(ioc_server):
    """Who gets what is the authorization matrix (tests/auth/test_matrix.py); here: what each refusal says."""
    server = ioc_server()
    url = server.url
    revoked = add_principal(url, "old-wall", "viewer")
    assert httpx.delete(url + "/api/principals/old-wall", headers=AS_ADMIN).status_code == 200
    assert ws_outcome(server) == (4401, "not signed in")
    assert ws_outcome(server, bearer("not-a-token")) == (4401, "token not valid")
    assert ws_outcome(server, {"Authorization": "Basic dmlld2VyOnNlY3JldA=="}) == (4401, "token not valid")
    assert ws_outcome(server, bearer(revoked)) == (4401, "token not valid")
    assert ws_outcome(server, bearer(INGEST_TOKEN)) == (4403, "viewer role needed")
    assert ws_outcome(server, {"Cookie": "ioc_session=made-up"}) == (4401, "token revoked")
    assert ws_outcome(server, query=f"?token={VIEWER_TOKEN}&topics=alerts") == SNAPSHOT  # scripts may use ?token=
    # a person gets the sign-in form, in both languages, with the reason and where they were going
    first = httpx.get(url + "/wall/rain?lang=en")
    assert first.status_code == 401 and first.headers["www-authenticate"] == "Bearer"
    assert 'data-reason="signin"' in first.text and 'value="/wall/rain?lang=en"' in first.text
    assert "Dán mã truy cập" in first.text and "Paste your access token" in first.text
    assert 'data-reason="bad_token"' in httpx.get(url + "/", headers=bearer(revoked)).text
    ended = httpx.get(url + "/", cookies={"ioc_session": "made-up"})
    assert 'data-reason="session"' in ended.text and "max-age=0" in ended.headers["set-cookie"].lower()
    console = httpx.get(url + "/console", headers=AS_VIEWER)
    assert console.status_code == 403 and 'data-reason="operator"' in console.text
    assert "operator" in console.text and "viewer" in console.text  # which role is needed, and which one you have
    feed = httpx.get(url + "/", headers=bearer(INGEST_TOKEN))
    assert feed.status_code == 403 and 'data-reason="no_pages"' in feed.text


def test_kiosk_token_is_exchanged_for_a_session_cookie(ioc_server):
    server = ioc_server()
    url = server.url
    r = httpx.get(url + f"/wall/rain?lang=en&token={VIEWER_TOKEN}&unit=vinh-yen")
    assert r.status_code == 303
    assert r.headers["location"] == "/wall/rain?lang=en&unit=vinh-yen"  # the token gone, the rest kept
    cookie = r.headers["set-cookie"]
    assert re.search(r"(?i)\bhttponly\b", cookie) and re.search(r"(?i)samesite=strict", cookie)
    assert "Path=/" in cookie and "secure" not in cookie.lower()  # plain http here
    assert VIEWER_TOKEN not in cookie and r.headers["cache-control"] == "no-store"
    sid = r.cookies["ioc_session"]
    jar = {"ioc_session": sid}
    page = httpx.get(url + "/wall/rain?lang=en", cookies=jar)
    assert page.status_code == 200 and 'src="/static/wall.js"' in page.text
    assert httpx.get(url + "/api/snapshot", cookies=jar).status_code == 200  # the wall's data, by cookie
    assert httpx.get(url + "/api/catalog", cookies=jar).status_code == 200
    assert ws_outcome(server, {"Cookie": f"ioc_session={sid}"}) == SNAPSHOT
    # behind a TLS proxy (X-Forwarded-Proto from 127.0.0.1, trusted by uvicorn) the cookie is Secure
    tls = httpx.get(url + f"/?token={VIEWER_TOKEN}", headers={"X-Forwarded-Proto": "https"})
    assert tls.status_code == 303 and "secure" in tls.headers["set-cookie"].lower()

    # a bad kiosk token: the sign-in page, no cookie, and the failure counted
    def failures() -> float:
        text = httpx.get(url + "/metrics").text
        return sum(float(v) for v in re.findall(r'^ioc_auth_failures_total\{reason="unknown"\} (\S+)$', text, re.M))

    before = failures()
    bad = httpx.get(url + "/?token=wrong-token")
    assert bad.status_code == 401 and "set-cookie" not in bad.headers and 'data-reason="bad_token"' in bad.text
    form = httpx.post(url + "/signin", data={"token": "wrong-again", "next": "/console"})
    assert form.status_code == 401 and 'value="/console"' in form.text
    assert failures() == before + 2

    # the sign-in form: 303 to where the person was going, never to another host
    ok = httpx.post(url + "/signin", data={"token": OPERATOR_TOKEN, "next": "/console"})
    assert ok.status_code == 303 and ok.headers["location"] == "/console"
    assert httpx.get(url + "/console", cookies={"ioc_session": ok.cookies["ioc_session"]}).status_code == 200
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = httpx.post(url + "/signin", data={"token": VIEWER_TOKEN, "next": evil})
        assert r.status_code == 303 and r.headers["location"] == "/", evil
    assert httpx.post(url + "/signin", json={"token": INGEST_TOKEN}).status_code == 403  # feeds cannot sign in
    echoed = httpx.get(url + "/signin", params={"next": f"/wall/kpi?token={VIEWER_TOKEN}&lang=vi"})
    assert VIEWER_TOKEN not in echoed.text and 'value="/wall/kpi?lang=vi"' in echoed.text  # a token is never echoed
    assert httpx.post(url + "/signin", content=b"[1,", headers={"Content-Type": "application/json"}).status_code == 400


def test_ws_origin_allowlist(ioc_server):
    server = ioc_server()
    host = f"127.0.0.1:{server.port}"
    assert ws_outcome(server, AS_VIEWER, origin=f"http://{host}") == SNAPSHOT  # the page's own origin
    assert ws_outcome(server, AS_VIEWER, origin="http://evil.example") == (4403, "origin not allowed")
    assert ws_outcome(server, AS_VIEWER, origin=f"http://{host}.evil.example") == (4403, "origin not allowed")
    assert ws_outcome(server, AS_VIEWER, origin="null") == (4403, "origin not allowed")
    assert ws_outcome(server, AS_VIEWER) == SNAPSHOT  # no Origin: not a browser, judged by the token
    sid = session_of(server.url, VIEWER_TOKEN)
    assert ws_outcome(server, {"Cookie": f"ioc_session={sid}"}, origin="http://evil.example") == (4403, "origin not allowed")
    # a reverse proxy's public name is added with IOC_ALLOWED_ORIGINS
    proxied = ioc_server(data_dir=server.data_dir.parent / "proxied",
                         extra_env={"IOC_ALLOWED_ORIGINS": "https://ioc.vinhphuc.gov.vn, http://10.0.0.5:8080"})
    assert ws_outcome(proxied, AS_VIEWER, origin="https://ioc.vinhphuc.gov.vn") == SNAPSHOT
    assert ws_outcome(proxied, AS_VIEWER, origin="http://10.0.0.5:8080") == SNAPSHOT
    assert ws_outcome(proxied, AS_VIEWER, origin="http://ioc.vinhphuc.gov.vn") == (4403, "origin not allowed")


def test_ws_closes_with_4401_when_its_principal_is_revoked_or_rotated(ioc_server):
    server = ioc_server()
    url = server.url
    wall_token = add_principal(url, "wall-phong-hop", "viewer")
    desk_token = add_principal(url, "nguyen.van.an", "operator")
    wall_sid = session_of(url, wall_token)
    closed: dict[str, tuple[float, int, str] | None] = {}

    def hold(name: str, headers: dict, ready: threading.Event) -> None:
        with connect(server.ws_url, open_timeout=5, additional_headers=headers) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == SNAPSHOT
            ready.set()
            try:
                while True:
                    ws.recv(timeout=12)
            except ConnectionClosed as exc:
                closed[name] = (time.monotonic(), exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "")
            except TimeoutError:
                closed[name] = None

    sockets = {"wall_token": bearer(wall_token), "wall_cookie": {"Cookie": f"ioc_session={wall_sid}"},
               "desk": bearer(desk_token)}
    threads = []
    for name, headers in sockets.items():
        ready = threading.Event()
        t = threading.Thread(target=hold, args=(name, headers, ready), daemon=True)
        t.start()
        assert ready.wait(10), name
        threads.append(t)
    t0 = time.monotonic()
    assert httpx.delete(url + "/api/principals/wall-phong-hop", headers=AS_ADMIN).status_code == 200
    threads[0].join(8)
    threads[1].join(8)
    for name in ("wall_token", "wall_cookie"):
        at, code, reason = closed[name]
        assert (code, reason) == (4401, "token revoked"), name
        assert at - t0 < 3.0, f"{name} closed {at - t0:.1f} s after the revocation"
    assert "desk" not in closed  # someone else's socket stays open
    # rotating a token ends the sockets (and sessions) opened with the old one
    t0 = time.monotonic()
    r = httpx.post(url + "/api/principals/nguyen.van.an/rotate", headers=AS_ADMIN)
    assert r.status_code == 200
    threads[2].join(8)
    at, code, reason = closed["desk"]
    assert (code, reason) == (4401, "token revoked") and at - t0 < 3.0
    assert ws_outcome(server, bearer(r.json()["token"])) == SNAPSHOT
    assert ws_outcome(server, {"Cookie": f"ioc_session={wall_sid}"}) == (4401, "token revoked")


def test_cookie_authenticated_actions_need_a_page_of_ours(ioc_server):
    server = ioc_server()
    url = server.url
    jar = {"ioc_session": session_of(url, OPERATOR_TOKEN)}
    ends = datetime.now(timezone.utc) + timedelta(days=1)
    silence = {"matchers": {"rule": "sensor_stale"}, "ends_at": ends.isoformat(timespec="seconds"), "comment": "bảo trì"}

    def silences() -> list:
        data = httpx.get(url + "/api/silences", headers=AS_OPERATOR).json()
        return data if isinstance(data, list) else data["silences"]

    def post(headers: dict) -> httpx.Response:
        return httpx.post(url + "/api/silences", json=silence, cookies=jar, headers=headers)

    for forged in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                   {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}):
        r = post(forged)
        assert r.status_code == 403 and r.json()["reason"] == "cross_site_request", (forged, r.text)
    assert not silences()  # nothing was done
    for ours in ({"X-Requested-With": "ioc-console"}, {"Sec-Fetch-Site": "same-origin"},
                 {"Origin": f"http://127.0.0.1:{server.port}"}):
        r = post(ours)
        assert r.status_code in (200, 201), (ours, r.text)
    # a bearer token is never sent by a browser on its own: not affected
    assert httpx.post(url + "/api/silences", json=silence, headers=AS_OPERATOR).status_code in (200, 201)
    assert len(silences()) == 4
    # signing in from another site's page is refused (no one can sign a screen in as someone else)
    r = httpx.post(url + "/signin", data={"token": VIEWER_TOKEN}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # sign-out ends the session on the server, not only in this browser
    out = httpx.post(url + "/signout", cookies=jar, headers={"X-Requested-With": "ioc-console"})
    assert out.status_code == 204 and "max-age=0" in out.headers["set-cookie"].lower()
    assert httpx.get(url + "/console", cookies=jar).status_code == 401
    assert httpx.get(url + "/api/alerts", cookies=jar).status_code == 401
    assert ws_outcome(server, {"Cookie": f"ioc_session={jar['ioc_session']}"}) == (4401, "token revoked")
    form_out = httpx.post(url + "/signout", cookies={"ioc_session": session_of(url, VIEWER_TOKEN)},
                          headers={"Sec-Fetch-Site": "same-origin"})
    assert form_out.status_code == 303 and form_out.headers["location"] == "/signin?signed_out=1"


def test_security_headers_on_every_response(ioc_server):
    server = ioc_server()
    url = server.url
    html_pages = [("/", AS_VIEWER), ("/wall/kpi", AS_VIEWER), ("/console", AS_OPERATOR), ("/signin", {}), ("/", {}),
                  ("/console", AS_VIEWER)]
    for path, headers in html_pages:
        r = httpx.get(url + path, headers=headers)
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer", path
        # no inline script, no inline event handler, no style attribute in what we serve
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
        assert not re.search(r"\son[a-z]+\s*=", r.text) and not re.search(r"\sstyle\s*=", r.text), path
    for path, headers in [("/healthz", {}), ("/api/snapshot", AS_VIEWER), ("/static/wall.js", {}), ("/metrics", {}),
                          ("/api/snapshot", {}), ("/api/ingest", {})]:
        r = httpx.get(url + path, headers=headers)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
    assert ADMIN_TOKEN not in httpx.get(url + "/signin").text


def test_bad_sign_in_input_gets_a_4xx_with_a_reason(ioc_server):
    server = ioc_server()
    url = server.url
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    js = {"Content-Type": "application/json"}
    cases = [
        (b"\xff\xfe token", form, 400), (b"[1, 2]", js, 400), (b"{\"token\": 12}", js, 401), (b"{\"token\": null}", js, 401),
        (b"[" * 5000, js, 400), (b"token=", form, 401), (b"x" * (17 * 1024), form, 413), (b"", form, 401),
        (b"token=" + VIEWER_TOKEN.encode() + b"&next=%0d%0aSet-Cookie:x", form, 303),
    ]
    for body, headers, expected in cases:
        r = httpx.post(url + "/signin", content=body, headers=headers)
        assert r.status_code == expected, (body[:40], r.status_code, r.text[:200])
        if expected == 303:
            assert r.headers["location"] == "/"
        elif "json" in r.headers["content-type"]:
            assert r.json()["reason"], body[:40]
    # odd cookies, origins and tokens on the pages and /ws: refused, never a 5xx
    for cookie in ("ioc_session=" + "x" * 5000, 'ioc_session="\\"', "ioc_session=;;;=", "=broken"):
        assert httpx.get(url + "/", headers={"Cookie": cookie}).status_code == 401, cookie
        assert ws_outcome(server, {"Cookie": cookie})[0] == 4401, cookie
    for origin in ("http://[::1", "javascript:alert(1)", "http://127.0.0.1:99999", "ws://127.0.0.1"):
        assert ws_outcome(server, AS_VIEWER, origin=origin) == (4403, "origin not allowed"), origin
    assert httpx.get(url + "/?token=" + "%00" * 10).status_code == 401
    twice = httpx.get(url + "/?token=x&token=" + VIEWER_TOKEN)
    assert twice.status_code == 303 and twice.headers["location"] == "/"  # every copy of the token leaves the URL
