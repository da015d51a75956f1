"""SMTP e-mail (stdlib smtplib/email): STARTTLS on 587 by default, or implicit TLS (`ssl: true`, 465).

The Message-ID is derived from the delivery key, so a message re-sent after a
crash between the server's 250 and our bookkeeping is recognisable as the same
one.  4xx SMTP replies and connection errors are retried; 5xx replies (bad
recipient, refused) fail with the server's reply.  The password comes from the
environment variable the configuration names and is never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from alerts.notify.channels.base import Outgoing, SendResult


class EmailChannel:
    name = "email"

    def __init__(self, settings) -> None:
        o = settings.options
        self.host, self.port = str(o["host"]), int(o.get("port", 465 if o.get("ssl") else 587))
        self.starttls, self.implicit_tls = bool(o.get("starttls", True)), bool(o.get("ssl", False))
        self.username, self.sender = o.get("username"), str(o["from"])
        self.ca_file, self.timeout_s = o.get("ca_file"), float(o.get("timeout_s", 15))
        self._password = settings.secret

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()

    def build(self, msg: Outgoing) -> EmailMessage:
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = self.sender, msg.address, msg.subject
        m["Date"] = formatdate(localtime=False)
        domain = self.sender.rsplit("@", 1)[-1].strip("> ")
        m["Message-ID"] = f"<{hashlib.sha1(msg.key.encode()).hexdigest()}@{domain}>"
        m["Auto-Submitted"] = "auto-generated"
        m.set_content(msg.text)
        return m

    def _send_sync(self, msg: Outgoing) -> SendResult:
        email = self.build(msg)
        try:
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=self._context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with smtp:
                smtp.ehlo()
                if self.starttls and not self.implicit_tls:
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password.reveal() if self._password else "")
                refused = smtp.send_message(email)
            if refused:
                code, reply = next(iter(refused.values()))
                return SendResult(False, 400 <= code < 500, f"SMTP {code}: {reply.decode(errors='replace')[:200]}")
            return SendResult(True, provider_id=email["Message-ID"])
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return SendResult(False, 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code}: {text[:200]}")
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return SendResult(False, 400 <= code < 500, f"SMTP {code}: {reply.decode(errors='replace')[:200]}")
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(False, True, f"{type(exc).__name__}: {str(exc)[:200]}")

    async def send(self, msg: Outgoing) -> SendResult:
        return await asyncio.to_thread(self._send_sync, msg)
