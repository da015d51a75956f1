"""Each channel against a local server speaking its provider's shapes (real HTTP, real SMTP with STARTTLS),
and the service's retries: retry-after honoured, permanent errors failed with the reason, metrics."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from alerts.notify.channels import build_channels
from alerts.notify.channels.base import Outgoing
from alerts.notify.config import ConfigSource, parse_config
from alerts.notify.deliveries import DeliveryStore, NewDelivery
from alerts.notify.service import NotifyService
from ioc.metrics import Metrics
from tests.conftest import free_port
from tests.notify.helpers import UNITS
from tests.notify.providers import SMS_KEY, TELEGRAM_TOKEN, ZALO_TOKEN, Providers, Smtp


@pytest.fixture
def providers():
    p = Providers()
    yield p
    p.close()


@pytest.fixture
def smtp(tmp_path):
    s = Smtp(tmp_path, free_port())
    yield s
    s.close()


def config_text(url: str, smtp_port: int = 1, ca: str = "") -> str:
    return f"""
channels:
  email: {{host: 127.0.0.1, port: {smtp_port}, starttls: true, username: "{Smtp.USER}", password_env: SMTP_PW,
          from: "IOC Vĩnh Phúc <ioc@monitor.vinhphuc.gov.vn>", ca_file: "{ca}", timeout_s: 5}}
  telegram: {{token_env: TG, base_url: "{url}"}}
  zalo: {{access_token_env: ZL, base_url: "{url}"}}
  sms: {{url: "{url}/sms/send", secret_env: SMS, headers: {{Authorization: "Bearer {{secret}}"}},
        body: {{to: "{{phone}}", message: "{{text}}", ref: "{{key}}"}}}}
people:
  - {{id: binh, name: Bình, email: binh@vinhyen.vn, telegram: "111", zalo: "8412", phone: "+84912345678",
      webhook: "{url}/hook/binh"}}
