"""The distributed `ioc api`: the same sign-in, pages and `/ws` checks as
`ioc run`, with the principals and sessions in Redis so that every replica
sees them (a wall signed in on one replica reconnects to another; a
revocation made with `ioc users --redis` closes its sockets on all)."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ADMIN_TOKEN, VIEWER_TOKEN, free_port
from tests.distributed.conftest import IOC, ROOT, Proc, wait_api_healthy

pytestmark = pytest.mark.integration


def start_api(redis_url: str, prefix: str, tmp_path, env: dict) -> Proc:
    port = free_port()
    cmd = [*IOC, "api", "--kafka", "kafka://127.0.0.1:9", "--redis", redis_url, "--redis-prefix", prefix,
           "--port", str(port)]
    return wait_api_healthy(Proc("api", cmd, tmp_path / f"api-{port}.log", env, port))


def users(redis_url: str, prefix: str, env: dict, *args: str) -> str:
    done = subprocess.run([*IOC, "users", *args, "--redis", redis_url, "--redis-prefix", prefix], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_replicas_share_sessions_and_revocations(redis_url, redis_prefix, tmp_path):
    import os

    env = dict(os.environ, PYTHONUNBUFFERED="1", IOC_VIEWER_TOKEN=VIEWER_TOKEN, IOC_ADMIN_TOKEN=ADMIN_TOKEN)
    env.pop("IOC_ALLOWED_ORIGINS", None)
    out = users(redis_url, redis_prefix, env, "add", "wall-tang-3", "--role", "viewer")
    token = next(w for line in out.splitlines() for w in line.split() if len(w) >= 40)
    a = start_api(redis_url, redis_prefix, tmp_path, env)
    b = start_api(redis_url, redis_prefix, tmp_path, env)
    try:
        base_a, base_b = f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"
        # pages need a sign-in on every replica, with the same headers
        for base in (base_a, base_b):
            r = httpx.get(base + "/")
            assert r.status_code == 401 and 'data-testid="signin-form"' in r.text
            assert "script-src 'self'" in r.headers["content-security-policy"]
            assert httpx.get(base + "/static/wall.js").status_code == 200
        # the kiosk URL on replica A; the session cookie works on replica B (it is in Redis)
        r = httpx.get(base_a + f"/?token={token}")
        assert r.status_code == 303 and r.headers["location"] == "/"
        sid = r.cookies["ioc_session"]
        assert httpx.get(base_b + "/", cookies={"ioc_session": sid}).status_code == 200
        assert httpx.get(base_b + "/console", cookies={"ioc_session": sid}).status_code == 403
        # signing out on one replica ends the session on the others too (within the 1 s re-check)
        other = httpx.post(base_a + "/signin", json={"token": VIEWER_TOKEN}).cookies["ioc_session"]
        assert httpx.get(base_b + "/", cookies={"ioc_session": other}).status_code == 200
        out = httpx.post(base_b + "/signout", cookies={"ioc_session": other}, headers={"X-Requested-With": "test"})
        assert out.status_code == 204
        deadline = time.monotonic() + 3
        while httpx.get(base_a + "/", cookies={"ioc_session": other}).status_code != 401:
            assert time.monotonic() < deadline, "replica A still takes a session signed out on replica B"
            time.sleep(0.1)
        # /ws on both replicas: refused without a credential or from another origin, admitted with the cookie
        closed: dict[str, tuple[float, int, str]] = {}

        def hold(name: str, port: int, ready: threading.Event) -> None:
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5,
                         additional_headers={"Cookie": f"ioc_session={sid}"}, origin=f"http://127.0.0.1:{port}") as ws:
                assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
                ready.set()
                try:
                    while True:
                        ws.recv(timeout=15)
                except ConnectionClosed as exc:
                    closed[name] = (time.monotonic(), exc.rcvd.code, exc.rcvd.reason)

        for port in (a.port, b.port):
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
                with pytest.raises(ConnectionClosed) as exc:
                    ws.recv(timeout=5)
                assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (4401, "not signed in")
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5, origin="http://evil.example",
                         additional_headers={"Cookie": f"ioc_session={sid}"}) as ws:
                with pytest.raises(ConnectionClosed) as exc:
                    ws.recv(timeout=5)
                assert exc.value.rcvd.code == 4403
        threads = []
        for name, port in (("a", a.port), ("b", b.port)):
            ready = threading.Event()
            t = threading.Thread(target=hold, args=(name, port, ready), daemon=True)
            t.start()
            assert ready.wait(10)
            threads.append(t)
        # revoked from the command line: both replicas close the wall's sockets
        t0 = time.monotonic()
        users(redis_url, redis_prefix, env, "revoke", "wall-tang-3")
        for t in threads:
            t.join(10)
        for name in ("a", "b"):
            at, code, reason = closed[name]
            assert (code, reason) == (4401, "token revoked"), name
            assert at - t0 < 4.0, f"replica {name} closed {at - t0:.1f} s after the revocation"
        assert httpx.get(base_a + "/", cookies={"ioc_session": sid}).status_code == 401
    finally:
        a.stop()
        b.stop()
