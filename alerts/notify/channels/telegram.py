"""Telegram Bot API: `POST {base_url}/bot<token>/sendMessage` with `{chat_id, text}`.

Answers are `{"ok": true, "result": {"message_id": …}}` or `{"ok": false,
"error_code", "description", "parameters": {"retry_after": s}}`; 429 is the
flood limit (retried after `retry_after`), 5xx are retried, 400/403 (bad chat,
bot blocked) fail with the description.  The token is in the URL path: never logged.
"""

from __future__ import annotations

import logging
import re

import httpx

from alerts.notify.channels.base import Outgoing, SendResult, transport_failure

MAX_CHARS = 4096  # Telegram's limit on one message's text
_BOT_PATH = re.compile(r"/bot[^/\s]+/")


class BotTokenFilter(logging.Filter):
    """httpx logs each request's URL at INFO: the bot token is in its path, so mask it there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_BOT_PATH.sub("/bot***/", str(a)) if isinstance(a, (str, httpx.URL)) else a
                                for a in record.args)
        if isinstance(record.msg, str) and "/bot" in record.msg:
            record.msg = _BOT_PATH.sub("/bot***/", record.msg)
        return True


def _install_filter() -> None:
    lg = logging.getLogger("httpx")
    if not any(isinstance(f, BotTokenFilter) for f in lg.filters):
        lg.addFilter(BotTokenFilter())


class TelegramChannel:
    name = "telegram"

    def __init__(self, settings, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = settings.options["base_url"]
        self._token = settings.secret
        self.timeout_s = float(settings.options.get("timeout_s", 10))
        self.client = client
        _install_filter()

    async def send(self, msg: Outgoing) -> SendResult:
        url = f"{self.base_url}/bot{self._token.reveal()}/sendMessage"
        body = {"chat_id": msg.address, "text": msg.text[:MAX_CHARS], "disable_web_page_preview": True}
        try:
            client = self.client or httpx.AsyncClient()
            try:
                resp = await client.post(url, json=body, timeout=self.timeout_s)
            finally:
                if self.client is None:
                    await client.aclose()
        except httpx.HTTPError as exc:
            res = transport_failure(exc)
            return SendResult(False, True, res.error.replace(self._token.reveal(), "***"))
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code == 200 and data.get("ok") is True:
            return SendResult(True, provider_id=str((data.get("result") or {}).get("message_id", "")))
        code = int(data.get("error_code") or resp.status_code)
        desc = str(data.get("description") or f"HTTP {resp.status_code}")[:300]
        retry_after = (data.get("parameters") or {}).get("retry_after")
        retry = code == 429 or resp.status_code >= 500
        return SendResult(False, retry, f"Telegram {code}: {desc}",
                          float(retry_after) if isinstance(retry_after, (int, float)) else None)
