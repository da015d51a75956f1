"""Who may hold a `/ws` connection, and closing it when that stops being true.

A connection is accepted first and then, when refused, closed with a code
and a reason, because that is what a browser can see: a handshake refused
with HTTP 403 reaches the page only as code 1006 with no reason, so the wall
could not tell "signed out" from "server down" (docs/architecture.md §6).

- 4401 `not signed in` / `token not valid` / `token revoked`: no valid
  credential (the `ioc_session` cookie, `?token=`, or `Authorization:
  Bearer`), or the principal behind it was revoked or rotated while connected;
- 4403 `origin not allowed`: a browser page of another origin (ioc/origins.py);
  4403 `viewer role needed`: an ingest principal.

Nothing is sent before the check.  Revocation: one task polls the
authenticator's `revision` (cheap) every `REVOCATION_POLL_S` and, when it
moved, re-checks each connection's credential, in slices so the event loop is
never held long; a revoked connection is closed within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from ioc.auth.authenticator import Authenticator
from ioc.auth.http import MALFORMED, request_credentials
from ioc.auth.principal import Principal
from ioc.origins import OriginPolicy

log = logging.getLogger("ioc.ws_auth")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
REASON_NOT_SIGNED_IN = "not signed in"
REASON_BAD_TOKEN = "token not valid"
REASON_REVOKED = "token revoked"
REASON_ORIGIN = "origin not allowed"
REASON_ROLE = "viewer role needed"
REVOCATION_POLL_S = 1.0
RECHECK_SLICE = 500
"""Credentials re-checked per turn of the event loop after a revocation."""


@dataclass(eq=False)
class WsGrant:
    """An admitted connection: who, with which credential, and the event set when it is revoked."""

    principal: Principal
    token: str | None
    session_id: str | None
    revoked: asyncio.Event = field(default_factory=asyncio.Event)


class WsGate:
    """Admits `/ws` connections (Origin, credential, role) and watches them for revocation."""

    def __init__(self, policy: OriginPolicy | None = None, poll_s: float = REVOCATION_POLL_S) -> None:
        self.policy = policy if policy is not None else OriginPolicy.from_env()
        self.poll_s = poll_s
        self.grants: set[WsGrant] = set()
        self._watcher: asyncio.Task | None = None

    async def admit(self, websocket: Any) -> WsGrant | None:
        """After `accept()`: the grant, or None once the socket was closed with 4401/4403 and a reason."""
        auth = websocket.app.state.auth
        revision = auth.revision  # before the check: a revocation after it is caught by the watcher
        if not self.policy.allows(websocket.headers.get("origin"), websocket.headers.get("host"), websocket.url.scheme):
            auth.record_failure("origin")
            await _close(websocket, CLOSE_FORBIDDEN, REASON_ORIGIN)
            return None
        token, session_id = request_credentials(websocket)
        if token == MALFORMED:
            auth.record_failure("malformed")
            await _close(websocket, CLOSE_UNAUTHENTICATED, REASON_BAD_TOKEN)
            return None
        principal = principal_for(auth, token, session_id)  # counts an unknown/revoked token or session itself
        if principal is None:
            if not (token or session_id):
                auth.record_failure("missing")
            await _close(websocket, CLOSE_UNAUTHENTICATED,
                         REASON_BAD_TOKEN if token else (REASON_REVOKED if session_id else REASON_NOT_SIGNED_IN))
            return None
        if not principal.allows("viewer"):
            auth.record_failure("forbidden")
            await _close(websocket, CLOSE_FORBIDDEN, REASON_ROLE)
            return None
        grant = WsGrant(principal, token, session_id)
        self.grants.add(grant)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(auth, revision), name="ioc-ws-revocations")
        return grant

    def release(self, grant: WsGrant) -> None:
        self.grants.discard(grant)

    async def close_revoked(self, websocket: Any) -> None:
        await _close(websocket, CLOSE_UNAUTHENTICATED, REASON_REVOKED)

    async def _watch(self, auth: Authenticator, seen: int) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                now = auth.revision
                if now != seen:
                    await self.recheck(auth)
                    seen = now  # only once re-checked: a failed round is tried again
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup: keep watching, re-check on the next move
                log.exception("re-checking WebSocket credentials failed")

    async def recheck(self, auth: Authenticator) -> int:
        """Signal every grant whose credential no longer authenticates; returns how many."""
        by_credential: dict[tuple[str | None, str | None], list[WsGrant]] = {}
        for g in list(self.grants):
            by_credential.setdefault((g.token, g.session_id), []).append(g)
        revoked = 0
        for i, ((token, session_id), grants) in enumerate(by_credential.items()):
            if i and i % RECHECK_SLICE == 0:
                await asyncio.sleep(0)
            p = principal_for(auth, token, session_id)
            if p is None or not p.allows("viewer"):
                for g in grants:
                    g.revoked.set()
                    revoked += 1
        return revoked


def principal_for(auth: Authenticator, token: str | None, session_id: str | None) -> Principal | None:
    """The principal of a token (scripts) or else of a session cookie (browsers), or None."""
    if token:
        return auth.authenticate(token)
    if session_id:
        return auth.session_principal(session_id)
    return None


async def _close(websocket: Any, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError):
        await websocket.close(code=code, reason=reason)
