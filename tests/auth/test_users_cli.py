"""`ioc users add|list|revoke|rotate` as a real subprocess, against a data dir and against Redis."""

from __future__ import annotations

import secrets
import time

import httpx
import redis

from ioc.auth import Authenticator, SqlitePrincipalStore
from tests.auth.helpers import add_user, users, wait_for
from tests.conftest import bearer


def test_add_list_rotate_revoke(tmp_path):
    data = tmp_path / "data"
    token = add_user(data, "nguyen.van.an", "admin")
    gw = add_user(data, "gw-tam-dao", "ingest", "--feeds", "rain", "--entities", "VP-001,VP-002")
    auth = Authenticator(SqlitePrincipalStore(data))
    assert auth.authenticate(token).role == "admin"
    assert auth.authenticate(gw).entities == frozenset({"VP-001", "VP-002"})

    listing = users(data, "list")
    assert listing.returncode == 0
    assert "nguyen.van.an" in listing.stdout and "feeds=rain entities=VP-001,VP-002" in listing.stdout
    assert token not in listing.stdout + listing.stderr and gw not in listing.stdout
    from ioc.auth.tokens import hash_token

    assert hash_token(token) not in listing.stdout

    rotated = users(data, "rotate", "nguyen.van.an")
    assert rotated.returncode == 0
    new = rotated.stdout.strip()
    assert new != token and "shown only now" in rotated.stderr
    auth = Authenticator(SqlitePrincipalStore(data))
    assert auth.authenticate(token) is None and auth.authenticate(new).name == "nguyen.van.an"

    revoked = users(data, "revoke", "gw-tam-dao")
    assert revoked.returncode == 0 and "revoked gw-tam-dao" in revoked.stdout
    assert Authenticator(SqlitePrincipalStore(data)).authenticate(gw) is None
    assert "gw-tam-dao" not in users(data, "list").stdout
    assert "revoked" in users(data, "list", "--all").stdout


def test_clear_errors_exit_2(tmp_path):
    data = tmp_path / "data"
    add_user(data, "lan", "operator")
    for args, words in [
        (("add", "lan", "--role", "operator"), "already exists"),
        (("add", "x", "--role", "boss"), "unknown role 'boss'"),
        (("add", "g", "--role", "ingest", "--feeds", "rain,snow"), "unknown feed 'snow'"),
        (("add", "viewer", "--role", "viewer"), "reserved for the IOC_VIEWER_TOKEN"),
        (("revoke", "nobody"), "no active principal named 'nobody'"),
        (("rotate", "nobody"), "no active principal named 'nobody'"),
    ]:
        r = users(data, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stdout == "", args  # no token printed for a refused add


def test_against_redis(redis_url, tmp_path):
    prefix = "ioc-clitest-" + secrets.token_hex(4)
    try:
        r = users(tmp_path, "add", "hoa", "--role", "viewer", "--redis", redis_url, "--redis-prefix", prefix)
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        from ioc.auth.redis_store import RedisPrincipalStore

        assert Authenticator(RedisPrincipalStore(redis_url, prefix)).authenticate(token).name == "hoa"
        listing = users(tmp_path, "list", "--redis", redis_url, "--redis-prefix", prefix)
        assert "hoa" in listing.stdout and token not in listing.stdout
        assert not (tmp_path / "principals.sqlite3").exists()  # nothing written to a data dir
    finally:
        client = redis.Redis.from_url(redis_url)
        for k in client.scan_iter(f"{prefix}:*"):
            client.delete(k)


def test_a_running_server_sees_cli_changes_within_a_second(ioc_server, tmp_path):
    data = tmp_path / "data"
    server = ioc_server(data_dir=data)
    token = add_user(data, "tran.thi.hoa", "viewer")
    assert wait_for(lambda: httpx.get(server.url + "/api/me", headers=bearer(token)).status_code == 200, 3)
    assert users(data, "revoke", "tran.thi.hoa").returncode == 0
    t0 = time.monotonic()
    assert wait_for(lambda: httpx.get(server.url + "/api/snapshot", headers=bearer(token)).status_code == 401, 3)
    assert time.monotonic() - t0 < 2.0
