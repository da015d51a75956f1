"""Webhook channel: POST the incident as JSON to the person's (or group's) URL.

Body `{"idempotency_key", "kind", "incident", "text", "alerts": [records]}`,
header `Idempotency-Key` = the delivery key, stable across retries and
restarts; 2xx is success, 408/425/429/5xx are retried (Retry-After honoured).
The per-alert webhook of `IOC_WEBHOOK_URL` is alerts/notify_webhook.py; this
is the per-recipient one of the routes.
"""

from __future__ import annotations

import httpx

from alerts.notify.channels.base import Outgoing, SendResult, http_failure, transport_failure


class WebhookChannel:
    name = "webhook"

    def __init__(self, settings, client: httpx.AsyncClient | None = None) -> None:
        self.headers = dict(settings.options.get("headers") or {})
        self.timeout_s = float(settings.options.get("timeout_s", 10))
        self.client = client

    async def send(self, msg: Outgoing) -> SendResult:
        body = {"idempotency_key": msg.key, "text": msg.text, **msg.payload}
        headers = {"Idempotency-Key": msg.key, "User-Agent": "ioc-monitor-notify/1", **self.headers}
        try:
            client = self.client or httpx.AsyncClient()
            try:
                resp = await client.post(msg.address, json=body, headers=headers, timeout=self.timeout_s)
            finally:
                if self.client is None:
                    await client.aclose()
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        if 200 <= resp.status_code < 300:
            return SendResult(True)
        return http_failure(resp)
