"""Security headers on every response, in one place (an ASGI middleware).

Every response: `X-Content-Type-Options: nosniff` (a JSON or JSONL answer is
never run as script) and `Referrer-Policy: no-referrer` (a kiosk URL's token
never leaks in a Referer).  HTML pages also get a Content-Security-Policy
that allows only this origin's own scripts, styles, images and WebSocket —
no inline script, no `style=` attribute, no outside host — and may not be
framed (`frame-ancestors 'none'`, `X-Frame-Options: DENY`).  The wall and
console set element styles only through the CSSOM (`el.style.width = ...`),
which `style-src 'self'` allows.
"""

from __future__ import annotations

from typing import Any

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
ALL_RESPONSES = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
HTML_RESPONSES = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Adds the headers above to each HTTP response that does not set them itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                html = any(name.lower() == b"content-type" and value.lower().startswith(b"text/html")
                           for name, value in headers)
                for name, value in ALL_RESPONSES + (HTML_RESPONSES if html else ()):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
