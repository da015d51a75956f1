"""Principals in Redis (the distributed mode): every `ioc api` replica sees the same ones.

Keys under `PREFIX:auth:` — `principal:NAME` (hash), `names` (set),
`token:HASH` → name, `tokens:NAME` (set of hashes), `session:HASH` (hash,
with a TTL), `revision` (INCR'd by every change, polled by the replicas).
Changes run in MULTI/EXEC transactions guarded by WATCH on the principal.
"""

from __future__ import annotations

import json
import math

import redis

from ioc.auth.principal import Principal
from ioc.auth.store import DuplicatePrincipal, PrincipalRecord, SessionRecord, UnknownPrincipal


def _scope(value: frozenset[str] | None) -> str:
    return "" if value is None else json.dumps(sorted(value))


def _unscope(text: str) -> frozenset[str] | None:
    return None if not text else frozenset(json.loads(text))


class RedisPrincipalStore:
    def __init__(self, redis_url: str, prefix: str = "ioc") -> None:
        self.r = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5.0,
                                      socket_connect_timeout=5.0)
        self.p = f"{prefix}:auth:"

    def _k(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    def _change(self, name: str, fn) -> None:
        """fn(pipe, current principal hash) queues the writes; retried if another writer raced us."""
        key = self._k("principal", name)
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    current = pipe.hgetall(key)
                    old_tokens = pipe.smembers(self._k("tokens", name))
                    pipe.multi()
                    fn(pipe, current, old_tokens)
                    pipe.incr(self._k("revision"))
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def add(self, principal: Principal, token_hash: str, at: float) -> None:
        name = principal.name

        def run(pipe, current: dict, old_tokens: set) -> None:
            if current and not current.get("revoked_at"):
                raise DuplicatePrincipal(f"a principal named {name!r} already exists")
            generation = int(current["generation"]) + 1 if current else 0
            for h in old_tokens:
                pipe.delete(self._k("token", h))
            pipe.delete(self._k("tokens", name), self._k("principal", name))
            pipe.hset(self._k("principal", name), mapping={
                "role": principal.role, "feeds": _scope(principal.feeds), "entities": _scope(principal.entities),
                "generation": generation, "created_at": repr(at), "revoked_at": ""})
            pipe.sadd(self._k("names"), name)
            pipe.set(self._k("token", token_hash), name)
            pipe.sadd(self._k("tokens", name), token_hash)

        self._change(name, run)

    def _require_active(self, name: str, current: dict) -> None:
        if not current or current.get("revoked_at"):
            raise UnknownPrincipal(f"no active principal named {name!r}")

    def revoke(self, name: str, at: float) -> None:
        def run(pipe, current: dict, old_tokens: set) -> None:
            self._require_active(name, current)
            pipe.hset(self._k("principal", name), mapping={"revoked_at": repr(at),
                                                           "generation": int(current["generation"]) + 1})

        self._change(name, run)

    def rotate(self, name: str, token_hash: str, at: float) -> None:
        def run(pipe, current: dict, old_tokens: set) -> None:
            self._require_active(name, current)
            for h in old_tokens:
                pipe.delete(self._k("token", h))
            pipe.delete(self._k("tokens", name))
            pipe.set(self._k("token", token_hash), name)
            pipe.sadd(self._k("tokens", name), token_hash)
            pipe.hset(self._k("principal", name), "generation", int(current["generation"]) + 1)

        self._change(name, run)

    def records(self) -> list[PrincipalRecord]:
        names = sorted(self.r.smembers(self._k("names")))
        pipe = self.r.pipeline(transaction=True)
        for n in names:
            pipe.hgetall(self._k("principal", n))
            pipe.smembers(self._k("tokens", n))
        got = pipe.execute()
        out = []
        for i, n in enumerate(names):
            h, toks = got[2 * i], got[2 * i + 1]
            if not h:
                continue
            out.append(PrincipalRecord(Principal(n, h["role"], _unscope(h.get("feeds", "")),
                                                 _unscope(h.get("entities", ""))),
                                       int(h.get("generation", 0)), float(h.get("created_at") or 0.0),
                                       float(h["revoked_at"]) if h.get("revoked_at") else None, tuple(sorted(toks))))
        return out

    def revision(self) -> int:
        return int(self.r.get(self._k("revision")) or 0)

    def add_session(self, session_hash: str, session: SessionRecord, now: float) -> None:
        key = self._k("session", session_hash)
        ttl = max(1, math.ceil(session.expires_at - now))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"name": session.name, "generation": session.generation,
                                "expires_at": repr(session.expires_at)})
        pipe.expire(key, ttl)
        pipe.execute()

    def end_session(self, session_hash: str) -> None:
        """Sign-out: the session stops working; the revision moves so every replica's cache re-checks."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._k("session", session_hash))
        pipe.incr(self._k("revision"))
        pipe.execute()

    def session(self, session_hash: str) -> SessionRecord | None:
        h = self.r.hgetall(self._k("session", session_hash))
        if not h:
            return None
        return SessionRecord(h["name"], int(h["generation"]), float(h["expires_at"]))

    def close(self) -> None:
        self.r.close()