routes: {{receivers: [binh]}}
retry: {{backoff: 1s, backoff_max: 10s, max_attempts: 3}}
"""


ENV = {"SMTP_PW": Smtp.PASSWORD, "TG": TELEGRAM_TOKEN, "ZL": ZALO_TOKEN, "SMS": SMS_KEY}


def channels(url: str, smtp_port: int = 1, ca: str = "", env=None):
    cfg = parse_config(config_text(url, smtp_port, ca), "notify.yaml", unit_ids=UNITS, env=env or ENV)
    return cfg, build_channels(cfg.channels)


def out(address: str, key: str = "binh|x|incident=i|msg:1") -> Outgoing:
    return Outgoing(key, address, "[IOC] KHẨN CẤP: 2 cảnh báo", "[IOC] KHẨN CẤP: 2 cảnh báo\n- Mưa 82,5 mm",
                    "[IOC] KHẨN CẤP: 2 cảnh báo http://x/console#alert=a", {"kind": "firing", "incident": "i"})


def send(ch, msg):
    return asyncio.run(ch.send(msg))


def test_email_over_starttls_with_login_to_a_real_smtp_server(smtp):
    _, chs = channels("http://127.0.0.1:1", smtp.port, str(smtp.cert))
    res = send(chs["email"], out("binh@vinhyen.vn"))
    assert res.ok, res.error
    [m] = smtp.messages
    assert m["tls"] and m["auth"] and m["rcpt"] == ["binh@vinhyen.vn"]
    assert m["msg"]["Subject"] == "[IOC] KHẨN CẤP: 2 cảnh báo" and "82,5 mm" in m["msg"].get_content()
    assert m["msg"]["Message-ID"] == res.provider_id  # derived from the delivery key: stable across retries
    bad = send(chs["email"], out(smtp.rejected_rcpt))
    assert not bad.ok and not bad.retryable and bad.error.startswith("SMTP 550")


def test_email_wrong_password_and_untrusted_certificate_fail_clearly(smtp):
    _, chs = channels("http://127.0.0.1:1", smtp.port, str(smtp.cert), env={**ENV, "SMTP_PW": "wrong"})
    res = send(chs["email"], out("binh@vinhyen.vn"))
    assert not res.ok and res.error.startswith("SMTP 535") and "wrong" not in res.error
    _, chs = channels("http://127.0.0.1:1", smtp.port, "")  # the self-signed certificate is not trusted
    res = send(chs["email"], out("binh@vinhyen.vn"))
    assert not res.ok and res.retryable and "CERTIFICATE_VERIFY_FAILED" in res.error and smtp.messages == []


def test_telegram_send_blocked_and_flood_limit(providers):
    _, chs = channels(providers.url)
    tg = chs["telegram"]
    res = send(tg, out("111"))
    assert res.ok and res.provider_id == "1" and providers.telegram[0]["chat_id"] == "111"
    assert providers.telegram[0]["text"].endswith("82,5 mm")
    providers.fail["telegram"].append(429)
    res = send(tg, out("111"))
    assert not res.ok and res.retryable and res.retry_after_s == 1 and "Telegram 429" in res.error
    res = send(tg, out("403"))
    assert not res.ok and not res.retryable and res.error == "Telegram 403: Forbidden: bot was blocked by the user"
    _, chs = channels(providers.url, env={**ENV, "TG": "999:wrong"})
    res = send(chs["telegram"], out("111"))
    assert not res.ok and "Unauthorized" in res.error and "999:wrong" not in res.error


def test_zalo_send_bad_token_and_rate_limit(providers):
    _, chs = channels(providers.url)
    res = send(chs["zalo"], out("8412"))
    assert res.ok and res.provider_id == "m1"
    assert providers.zalo[0] == {"recipient": {"user_id": "8412"}, "message": {"text": out("8412").text}}
    providers.fail["zalo"].append(-32)
    res = send(chs["zalo"], out("8412"))
    assert not res.ok and res.retryable and res.error.startswith("Zalo -32")
    _, chs = channels(providers.url, env={**ENV, "ZL": "expired"})
    res = send(chs["zalo"], out("8412"))
    assert not res.ok and not res.retryable and res.error == "Zalo -216: Access token is invalid"


def test_sms_template_and_retry_after(providers):
    _, chs = channels(providers.url)
    res = send(chs["sms"], out("+84912345678", key="binh|sms|incident=i|msg:1"))
    assert res.ok
    assert providers.sms == [{"to": "+84912345678", "message": out("x").short, "ref": "binh|sms|incident=i|msg:1"}]
    providers.fail["sms"].append(429)
    res = send(chs["sms"], out("+84912345678"))
    assert not res.ok and res.retryable and res.retry_after_s == 1.0
    _, chs = channels(providers.url, env={**ENV, "SMS": "other"})
    res = send(chs["sms"], out("+84912345678"))
    assert not res.ok and not res.retryable and res.error == "HTTP 401"


def test_webhook_channel_carries_the_idempotency_key(providers):
    _, chs = channels(providers.url)
    providers.fail["hook"].append(503)
    assert send(chs["webhook"], out(providers.url + "/hook/binh")).retryable
    assert send(chs["webhook"], out(providers.url + "/hook/binh")).ok
    assert providers.hooks[0]["key"] == "binh|x|incident=i|msg:1" and providers.hooks[0]["incident"] == "i"


class _NoOutbox:
    def outbox_since(self, seq, limit):
        return []

    def get_alert(self, aid):
        return None


def test_service_retries_honour_retry_after_fail_permanent_errors_and_count(providers, tmp_path):
    path = tmp_path / "notify.yaml"
    path.write_text(config_text(providers.url), encoding="utf-8")
    clock = [1000.0]
    metrics = Metrics(CollectorRegistry())
    src = ConfigSource(path, UNITS, env=ENV)
    svc = NotifyService(src, _NoOutbox(), tmp_path / "data", None, metrics, clock=lambda: clock[0])
    svc.config()

    def d(key, channel, address):
        return NewDelivery(key, "binh", channel, address, "incident=i", "msg:1", "firing", "s", "text", "short", {},
                           ("a1",), 1000.0)

    svc.store.advance(None, [], [d("k-tg", "telegram", "111"), d("k-blocked", "telegram", "403"),
                                 d("k-sms", "sms", "+84912345678")], 1000.0)
    providers.fail["telegram"].append(429)
    asyncio.run(svc.send_due())
    rows = {r["key"]: r for r in svc.store.for_alert("a1")}
    assert rows["k-tg"]["status"] == "retrying" and rows["k-tg"]["next_at"] == 1001.0  # retry_after 1 s
    assert "Telegram 429" in rows["k-tg"]["last_error"]
    # the whole channel waits for the provider: the blocked chat was deferred, not tried
    assert rows["k-blocked"]["status"] == "pending" and rows["k-blocked"]["attempts"] == 0
    assert rows["k-sms"]["status"] == "sent"
    clock[0] = 1001.5
    asyncio.run(svc.send_due())
    rows = {r["key"]: r for r in svc.store.for_alert("a1")}
    assert rows["k-tg"]["status"] == "sent" and rows["k-tg"]["attempts"] == 2
    assert rows["k-blocked"]["status"] == "failed" and "blocked" in rows["k-blocked"]["last_error"]
    sample = metrics.registry.get_sample_value
    assert sample("ioc_notifications_total", {"channel": "telegram", "outcome": "sent"}) == 1
    assert sample("ioc_notifications_total", {"channel": "telegram", "outcome": "retrying"}) == 1
    assert sample("ioc_notifications_total", {"channel": "telegram", "outcome": "failed"}) == 1
    assert len(providers.telegram) == 1
    svc.close()


def test_enqueueing_a_key_twice_is_a_no_op_across_reopen(tmp_path):
    st = DeliveryStore(tmp_path)
    nd = NewDelivery("k", "binh", "telegram", "111", "incident=i", "msg:1", "firing", "s", "t", "s", {}, ("a",), 0.0)
    assert st.advance(7, [], [nd], 0.0) == 1
    st.close()
    st = DeliveryStore(tmp_path)
    assert st.advance(8, [], [nd], 0.0) == 0 and st.cursor() == 8 and len(st.all()) == 1
    st.close()


def test_the_bot_token_never_reaches_the_logs(providers, caplog):
    import logging

    _, chs = channels(providers.url)
    with caplog.at_level(logging.DEBUG):
        assert send(chs["telegram"], out("111")).ok
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sendMessage" in logged and "/bot***/" in logged and TELEGRAM_TOKEN not in logged


def test_prune_forgets_old_sent_and_failed_but_keeps_pending(tmp_path):
    st = DeliveryStore(tmp_path)

    def nd(key):
        return NewDelivery(key, "binh", "telegram", "111", "incident=i", key, "firing", "s", "t", "s", {}, ("a",), 0.0)

    st.advance(None, [], [nd("old-sent"), nd("old-failed"), nd("old-pending")], 100.0)
    st.advance(None, [], [nd("new-sent")], 5000.0)
    st.mark_sent("old-sent", 101.0)
    st.mark_failed("old-failed", "Telegram 403: blocked")
    st.mark_sent("new-sent", 5001.0)
    assert st.prune(1000.0) == 2
    assert {d["key"] for d in st.for_alert("a")} == {"old-pending", "new-sent"}
    st.close()
