"""Token and session → Principal, with a cache refreshed when the store's revision moves.

The store is read at most once per `recheck_s` (a revision number), and
fully only when it changed, so checking a request costs a SHA-256 and a
dict lookup.  A change made through this authenticator (admin API) is seen
at once; one made elsewhere (`ioc users` in another process, another
`ioc api` replica) within `recheck_s`.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter

from ioc.auth.principal import ROLES, Principal, make_principal
from ioc.auth.store import PrincipalRecord, PrincipalStore, SessionRecord, UnknownPrincipal
from ioc.auth.tokens import hash_token, new_token, same_hash

SESSION_MAX_AGE_S = 400 * 86400
"""A wall display signs in once: its session lasts until revocation/rotation (or 400 days, the
longest cookie lifetime browsers keep)."""
FAILURE_REASONS = ("missing", "malformed", "unknown", "revoked", "session", "forbidden", "metrics", "origin")


class Authenticator:
    def __init__(self, store: PrincipalStore | None, env_tokens: Mapping[str, str] | None = None, *,
                 failures: Counter | None = None, clock: Callable[[], float] = time.time,
                 recheck_s: float = 1.0) -> None:
        """`env_tokens`: role → token from IOC_<ROLE>_TOKEN; each is a principal named after its role."""
        self.store = store
        self._clock = clock
        self._recheck_s = recheck_s
        self._env: list[tuple[str, Principal]] = []
        for role, token in (env_tokens or {}).items():
            if role not in ROLES:
                raise ValueError(f"environment token for unknown role {role!r}")
            if token:
                self._env.append((hash_token(token), Principal(role, role)))
        self._env_by_name = {p.name: p for _, p in self._env}
        if failures is None:
            failures = Counter("ioc_auth_failures", "Refused by access control, by reason.", ["reason"],
                               registry=CollectorRegistry())
        self._failures = failures
        self._lock = threading.RLock()
        self._rev = -1
        self._checked = float("-inf")
        self._by_hash: dict[str, PrincipalRecord] = {}
        self._by_name: dict[str, PrincipalRecord] = {}
        self._sessions: dict[str, SessionRecord] = {}  # cache of the store's (or the only copy without one)
        self._refresh(force=True)

    # -- cache ---------------------------------------------------------
    def _refresh(self, force: bool = False) -> None:
        if self.store is None:
            self._rev = max(self._rev, 0)
            return
        now = time.monotonic()
        if not force and now - self._checked < self._recheck_s:
            return
        with self._lock:
            self._checked = now
            rev = self.store.revision()
            if rev == self._rev and not force:
                return
            records = self.store.records()
            self._by_name = {r.principal.name: r for r in records}
            self._by_hash = {h: r for r in records for h in r.token_hashes}
            self._sessions.clear()
            self._rev = rev

    @property
    def revision(self) -> int:
        """Grows with every add/revoke/rotate (read from the store at most once per recheck_s)."""
        self._refresh()
        return self._rev

    # -- checks --------------------------------------------------------
    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a token, or None (counted: `unknown` or `revoked`; a missing or empty
        token is not counted here — the caller knows whether one was needed)."""
        if not token:
            return None
        h = hash_token(token)
        found = None
        for env_hash, p in self._env:  # constant time against each
            if same_hash(env_hash, h):
                found = p
        if found is not None:
            return found
        self._refresh()
        rec = self._by_hash.get(h)  # keyed by the hash: a lookup leaks nothing about the token
        if rec is None:
            self.record_failure("unknown")
            return None
        if not rec.active:
            self.record_failure("revoked")
            return None
        return rec.principal

    def _generation(self, name: str) -> int | None:
        """The current generation of an active principal, None if it is not one."""
        if name in self._env_by_name:
            return 0
        rec = self._by_name.get(name)
        return rec.generation if rec is not None and rec.active else None

    def open_session(self, principal: Principal) -> str:
        """A new random session id for an HttpOnly cookie; only its hash is kept."""
        self._refresh()
        gen = self._generation(principal.name)
        if gen is None:
            raise UnknownPrincipal(f"no active principal named {principal.name!r}")
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        rec = SessionRecord(principal.name, gen, now + SESSION_MAX_AGE_S)
        h = hash_token(sid)
        if self.store is not None:
            self.store.add_session(h, rec, now)
        self._sessions[h] = rec
        return sid

    def close_session(self, session_id: str) -> None:
        """Sign-out: this session id stops working here at once, elsewhere within recheck_s."""
        h = hash_token(session_id)
        with self._lock:
            self._sessions.pop(h, None)
        if self.store is not None and len(session_id) <= 200:
            self.store.end_session(h)
            self._refresh(force=True)

    def session_principal(self, session_id: str | None) -> Principal | None:
        """The principal of a live session, or None (counted as `session` when one was given)."""
        if not session_id:
            return None
        self._refresh()
        h = hash_token(session_id)
        rec = self._sessions.get(h)
        if rec is None and self.store is not None and len(session_id) <= 200:
            rec = self.store.session(h)
            if rec is not None:
                self._sessions[h] = rec
        if rec is None or rec.expires_at < self._clock() or self._generation(rec.name) != rec.generation:
            self.record_failure("session")
            return None
        return self._env_by_name.get(rec.name) or self._by_name[rec.name].principal

    def record_failure(self, reason: str) -> None:
        self._failures.labels(reason if reason in FAILURE_REASONS else "other").inc()

    # -- listing and management ---------------------------------------
    def people(self) -> list[Principal]:
        """Active principals who are people (not ingest), for the console's "assign to" list."""
        self._refresh()
        stored = [r.principal for r in self._by_name.values() if r.active and r.principal.role != "ingest"]
        env = [p for p in self._env_by_name.values() if p.role != "ingest"]
        return sorted(stored + env, key=lambda p: p.name)

    def listing(self) -> list[dict]:
        """Every principal (revoked ones too), for admins: never a token or hash."""
        self._refresh()
        out = [{**p.public(), "active": True, "source": "environment", "created_at": None, "revoked_at": None}
               for p in self._env_by_name.values()]
        for r in self._by_name.values():
            out.append({**r.principal.public(), "active": r.active, "source": "stored", "created_at": r.created_at,
                        "revoked_at": r.revoked_at})
        return sorted(out, key=lambda d: d["name"])

    def is_env(self, name: str) -> bool:
        return name in self._env_by_name

    def _store(self) -> PrincipalStore:
        if self.store is None:
            raise RuntimeError("no principal store configured")
        return self.store

    def add(self, name: object, role: object, feeds: object = None, entities: object = None) -> tuple[Principal, str]:
        """Create a principal; returns it and its token (shown once). AuthInputError, DuplicatePrincipal."""
        principal = make_principal(name, role, feeds, entities)
        token = new_token()
        self._store().add(principal, hash_token(token), self._clock())
        self._refresh(force=True)
        return principal, token

    def revoke(self, name: str) -> None:
        self._store().revoke(name, self._clock())
        self._refresh(force=True)

    def rotate(self, name: str) -> tuple[Principal, str]:
        token = new_token()
        self._store().rotate(name, hash_token(token), self._clock())
        self._refresh(force=True)
        return self._by_name[name].principal, token

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
