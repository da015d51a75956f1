"""A storm through a real `ioc run`: the right people per route and language are told once per incident
(e-mail to a real SMTP server over STARTTLS, Telegram/Zalo/SMS bodies to local provider servers), the
unacknowledged part escalates after the route's time, the acknowledged part does not, and a SIGKILL
restart in between sends nothing twice."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import AS_INGEST, AS_OPERATOR, AS_VIEWER, free_port
from tests.conftest import wait_for as _wait_for
from tests.notify.providers import SMS_KEY, TELEGRAM_TOKEN, ZALO_TOKEN, Providers, Smtp

pytestmark = pytest.mark.integration

CONFIG = """
title: {{vi: "IOC Vĩnh Phúc", en: "Vinh Phuc IOC"}}
channels:
  email: {{host: 127.0.0.1, port: {smtp}, starttls: true, username: "{user}", password_env: T_SMTP_PW,
          from: "IOC Vĩnh Phúc <ioc@monitor.vinhphuc.gov.vn>", ca_file: "{ca}"}}
  telegram: {{token_env: T_TG, base_url: "{url}"}}
  zalo: {{access_token_env: T_ZL, base_url: "{url}"}}
  sms: {{url: "{url}/sms/send", secret_env: T_SMS, headers: {{Authorization: "Bearer {{secret}}"}},
        body: {{to: "{{phone}}", text: "{{text}}"}}}}
people:
  - {{id: binh, name: "Trần Thị Bình", language: vi, units: [vinh-yen], email: binh@vinhyen.vn, telegram: "111"}}
  - {{id: cuong, name: "Lê Văn Cường", language: vi, units: [tam-dao], zalo: "8412", phone: "+84987654321"}}
  - {{id: eng, name: "Duty engineer", language: en, telegram: "444"}}
  - {{id: tinh-vy, name: "Trực ban tỉnh 1", units: [vinh-phuc], telegram: "333"}}
  - {{id: tinh-td, name: "Trực ban tỉnh 2", units: [vinh-phuc], telegram: "334"}}
groups:
  - {{id: bch-pctt-vinh-yen, name: "Ban chỉ huy PCTT TP Vĩnh Yên", members: [binh]}}
routes:
  group_by: [incident]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 0s
  routes:
    - name: rain-vinh-yen
      match: {{hazard: heavy_rain, unit: vinh-yen}}
      receivers: [bch-pctt-vinh-yen]
      channels: [email, telegram]
      escalate: [{{after: 4s, receivers: [tinh-vy]}}]
      continue: true
    - name: rain-tam-dao
      match: {{hazard: heavy_rain, unit: tam-dao}}
      receivers: [cuong]
      escalate: [{{after: 4s, receivers: [tinh-td]}}]
      continue: true
    - name: rain-critical-en
      match: {{hazard: heavy_rain, severity: critical}}
      receivers: [eng]
