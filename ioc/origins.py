"""Which browser origins may use a signed-in session (WebSocket and cookie-authenticated POSTs).

A browser attaches the `ioc_session` cookie to a request to this server from
any page, including a page of another site; the `Origin` header says which
page sent it.  By default only the origin the wall itself is served from
(the request's own `Host`) is allowed; `IOC_ALLOWED_ORIGINS` adds more,
comma-separated (e.g. a reverse proxy's public name: `https://ioc.example.vn`).
No `Origin` header means a non-browser client (a script, `websockets`): it
cannot carry a victim's cookie, so it is judged by its credentials alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_ALLOWED_ORIGINS = "IOC_ALLOWED_ORIGINS"


def normalise(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case with the default port dropped; None when not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


@dataclass(frozen=True)
class OriginPolicy:
    """Extra allowed origins (normalised); the serving host is always allowed."""

    extra: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "OriginPolicy":
        raw = (os.environ if environ is None else environ).get(ENV_ALLOWED_ORIGINS, "")
        out = set()
        for item in raw.split(","):
            if not item.strip():
                continue
            norm = normalise(item)
            if norm is None:
                from ioc.config import ConfigError

                raise ConfigError(f"{ENV_ALLOWED_ORIGINS}: {item.strip()!r} is not an origin like https://host[:port]")
            out.add(norm)
        return cls(frozenset(out))

    def allows(self, origin: str | None, host: str | None, scheme: str = "http") -> bool:
        """Is a request with this `Origin` header, sent to this `Host`, from an allowed page?

        `scheme` is how the request reached us ("http"/"https", or "ws"/"wss" for a WebSocket)."""
        if origin is None:
            return True
        norm = normalise(origin)
        if norm is None:  # "null" (sandboxed frame, file://) or garbage
            return False
        if norm in self.extra:
            return True
        if not host:
            return False
        page_scheme = "https" if scheme in ("https", "wss") else "http"
        return norm == normalise(f"{page_scheme}://{host}")
