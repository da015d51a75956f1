"""Local servers speaking the providers' documented request and answer shapes (real HTTP, real SMTP).

- Telegram Bot API: POST /bot<token>/sendMessage → {"ok": true, "result": {...}} or
  {"ok": false, "error_code", "description", "parameters": {"retry_after"}} (429 flood limit, 403 blocked).
- Zalo OA: POST /v3.0/oa/message/cs with an `access_token` header → HTTP 200 {"error": 0, "message": "Success",
  "data": {"message_id"}} or a negative error (-216 bad token, -32 rate limit).
- SMS gateway: POST /sms/send with a bearer key → 200 {"status": "queued"} / 429 + Retry-After / 401.
- Webhook: POST /hook/<name> → 200, or the queued failure statuses.
- SMTP: aiosmtpd with STARTTLS required and AUTH PLAIN/LOGIN (a self-signed certificate from openssl).
"""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TELEGRAM_TOKEN = "123456:test-bot-token"
ZALO_TOKEN = "zalo-access-token"
SMS_KEY = "sms-key"


class Providers:
    def __init__(self) -> None:
        self.telegram: list[dict] = []
        self.zalo: list[dict] = []
        self.sms: list[dict] = []
        self.hooks: list[dict] = []
        self.fail: dict[str, list] = {"telegram": [], "zalo": [], "sms": [], "hook": []}  # queued failures
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with outer.lock:
                    outer.route(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _failure(self, name: str):
        return self.fail[name].pop(0) if self.fail[name] else None

    def route(self, h, body: dict) -> None:
        path = h.path
        if path.startswith("/bot"):
            token, _, method = path[4:].partition("/")
            if token != TELEGRAM_TOKEN or method != "sendMessage":
                return h._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            f = self._failure("telegram")
            if f == 429:
                return h._answer(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                       "parameters": {"retry_after": 1}})
            if str(body.get("chat_id")) == "403":
                return h._answer(403, {"ok": False, "error_code": 403,
                                       "description": "Forbidden: bot was blocked by the user"})
            self.telegram.append(body)
            return h._answer(200, {"ok": True, "result": {"message_id": len(self.telegram), "chat": {"id": body["chat_id"]},
                                                          "text": body["text"]}})
        if path == "/v3.0/oa/message/cs":
            if h.headers.get("access_token") != ZALO_TOKEN:
                return h._answer(200, {"error": -216, "message": "Access token is invalid"})
            if self._failure("zalo") == -32:
                return h._answer(200, {"error": -32, "message": "Request exceeded rate limit"})
            self.zalo.append(body)
            return h._answer(200, {"error": 0, "message": "Success",
                                   "data": {"message_id": f"m{len(self.zalo)}", "user_id": body["recipient"]["user_id"]}})
        if path == "/sms/send":
            if h.headers.get("Authorization") != f"Bearer {SMS_KEY}":
                return h._answer(401, {"status": "unauthorized"})
            if self._failure("sms") == 429:
                return h._answer(429, {"status": "slow down"}, {"Retry-After": "1"})
            self.sms.append(body)
            return h._answer(200, {"status": "queued"})
        if path.startswith("/hook/"):
            f = self._failure("hook")
            if f:
                return h._answer(f, {"error": "unavailable"})
            self.hooks.append({"path": path, "key": h.headers.get("Idempotency-Key"), **body})
            return h._answer(200, {})
        return h._answer(404, {"error": "not found"})

    def close(self) -> None:
        self.server.shutdown()


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class Smtp:
    """aiosmtpd on a free port: STARTTLS required before AUTH and MAIL; records every accepted message."""

    USER, PASSWORD = "ioc@monitor.vinhphuc.gov.vn", "smtp-password"

    def __init__(self, directory: Path, port: int) -> None:
        import ssl
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = make_cert(directory)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, key)
        self.messages: list = []
        self.rejected_rcpt = "nobody@vinhyen.vn"
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
                if address == outer.rejected_rcpt:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                msg = message_from_bytes(envelope.original_content, policy=policy.default)
                outer.messages.append({"tls": session.ssl is not None, "rcpt": list(envelope.rcpt_tos), "msg": msg,
                                       "auth": session.authenticated})
                return "250 Message accepted for delivery"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == outer.USER and \
                auth_data.password.decode() == outer.PASSWORD
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx,
                                     require_starttls=True, authenticator=authenticator, auth_require_tls=True)
        self.controller.start()
        self.port = port

    def close(self) -> None:
        self.controller.stop()
