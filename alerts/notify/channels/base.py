"""What every channel adapter speaks: one outgoing message in, one classified result out.

`retryable` failures (network, 429, 5xx, a provider's rate limit) are retried
with backoff, honouring `retry_after_s`; the others fail the delivery with the
reason.  Errors never carry a secret (tokens live in URLs and headers only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class Outgoing:
    key: str  # the delivery key: recipient|channel|incident|transition (idempotency)
    address: str  # e-mail, phone, chat id, user id, URL
    subject: str
    text: str
    short: str  # SMS text
    payload: dict  # for the webhook: incident, kind, alerts


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retryable: bool = False
    error: str = ""
    retry_after_s: float | None = None
    provider_id: str = ""


class Channel(Protocol):
    name: str

    async def send(self, msg: Outgoing) -> SendResult: ...


def http_failure(resp: httpx.Response, detail: str = "") -> SendResult:
    """429 and 5xx (and 408) are retried, with Retry-After when the server gives one; other 4xx fail."""
    retry_after = None
    ra = resp.headers.get("Retry-After")
    if ra:
        try:
            retry_after = float(ra)
        except ValueError:
            retry_after = None
    code = resp.status_code
    retry = code >= 500 or code in (408, 425, 429)
    return SendResult(False, retry, f"HTTP {code}" + (f": {detail}" if detail else ""), retry_after)


def transport_failure(exc: Exception) -> SendResult:
    return SendResult(False, True, f"{type(exc).__name__}: {str(exc)[:200]}")


class SecretFilter:
    """A logging filter masking one secret wherever a logger (httpx logs request URLs) would print it."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def filter(self, record) -> bool:
        if self.secret and record.args and isinstance(record.args, tuple):
            record.args = tuple(str(a).replace(self.secret, "***") if self.secret in str(a) else a
                                for a in record.args)
        return True


def mask_in_logs(secret: str | None, logger: str = "httpx") -> None:
    import logging

    if secret:
        lg = logging.getLogger(logger)
        if not any(isinstance(f, SecretFilter) and f.secret == secret for f in lg.filters):
            lg.addFilter(SecretFilter(secret))