"""

VINH_YEN, TAM_DAO = ("VP-001", "VP-002"), ("VP-010", "VP-011", "VP-012")




@pytest.fixture
def providers():
    p = Providers()
    yield p
    p.close()


def wait_for(predicate, timeout_s: float = 15.0):  # deliveries go through group waits
    return _wait_for(predicate, timeout_s, interval_s=0.1)


def test_storm_notifies_once_per_incident_escalates_unacked_and_survives_sigkill(ioc_server, providers, tmp_path):
    smtp = Smtp(tmp_path, free_port())
    try:
        cfg = tmp_path / "notify.yaml"
        cfg.write_text(CONFIG.format(smtp=smtp.port, user=Smtp.USER, ca=smtp.cert, url=providers.url), encoding="utf-8")
        env = {"IOC_NOTIFY_CONFIG": str(cfg), "T_SMTP_PW": Smtp.PASSWORD, "T_TG": TELEGRAM_TOKEN, "T_ZL": ZALO_TOKEN,
               "T_SMS": SMS_KEY, "IOC_PUBLIC_URL": "https://ioc.vinhphuc.gov.vn"}
        data = tmp_path / "data"
        # the station rules only: the Decision 18 area levels (alerts/rules/decision18.yaml) would add
        # commune, district and province alerts to the storm, whose routing is not what this test pins
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "off.yaml").write_text("rules:\n  - {name: rain_risk_level, enabled: false}\n"
                                        "  - {name: flash_flood_landslide_risk, enabled: false}\n", encoding="utf-8")
        server = ioc_server("--rules", str(rules), data_dir=data, extra_env=env)
        storm = [{"kind": "rain", "station": s, "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 7.5}
                 for m in range(5, 60, 5) for s in (*VINH_YEN, *TAM_DAO)]  # 82.5 mm in 3 h: rain_3h_intense
        assert httpx.post(server.url + "/api/ingest", headers=AS_INGEST, json=storm).json()["accepted"] == len(storm)

        # first messages: one per person and channel for the whole storm, each listing their own stations
        assert wait_for(lambda: len(smtp.messages) >= 1 and len(providers.zalo) >= 1 and len(providers.sms) >= 1
                        and len(providers.telegram) >= 2), (smtp.messages, providers.telegram, server.log())
        time.sleep(0.5)
        [mail] = smtp.messages
        assert mail["tls"] and mail["rcpt"] == ["binh@vinhyen.vn"]
        body = mail["msg"].get_content()
        assert mail["msg"]["Subject"].startswith("[IOC Vĩnh Phúc] KHẨN CẤP")
        assert "Liên Bảo" in body and "Tích Sơn" in body and "Tam Đảo" not in body and "75,0 mm" in body
        assert "https://ioc.vinhphuc.gov.vn/console#alert=" in body
        by_chat = {m["chat_id"]: m["text"] for m in providers.telegram}
        assert sorted(by_chat) == ["111", "444"]
        assert by_chat["444"].startswith("[Vinh Phuc IOC] CRITICAL") and "75.0 mm" in by_chat["444"]
        [zalo] = providers.zalo
        assert zalo["recipient"]["user_id"] == "8412" and "Đại Đình" in zalo["message"]["text"]
        assert "Liên Bảo" not in zalo["message"]["text"]
        [sms] = providers.sms
        assert sms["to"] == "+84987654321" and "console#alert=" in sms["text"] and len(sms["text"]) <= 320

        # Tam Đảo's alerts are acknowledged, Vĩnh Yên's are not; then a crash before the escalation is due
        alerts = httpx.get(server.url + "/api/alerts", headers=AS_VIEWER).json()["alerts"]
        firing = [a for a in alerts if a["state"] == "firing"]
        assert {a["entity"] for a in firing} == {*VINH_YEN, *TAM_DAO}
        ids = {a["entity"]: a["id"] for a in firing if a["rule"] == "rain_3h_intense"}
        for a in firing:  # every alert of the Tam Đảo stations (the 3 h rule and the risk level)
            if a["entity"] in TAM_DAO:
                r = httpx.post(f"{server.url}/api/alerts/{a['id']}/ack", headers=AS_OPERATOR, json={"comment": "đã nhận"})
                assert r.status_code == 200, r.text
        assert not any(m["chat_id"] in ("333", "334") for m in providers.telegram)  # not due yet
        server.kill()
        port = server.port
        server = ioc_server("--rules", str(rules), data_dir=data, port=port, extra_env=env)

        # escalation after 4 s without an acknowledgement: the province hears of Vĩnh Yên, not of Tam Đảo
        assert wait_for(lambda: any(m["chat_id"] == "333" for m in providers.telegram), 15), server.log()
        time.sleep(1.5)
        chats = [m["chat_id"] for m in providers.telegram]
        assert sorted(chats) == ["111", "333", "444"], chats  # nothing sent twice across the SIGKILL
        tier = next(m["text"] for m in providers.telegram if m["chat_id"] == "333")
        assert "Chưa ai xác nhận sau" in tier and "Liên Bảo" in tier
        assert len(smtp.messages) == 1 and len(providers.zalo) == 1 and len(providers.sms) == 1

        hist = httpx.get(f"{server.url}/api/alerts/{ids['VP-001']}/history", headers=AS_VIEWER).json()
        got = {(d["recipient"], d["channel"], d["status"]) for d in hist["deliveries"]}
        assert {("binh", "email", "sent"), ("binh", "telegram", "sent"), ("eng", "telegram", "sent"),
                ("tinh-vy", "telegram", "sent")} <= got
        metrics = httpx.get(server.url + "/metrics").text
        assert 'ioc_notifications_total{channel="telegram",outcome="sent"}' in metrics

        # the rain stops (12 h later every window is below its clear threshold): one closing message each,
        # to everyone told of the incident, the escalation tier included
        dry = [{"kind": "rain", "station": s, "ts": "2026-10-29T02:05:00+07:00", "rain_mm": 0.0}
               for s in (*VINH_YEN, *TAM_DAO)]
        assert httpx.post(server.url + "/api/ingest", headers=AS_INGEST, json=dry).json()["accepted"] == 5
        assert wait_for(lambda: len(smtp.messages) == 2 and len(providers.zalo) == 2 and len(providers.sms) == 2
                        and len(providers.telegram) == 6), (len(providers.telegram), server.log())
        time.sleep(1.0)
        assert "ĐÃ KẾT THÚC" in smtp.messages[1]["msg"]["Subject"] and len(smtp.messages) == 2
        ends = {m["chat_id"]: m["text"] for m in providers.telegram[3:]}
        assert sorted(ends) == ["111", "333", "444"] and ends["444"].startswith("[Vinh Phuc IOC] CRITICAL — RESOLVED: 5 alerts")
        assert "ĐÃ KẾT THÚC" in providers.zalo[1]["message"]["text"] and len(providers.telegram) == 6
    finally:
        smtp.close()
