"""Roles (viewer < operator < admin; ingest apart), ingest scope, and the token bucket."""

from __future__ import annotations

from ioc.auth import Principal
from ioc.auth.ratelimit import RateLimiter


def test_roles_imply_the_ones_before_and_ingest_is_apart():
    table = {role: {need for need in ("viewer", "operator", "admin", "ingest") if Principal("p", role).allows(need)}
             for role in ("viewer", "operator", "admin", "ingest")}
    assert table == {"viewer": {"viewer"}, "operator": {"viewer", "operator"},
                     "admin": {"viewer", "operator", "admin"}, "ingest": {"ingest"}}


def test_ingest_scope():
    gw = Principal("gw", "ingest", frozenset({"rain"}), frozenset({"VP-001"}))
    assert gw.may_write("rain", "VP-001")
    assert not gw.may_write("rain", "VP-002") and not gw.may_write("camera", "VP-001")
    assert Principal("all", "ingest").may_write("dossier", "vinh-yen")
    assert not Principal("op", "operator").may_write("rain", "VP-001")


def test_token_bucket_allows_the_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("gw") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("gw")
    assert wait == 0.5 and RateLimiter.retry_after_header(wait) == "1"
    assert limiter.take("other") == 0.0  # one bucket per principal
    now[0] = 0.5
    assert limiter.take("gw") == 0.0 and limiter.take("gw") > 0
    assert RateLimiter(0, 1).take("gw") == 0.0  # 0: no limit
