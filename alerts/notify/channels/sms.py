"""A generic SMS gateway: an HTTP request from a template in the configuration.

    sms: {url: "https://sms.example.vn/api/send", method: POST, secret_env: IOC_SMS_KEY,
          headers: {Authorization: "Bearer {secret}"}, body: {to: "{phone}", text: "{text}"}}

`{phone}`, `{text}`, `{key}` (the delivery key, for the gateway's dedup) and
`{secret}` are replaced in the URL, header values and body values; `body` is
sent as JSON (`form: true`: as a form; GET: as query parameters).  Success is
any 2xx; 429/5xx are retried (Retry-After honoured), other statuses fail.
"""

from __future__ import annotations

import httpx

from alerts.notify.channels.base import Outgoing, SendResult, http_failure, mask_in_logs, transport_failure


def _fill(template, values: dict[str, str]):
    if isinstance(template, str):
        out = template
        for k, v in values.items():
            out = out.replace("{" + k + "}", v)
        return out
    if isinstance(template, dict):
        return {str(k): _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


class SmsChannel:
    name = "sms"

    def __init__(self, settings, client: httpx.AsyncClient | None = None) -> None:
        o = settings.options
        self.url, self.method = o["url"], str(o.get("method", "POST")).upper()
        self.headers, self.body, self.form = dict(o.get("headers") or {}), o.get("body"), bool(o.get("form"))
        self.max_chars = int(o.get("max_chars", 320))
        self.timeout_s = float(o.get("timeout_s", 10))
        self._secret = settings.secret
        self.client = client
        mask_in_logs(self._secret.reveal() if self._secret else None)  # a template may put it in the URL

    async def send(self, msg: Outgoing) -> SendResult:
        text = msg.short if len(msg.short) <= self.max_chars else msg.short[: self.max_chars - 1] + "…"
        values = {"phone": msg.address, "text": text, "key": msg.key,
                  "secret": self._secret.reveal() if self._secret else ""}
        url, headers = _fill(self.url, values), _fill(self.headers, values)
        body = _fill(self.body if self.body is not None else {"to": "{phone}", "text": "{text}"}, values)
        kw: dict = {"headers": headers, "timeout": self.timeout_s}
        if self.method == "GET":
            kw["params"] = body
        elif self.form:
            kw["data"] = body
        else:
            kw["json"] = body
        try:
            client = self.client or httpx.AsyncClient()
            try:
                resp = await client.request(self.method, url, **kw)
            finally:
                if self.client is None:
                    await client.aclose()
        except httpx.HTTPError as exc:
            res = transport_failure(exc)
            secret = values["secret"]
            return SendResult(False, True, res.error.replace(secret, "***") if secret else res.error)
        if 200 <= resp.status_code < 300:
            return SendResult(True)
        return http_failure(resp)
