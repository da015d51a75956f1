"""Webhook notifier (adapter): POST each outbox entry as JSON, with retries.

    notifier = WebhookNotifier("https://hooks.example/ioc", max_attempts=4, backoff_s=0.5)
    notifier.dispatch(store)            # deliver every due outbox entry once; call it after each batch
    await AsyncWebhookNotifier(url).dispatch(store)   # same, inside an event loop

Each request carries an `Idempotency-Key` header equal to the outbox key
("{alert id}:{kind}"), stable across retries and restarts, so a receiver can
drop a duplicate caused by a crash between its 2xx and our bookkeeping.
Retries: transport errors, 408, 425, 429 and 5xx, with exponential backoff
(backoff_s · 2^n, capped at backoff_max_s; Retry-After honoured up to the
cap).  Other 4xx are permanent: the entry is marked failed.  When all
`max_attempts` of one dispatch fail the entry stays pending and is retried at
a later dispatch (after `retry_later_s`), until `give_up_after` attempts.

Body (format="json"): {"idempotency_key", "kind": firing|escalated|resolved,
"alert": <Alert record>}; format="cap": the CAP 1.2 XML of the alert.
The URL may carry secrets: it is never logged (only its host).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
import msgspec

from alerts.lifecycle import alert_from_builtins

log = logging.getLogger("alerts.webhook")
_RETRY_STATUS = {408, 425, 429}


class DeliveryResult(msgspec.Struct):
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""
    permanent: bool = False


class _Base:
    def __init__(self, url: str, *, timeout_s: float = 5.0, max_attempts: int = 4, backoff_s: float = 0.5,
                 backoff_max_s: float = 30.0, retry_later_s: float = 60.0, give_up_after: int = 40,
                 headers: dict[str, str] | None = None, format: str = "json", catalog=None, rules=None,
                 cap_sender: str | None = None, clock: Callable[[], float] = time.time) -> None:
        if format not in ("json", "cap"):
            raise ValueError("format must be 'json' or 'cap'")
        self.url = url
        self.host = urlsplit(url).netloc.rsplit("@", 1)[-1]
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.retry_later_s = retry_later_s
        self.give_up_after = give_up_after
        self.headers = dict(headers or {})
        self.format = format
        self.catalog = catalog
        self.rules = rules
        self.cap_sender = cap_sender
        self.clock = clock

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        d = min(self.backoff_s * (2 ** (attempt - 1)), self.backoff_max_s)
        if retry_after:
            try:
                d = max(d, min(float(retry_after), self.backoff_max_s))
            except ValueError:
                pass
        return d

    def withheld(self, store, item: dict) -> bool:
        """A test alert (alerts/test_alert.py) is never sent as a CAP message: marked done unsent."""
        from alerts.test_alert import is_test

        if self.format != "cap" or not is_test(item.get("alert") or {}):
            return False
        store.outbox_delivered(item["key"], self.clock())
        return True

    def request(self, item: dict) -> tuple[bytes, dict[str, str]]:
        headers = {"Idempotency-Key": item["key"], "User-Agent": "ioc-monitor-alerts/1", **self.headers}
        if self.format == "cap":
            from alerts.cap import alert_to_cap

            a = alert_from_builtins(item["alert"])
            rule = self.rules.get(a.rule) if self.rules is not None else None
            body = alert_to_cap(a, catalog=self.catalog, rule=rule, sender=self.cap_sender)
            headers["Content-Type"] = "application/cap+xml; charset=utf-8"
        else:
            body = msgspec.json.encode({"idempotency_key": item["key"], "kind": item["kind"], "alert": item["alert"]})
            headers["Content-Type"] = "application/json"
        return body, headers

    @staticmethod
    def _classify(resp: httpx.Response | None, exc: Exception | None) -> tuple[bool, bool, str]:
        """(ok, retryable, error text)."""
        if exc is not None:
            return False, True, f"{type(exc).__name__}: {exc}"
        assert resp is not None
        if 200 <= resp.status_code < 300:
            return True, False, ""
        retry = resp.status_code >= 500 or resp.status_code in _RETRY_STATUS
        return False, retry, f"HTTP {resp.status_code}"

    def _record(self, store, item: dict, res: DeliveryResult) -> None:
        attempts = item.get("attempts", 0) + res.attempts
        if res.ok:
            store.outbox_delivered(item["key"], self.clock())
        elif res.permanent or attempts >= self.give_up_after:
            log.warning("webhook to %s: giving up on %s after %d attempts: %s", self.host, item["key"], attempts,
                        res.error)
            store.outbox_failed(item["key"], attempts, res.error)
        else:
            store.outbox_retry(item["key"], attempts, self.clock() + self.retry_later_s, res.error)


class WebhookNotifier(_Base):
    def __init__(self, url: str, *, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.client = client or httpx.Client(timeout=self.timeout_s)
        self.sleep = sleep

    def send(self, item: dict) -> DeliveryResult:
        body, headers = self.request(item)
        err, status = "", None
        for attempt in range(1, self.max_attempts + 1):
            resp, exc = None, None
            try:
                resp = self.client.post(self.url, content=body, headers=headers)
                status = resp.status_code
            except httpx.HTTPError as e:
                exc = e
            ok, retry, err = self._classify(resp, exc)
            if ok:
                return DeliveryResult(True, attempt, status)
            if not retry:
                return DeliveryResult(False, attempt, status, err, permanent=True)
            if attempt < self.max_attempts:
                self.sleep(self.delay(attempt, resp.headers.get("Retry-After") if resp is not None else None))
        return DeliveryResult(False, self.max_attempts, status, err)

    def dispatch(self, store, limit: int = 100) -> int:
        """Deliver due outbox entries; returns how many were delivered."""
        delivered = 0
        for item in store.outbox_pending(self.clock(), limit):
            if self.withheld(store, item):
                continue
            res = self.send(item)
            self._record(store, item, res)
            delivered += res.ok
        return delivered

    def close(self) -> None:
        self.client.close()


class AsyncWebhookNotifier(_Base):
    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None, sleep=asyncio.sleep, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.client = client or httpx.AsyncClient(timeout=self.timeout_s)
        self.sleep = sleep

    async def send(self, item: dict) -> DeliveryResult:
        body, headers = self.request(item)
        err, status = "", None
        for attempt in range(1, self.max_attempts + 1):
            resp, exc = None, None
            try:
                resp = await self.client.post(self.url, content=body, headers=headers)
                status = resp.status_code
            except httpx.HTTPError as e:
                exc = e
            ok, retry, err = self._classify(resp, exc)
            if ok:
                return DeliveryResult(True, attempt, status)
            if not retry:
                return DeliveryResult(False, attempt, status, err, permanent=True)
            if attempt < self.max_attempts:
                await self.sleep(self.delay(attempt, resp.headers.get("Retry-After") if resp is not None else None))
        return DeliveryResult(False, self.max_attempts, status, err)

    async def dispatch(self, store, limit: int = 100) -> int:
        delivered = 0
        for item in store.outbox_pending(self.clock(), limit):
            if self.withheld(store, item):
                continue
            res = await self.send(item)
            self._record(store, item, res)
            delivered += res.ok
        return delivered

    async def aclose(self) -> None:
        await self.client.aclose()
