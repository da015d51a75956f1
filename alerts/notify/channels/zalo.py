"""Zalo Official Account: `POST {base_url}/v3.0/oa/message/cs` (consultation message), `access_token` header.

Body `{"recipient": {"user_id"}, "message": {"text"}}`; the answer is HTTP 200
with `{"error": 0, "message": "Success", "data": {"message_id"}}`, or a
negative `error` with a `message`.  Rate limits (error -32, or HTTP 429) and
5xx are retried; other errors (e.g. -216 access token invalid, -213 user not
following the OA) fail with Zalo's message.
"""

from __future__ import annotations

import httpx

from alerts.notify.channels.base import Outgoing, SendResult, http_failure, transport_failure

RATE_LIMITED = {-32}
MAX_CHARS = 2000  # Zalo's limit on a text message


class ZaloChannel:
    name = "zalo"

    def __init__(self, settings, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = settings.options["base_url"]
        self._token = settings.secret
        self.timeout_s = float(settings.options.get("timeout_s", 10))
        self.client = client

    async def send(self, msg: Outgoing) -> SendResult:
        body = {"recipient": {"user_id": msg.address}, "message": {"text": msg.text[:MAX_CHARS]}}
        headers = {"access_token": self._token.reveal()}
        try:
            client = self.client or httpx.AsyncClient()
            try:
                resp = await client.post(f"{self.base_url}/v3.0/oa/message/cs", json=body, headers=headers,
                                         timeout=self.timeout_s)
            finally:
                if self.client is None:
                    await client.aclose()
        except httpx.HTTPError as exc:
            return transport_failure(exc)
        if resp.status_code != 200:
            return http_failure(resp)
        try:
            data = resp.json()
        except ValueError:
            return SendResult(False, True, "Zalo: the answer is not JSON")
        err = data.get("error")
        if err == 0:
            return SendResult(True, provider_id=str((data.get("data") or {}).get("message_id", "")))
        text = f"Zalo {err}: {str(data.get('message', ''))[:300]}"
        return SendResult(False, err in RATE_LIMITED, text, 60.0 if err in RATE_LIMITED else None)
