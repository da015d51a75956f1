"""Two `ioc api` replicas on one real Redis see the same principals and the same checks: a
principal added through one works on the other, a revocation on one holds on both within ~1 s.
(No Kafka needed: these routes read Redis only.)"""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import httpx
import pytest
import redis

from tests.auth.helpers import users, wait_for
from tests.conftest import ADMIN_TOKEN, AS_ADMIN, AS_VIEWER, IOC, ROOT, VIEWER_TOKEN, bearer, free_port


@pytest.fixture
def replicas(redis_url, tmp_path):
    prefix = "ioc-authtest-" + secrets.token_hex(4)
    env = dict(os.environ, IOC_VIEWER_TOKEN=VIEWER_TOKEN, IOC_ADMIN_TOKEN=ADMIN_TOKEN, PYTHONUNBUFFERED="1")
    env.pop("IOC_INGEST_TOKEN", None)
    procs, urls = [], []
    for i in range(2):
        port = free_port()
        log = open(tmp_path / f"api-{i}.log", "wb")
        procs.append(subprocess.Popen([*IOC, "api", "--redis", redis_url, "--redis-prefix", prefix, "--port", str(port),
                                       "--kafka", "kafka://127.0.0.1:1"], cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, proc in zip(urls, procs):
            def up(url=url):
                try:
                    return httpx.get(url + "/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False
            assert wait_for(up, 20), (tmp_path / "api-0.log").read_text()
        yield urls, prefix
    finally:
        for p in procs:
            p.terminate()
            p.wait(15)
        client = redis.Redis.from_url(redis_url)
        for k in client.scan_iter(f"{prefix}:*"):
            client.delete(k)


def test_replicas_share_principals_and_checks(replicas, redis_url, tmp_path):
    (a, b), prefix = replicas
    assert httpx.get(a + "/api/snapshot").status_code == 401
    assert httpx.get(b + "/api/snapshot", headers=AS_VIEWER).status_code == 200
    assert httpx.post(b + "/api/ingest", json={"kind": "rain"}, headers=AS_VIEWER).status_code == 403

    r = httpx.post(a + "/api/principals", json={"name": "do.minh", "role": "viewer"}, headers=AS_ADMIN)
    assert r.status_code == 201
    minh = bearer(r.json()["token"])
    assert wait_for(lambda: httpx.get(b + "/api/me", headers=minh).status_code == 200, 3)
    cli = users(tmp_path, "add", "gw-redis", "--role", "ingest", "--feeds", "dossier", "--redis", redis_url,
                "--redis-prefix", prefix)
    assert cli.returncode == 0, cli.stderr
    gw = bearer(cli.stdout.strip())
    rain = {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T10:00:00+07:00", "rain_mm": 1.0}
    assert wait_for(lambda: httpx.get(a + "/api/me", headers=gw).status_code == 200, 3)  # seen within ~1 s
    refused = httpx.post(a + "/api/ingest", json=rain, headers=gw)
    assert refused.status_code == 403 and refused.json()["results"][0]["reason"] == "forbidden_feed"

    assert httpx.delete(b + "/api/principals/do.minh", headers=AS_ADMIN).status_code == 200
    assert httpx.get(b + "/api/me", headers=minh).status_code == 401  # at once where it was revoked
    t0 = time.monotonic()
    assert wait_for(lambda: httpx.get(a + "/api/snapshot", headers=minh).status_code == 401, 3)
    assert time.monotonic() - t0 < 2.0
    names = {p["name"]: p["active"] for p in httpx.get(a + "/api/principals", headers=AS_ADMIN).json()["principals"]}
    assert names["do.minh"] is False and names["gw-redis"] is True and names["admin"] is True
