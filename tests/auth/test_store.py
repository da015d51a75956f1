"""Principal stores (SQLite in the data dir, Redis for `ioc api` replicas) behind the Authenticator:
round trip, tokens only as hashes, revoke/rotate, sessions dying with their principal, revision."""

from __future__ import annotations

import secrets

import pytest
import redis

from ioc.auth import Authenticator, AuthInputError, DuplicatePrincipal, Principal, SqlitePrincipalStore, UnknownPrincipal
from ioc.auth.redis_store import RedisPrincipalStore
from ioc.auth.tokens import hash_token


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request, tmp_path):
    """A factory of stores over the same place (a second process / replica sees what the first wrote)."""
    made = []
    if request.param == "sqlite":
        def make():
            made.append(SqlitePrincipalStore(tmp_path / "data"))
            return made[-1]
    else:
        url = request.getfixturevalue("redis_url")
        prefix = "ioc-test-" + secrets.token_hex(4)

        def make():
            made.append(RedisPrincipalStore(url, prefix))
            return made[-1]
    yield make
    if request.param == "redis":
        r = redis.Redis.from_url(url)
        for k in r.scan_iter(f"{prefix}:*"):
            r.delete(k)
    for s in made:
        s.close()


def test_round_trip_and_a_second_reader_sees_it(make_store):
    a = Authenticator(make_store())
    p, token = a.add("nguyen.van.an", "operator")
    gw, gw_token = a.add("gw-tam-dao", "ingest", feeds=["rain"], entities=["VP-001", "VP-002"])
    assert p == Principal("nguyen.van.an", "operator") and a.authenticate(token) == p
    b = Authenticator(make_store())  # another process / replica
    assert b.authenticate(token) == p
    assert b.authenticate(gw_token) == Principal("gw-tam-dao", "ingest", frozenset({"rain"}),
                                                 frozenset({"VP-001", "VP-002"}))
    assert b.authenticate("not-a-token") is None and b.authenticate(None) is None
    assert [x.name for x in b.people()] == ["nguyen.van.an"]  # an ingest principal is not a person


def test_checks_refuse_bad_definitions(make_store):
    a = Authenticator(make_store())
    a.add("lan", "viewer")
    with pytest.raises(DuplicatePrincipal):
        a.add("lan", "operator")
    for args, words in [(("x", "boss"), "unknown role"), (("operator", "operator"), "reserved"),
                        (("has space", "viewer"), "no spaces"), (("g", "ingest", ["rain", "snow"]), "unknown feed"),
                        (("v", "viewer", ["rain"]), "ingest principal")]:
        with pytest.raises(AuthInputError, match=words):
            a.add(*args)
    with pytest.raises(UnknownPrincipal):
        a.revoke("nobody")


def test_revoke_and_rotate_end_tokens_and_sessions_everywhere(make_store):
    a = Authenticator(make_store(), recheck_s=0.0)
    b = Authenticator(make_store(), recheck_s=0.0)  # another replica: sees changes at its next check
    p, token = a.add("minh", "operator")
    session = a.open_session(p)
    assert b.session_principal(session) == p and b.authenticate(token) == p
    rev = b.revision
    p2, token2 = a.rotate("minh")
    assert b.revision > rev
    assert b.authenticate(token) is None and b.authenticate(token2) == p2
    assert b.session_principal(session) is None and a.session_principal(session) is None  # rotation ends it
    session2 = b.open_session(p2)
    assert a.session_principal(session2) == p2
    rev = a.revision
    a.revoke("minh")
    assert b.revision > rev
    assert b.authenticate(token2) is None and b.session_principal(session2) is None
    assert b.people() == [] and [r["active"] for r in b.listing()] == [False]
    assert a.session_principal(session2) is None
    with pytest.raises(UnknownPrincipal):
        b.rotate("minh")
    p3, token3 = b.add("minh", "viewer")  # a revoked name can be given again, to a new token
    assert a.authenticate(token3) == p3 and a.authenticate(token2) is None


def test_sign_out_ends_the_session_on_every_replica(make_store):
    a = Authenticator(make_store(), recheck_s=0.0)
    b = Authenticator(make_store(), recheck_s=0.0)
    p, token = a.add("thu", "viewer")
    s1, s2 = a.open_session(p), a.open_session(p)
    assert b.session_principal(s1) == p  # cached on b now
    rev = b.revision
    a.close_session(s1)
    assert b.revision > rev
    assert a.session_principal(s1) is None and b.session_principal(s1) is None
    assert b.session_principal(s2) == p and b.authenticate(token) == p  # only that session ended


def test_failures_are_counted_by_reason(make_store):
    from ioc.metrics import Metrics

    m = Metrics()
    a = Authenticator(make_store(), failures=m.auth_failures)
    _, token = a.add("hoa", "viewer")
    a.revoke("hoa")
    assert a.authenticate(token) is None and a.authenticate("guess") is None
    assert a.session_principal("made-up") is None
    value = lambda reason: m.registry.get_sample_value("ioc_auth_failures_total", {"reason": reason})  # noqa: E731
    assert (value("revoked"), value("unknown"), value("session")) == (1.0, 1.0, 1.0)


def test_environment_tokens_are_principals_named_after_their_role(make_store):
    a = Authenticator(make_store(), {"viewer": "v-tok", "ingest": "i-tok", "admin": "a-tok"})
    assert a.authenticate("v-tok") == Principal("viewer", "viewer")
    ingest = a.authenticate("i-tok")
    assert ingest.may_write("rain", "VP-001") and not ingest.allows("viewer")
    admin = a.authenticate("a-tok")
    assert admin.allows("operator") and admin.allows("viewer") and not admin.allows("ingest")
    assert a.session_principal(a.open_session(admin)) == admin


def test_only_hashes_are_stored(make_store, tmp_path, request):
    store = make_store()
    a = Authenticator(store)
    _, token = a.add("sensitive", "admin")
    session = a.open_session(a.authenticate(token))
    if isinstance(store, SqlitePrincipalStore):
        blob = b"".join(f.read_bytes() for f in (tmp_path / "data").iterdir())
    else:
        blob = b"".join(bytes(str(store.r.dump(k)), "utf-8") + k.encode() for k in store.r.scan_iter(store.p + "*"))
        blob += b"".join(str(store.r.hgetall(k)).encode() for k in store.r.scan_iter(store.p + "principal:*"))
    assert token.encode() not in blob and session.encode() not in blob
    assert hash_token(token).encode() in blob  # what is kept instead
