"""Cross-site request forgery guard for cookie-authenticated actions, in one place.

The `ioc_session` cookie is SameSite=Strict, so a modern browser does not
send it on a request started by another site; this guard is the second
lock, for browsers and set-ups where that is not enough (a same-site page
on another port of the same host, an old browser).  A request with an
unsafe method (POST, PUT, PATCH, DELETE) that carries the session cookie and
no token of its own (no `Authorization`, no `?token=`) passes only when one
of these shows that the page sending it is ours:

- `Origin` is an allowed origin (ioc/origins.py);
- `Sec-Fetch-Site: same-origin` (browsers send it whatever the referrer
  policy; with `Referrer-Policy: no-referrer` a same-origin POST carries
  `Origin: null`, so Origin alone cannot be relied on);
- an `X-Requested-With` header (the console sends it): a page of another
  origin cannot add a custom header without a CORS preflight, which this
  server never answers.

Otherwise: 403 `{"detail", "reason": "cross_site_request"}`, nothing done.
Requests authenticated by a bearer token are not affected: a browser never
adds one by itself.  `POST /signin` (no cookie needed) is refused only on
evidence that another site sent it (`Sec-Fetch-Site: cross-site|same-site`
or a foreign `Origin`), so that no page elsewhere can sign a screen in as
someone else, while scripts and old browsers can still sign in.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from ioc.origins import OriginPolicy

SESSION_COOKIE = "ioc_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGNIN_PATH = "/signin"
REFUSAL = msgspec.json.encode({
    "detail": "refused: this request carries the session cookie but was not sent by a page of this server "
              "(send it from the console, or authenticate with Authorization: Bearer TOKEN)",
    "reason": "cross_site_request",
})


def has_session_cookie(headers: dict[bytes, bytes]) -> bool:
    raw = headers.get(b"cookie")
    if not raw:
        return False
    try:
        jar = SimpleCookie(raw.decode("latin-1"))
    except CookieError:
        return SESSION_COOKIE.encode() + b"=" in raw
    return SESSION_COOKIE in jar


def _has_query_token(query: bytes) -> bool:
    return any(k == "token" for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))


class CsrfGuard:
    """Refuses cookie-authenticated unsafe requests that no page of ours sent (see the module doc)."""

    def __init__(self, app: Any, policy: OriginPolicy | None = None) -> None:
        self.app = app
        self.policy = policy if policy is not None else OriginPolicy.from_env()

    def passes(self, scope: dict) -> bool:
        if scope["method"] in SAFE_METHODS:
            return True
        headers = dict(scope.get("headers") or ())
        if scope.get("path") == SIGNIN_PATH:
            return not self._sent_elsewhere(scope, headers)
        if not has_session_cookie(headers) or b"authorization" in headers or _has_query_token(scope.get("query_string", b"")):
            return True
        if b"x-requested-with" in headers:
            return True
        if headers.get(b"sec-fetch-site", b"").lower() == b"same-origin":
            return True
        origin = headers.get(b"origin")
        if origin is None or origin.strip().lower() == b"null":
            return False
        host = headers.get(b"host")
        return self.policy.allows(origin.decode("latin-1"), host.decode("latin-1") if host else None,
                                  scope.get("scheme", "http"))

    def _sent_elsewhere(self, scope: dict, headers: dict[bytes, bytes]) -> bool:
        if headers.get(b"sec-fetch-site", b"").lower() in (b"cross-site", b"same-site"):
            return True
        origin = headers.get(b"origin")
        if origin is None or origin.strip().lower() == b"null":
            return False
        host = headers.get(b"host")
        return not self.policy.allows(origin.decode("latin-1"), host.decode("latin-1") if host else None,
                                      scope.get("scheme", "http"))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.passes(scope):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(REFUSAL)).encode())]})
        await send({"type": "http.response.body", "body": REFUSAL})
