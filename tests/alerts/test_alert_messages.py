"""Snapshots of every built-in rule's message, firing and resolved, in Vietnamese and English.

Each case drives the real AlertEngine with the built-in pack and a catalog whose names are the demo's
kind ("Trạm đo mưa …", "Thành phố …" with an English name), so what is asserted is what the wall shows.
The expected texts are written here, to be read: change them only when the wording is meant to change.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from alerttest_util import T0, cam, ind, rain
from alerts.engine import AlertEngine
from streams.pipeline import Pipeline
from alerts.rules import builtin_rules
from ioc.catalog import parse_catalog
from ioc.timeutil import local

CATALOG = parse_catalog("""
province: VP
name: Demo
units:
  - {id: vinh-phuc, name: Tỉnh Vĩnh Phúc, name_en: Vinh Phuc Province, level: province}
  - {id: vinh-yen, name: Thành phố Vĩnh Yên, name_en: Vinh Yen City, level: district, parent: vinh-phuc}
stations:
  - {id: VP-001, name: Trạm đo mưa Tam Đảo, lat: 21.459, lon: 105.646, district: vinh-yen}
  - {id: VP-002, name: Trạm đo mưa Liên Bảo, lat: 21.31, lon: 105.6, district: vinh-yen}
sites:
  - {id: mc-vinh-yen, name: Một cửa Vĩnh Yên, unit: vinh-yen, counters: 4, cameras: [cam-vy-1], lat: 21.3, lon: 105.59}
""", "messages-catalog.yaml")

RULES = builtin_rules()
OWNED_ELSEWHERE = {"rain_risk_level", "flash_flood_landslide_risk"}  # area levels (alerts/risk/), tested there


def engine(name: str) -> AlertEngine:
    return AlertEngine([r for r in RULES if r.name == name], CATALOG)


def texts(alerts, state: str) -> list[tuple[str, str]]:
    return [(a.message["vi"], a.message["en"]) for a in alerts if a.state == state]


def run_rain_24h():
    e = engine("rain_24h_very_heavy")
    out = e.process([], [ind("rain_mm", "24h", "VP-001", T0 + 600, 1234.56)], {"rain": T0 + 600})
    out += e.process([], [ind("rain_mm", "24h", "VP-001", T0 + 3 * 3600, 85.2)], {"rain": T0 + 3 * 3600})
    return out


def run_rain_3h():
    e = engine("rain_3h_intense")  # a gauge missing from the catalog keeps the word "trạm" before its id
    out = e.process([], [ind("rain_mm", "3h", "VP-999", T0 + 600, 72.4)], {"rain": T0 + 600})
    out += e.process([], [ind("rain_mm", "3h", "VP-999", T0 + 3600, 58.2)], {"rain": T0 + 3600})
    return out


def run_rain_1h():
    e = engine("rain_1h_local_heavy")
    out = e.process([], [ind("rain_mm", "1h", "VP-001", T0 + 600, 34.25)], {"rain": T0 + 600})
    out += e.process([], [ind("rain_mm", "1h", "VP-001", T0 + 3600, 20.0)], {"rain": T0 + 3600})
    return out


def run_dossier_overdue():
    e = engine("dossier_overdue")
    out = []
    for i, v in enumerate([1, 3, 0]):
        t = T0 + i * 600
        out += e.process([], [ind("dossier_overdue_open", "now", "vinh-yen", t, v)], {"dossier": t})
    return out


def run_dossier_overdue_many():
    e = engine("dossier_overdue")
    return e.process([], [ind("dossier_overdue_open", "now", "vinh-yen", T0, 1234)], {"dossier": T0})


def run_queue_long():
    e, site = engine("queue_long"), "mc-vinh-yen"
    out = e.process([], [ind("queue_waiting", "now", site, T0, 41), ind("queue_counters_open", "now", site, T0, 4)],
                    {"camera": T0})
    out += e.process([], [], {"camera": T0 + 300})
    out += e.process([], [ind("queue_waiting", "now", site, T0 + 400, 20)], {"camera": T0 + 400})
    out += e.process([], [], {"camera": T0 + 540})
    return out


def run_sensor_stale():
    e, out = engine("sensor_stale"), []
    for i in range(9):
        t = T0 + i * 300
        out += e.process([rain("VP-001", t, 0.0)] + ([rain("VP-002", t, 0.0)] if i == 0 else []), [], {"rain": t})
    out += e.process([rain("VP-002", T0 + 2700, 0.2)], [], {"rain": T0 + 2700})
    return out


def run_sensor_flatline():
    e, out = engine("sensor_flatline"), []
    for i in range(14):
        t = T0 + i * 300
        out += e.process([rain("VP-001", t, 2.4)], [], {"rain": t})
    out += e.process([rain("VP-001", T0 + 14 * 300, 0.4)], [], {"rain": T0 + 14 * 300})
    return out


def run_camera_flatline():
    e, out = engine("sensor_flatline"), []
    for i in range(14):
        t = T0 + i * 300
        out += e.process([cam("cam-vy-1", "mc-vinh-yen", t, 17, 2)], [], {"camera": t})
    return out


def run_implausible():
    pipe = Pipeline(CATALOG, engine("implausible_reading"))  # the rain processor quarantines the reading
    out = pipe.process([rain("VP-001", T0, 1.0)]).alerts
    out += pipe.process([rain("VP-001", T0 + 300, 5000.0)]).alerts
    out += pipe.process([rain("VP-001", T0 + 3900, 0.0)]).alerts
    return out


def run_implausible_camera():
    e = engine("implausible_reading")
    return e.process([cam("cam-vy-1", "mc-vinh-yen", T0, 900, 2)], [], {"camera": T0})


CASES = [
    ("rain_24h_very_heavy", run_rain_24h,
     ("Mưa rất to tại Trạm đo mưa Tam Đảo: 1.234,6 mm trong 24 giờ, vượt ngưỡng 100 mm.",
      "Very heavy rain at Trạm đo mưa Tam Đảo: 1,234.6 mm in 24 h, above the 100 mm threshold."),
     ("Đã hết mưa rất to tại Trạm đo mưa Tam Đảo (từ 13:10 28/10 đến 16:00 28/10): 85,2 mm trong 24 giờ, "
      "dưới ngưỡng 100 mm.",
      "Very heavy rain has ended at Trạm đo mưa Tam Đảo (13:10 28/10 to 16:00 28/10): 85.2 mm in 24 h, "
      "below the 100 mm threshold.")),
    ("rain_3h_intense", run_rain_3h,
     ("Mưa cường suất lớn tại trạm VP-999: 72,4 mm trong 3 giờ, đạt ngưỡng 70 mm.",
      "Intense rain at VP-999: 72.4 mm in 3 h, at or above the 70 mm threshold."),
     ("Đã hết mưa cường suất lớn tại trạm VP-999 (từ 13:10 28/10 đến 14:00 28/10): 58,2 mm trong 3 giờ, "
      "dưới ngưỡng 70 mm.",
      "Intense rain has ended at VP-999 (13:10 28/10 to 14:00 28/10): 58.2 mm in 3 h, below the 70 mm threshold.")),
    ("rain_1h_local_heavy", run_rain_1h,
     ("Mưa lớn cục bộ tại Trạm đo mưa Tam Đảo: 34,2 mm trong 1 giờ, vượt ngưỡng 30 mm.",
      "Localized heavy rain at Trạm đo mưa Tam Đảo: 34.2 mm in 1 h, above the 30 mm threshold."),
     ("Đã hết mưa lớn cục bộ tại Trạm đo mưa Tam Đảo (từ 13:10 28/10 đến 14:00 28/10): 20,0 mm trong 1 giờ, "
      "dưới ngưỡng 30 mm.",
      "Localized heavy rain has ended at Trạm đo mưa Tam Đảo (13:10 28/10 to 14:00 28/10): 20.0 mm in 1 h, "
      "below the 30 mm threshold.")),
    ("dossier_overdue", run_dossier_overdue,
     ("Thành phố Vĩnh Yên: 1 hồ sơ đã quá hạn trả kết quả mà chưa xử lý xong.",
      "Vinh Yen City: 1 dossier is past the promised return time and not yet processed."),
     ("Thành phố Vĩnh Yên: không còn hồ sơ quá hạn chưa xử lý (lúc 13:20 28/10; cảnh báo từ 13:00 28/10).",
      "Vinh Yen City: no overdue dossier is left unprocessed (at 13:20 28/10; alert since 13:00 28/10).")),
    ("dossier_overdue", run_dossier_overdue_many,
     ("Thành phố Vĩnh Yên: 1.234 hồ sơ đã quá hạn trả kết quả mà chưa xử lý xong.",
      "Vinh Yen City: 1,234 dossiers are past the promised return time and not yet processed."),
     None),
    ("queue_long", run_queue_long,
     ("Hàng chờ dài tại Một cửa Vĩnh Yên: 10,2 người mỗi quầy đang mở, vượt ngưỡng 8 người mỗi quầy.",
      "Long queue at Một cửa Vĩnh Yên: 10.2 people per open counter, above the threshold of 8 per counter."),
     ("Hết hàng chờ dài tại Một cửa Vĩnh Yên: còn 5,0 người mỗi quầy đang mở (lúc 13:09 28/10; "
      "cảnh báo từ 13:05 28/10).",
      "The long queue at Một cửa Vĩnh Yên has cleared: 5.0 people per open counter (at 13:09 28/10; "
      "alert since 13:05 28/10).")),
    ("sensor_stale", run_sensor_stale,
     ("Trạm đo mưa Liên Bảo mất tín hiệu: không gửi dữ liệu 30 phút (lần cuối lúc 13:00 28/10).",
      "Trạm đo mưa Liên Bảo is not reporting: no reading for 30 minutes (last at 13:00 28/10)."),
     ("Trạm đo mưa Liên Bảo đã gửi dữ liệu trở lại lúc 13:45 28/10 (mất tín hiệu từ 13:00 28/10).",
      "Trạm đo mưa Liên Bảo is reporting again since 13:45 28/10 (silent since 13:00 28/10).")),
    ("sensor_flatline", run_sensor_flatline,
     ("Trạm đo mưa Tam Đảo báo cùng một giá trị 2,4 mm liên tục 60 phút (13 lần đo) — có thể cảm biến bị kẹt.",
      "Trạm đo mưa Tam Đảo has reported the same value 2.4 mm for 60 minutes (13 readings) — the sensor may be "
      "stuck."),
     ("Trạm đo mưa Tam Đảo đã báo giá trị khác lúc 14:10 28/10: không còn nghi cảm biến bị kẹt "
      "(cảnh báo từ 14:00 28/10).",
      "Trạm đo mưa Tam Đảo reported a different value at 14:10 28/10: no longer looks stuck "
      "(alert since 14:00 28/10).")),
    ("sensor_flatline", run_camera_flatline,
     ("cam-vy-1 (Một cửa Vĩnh Yên) báo cùng một giá trị 17 người liên tục 60 phút (13 lần đo) — có thể cảm biến "
      "bị kẹt.",
      "cam-vy-1 (Một cửa Vĩnh Yên) has reported the same value 17 people for 60 minutes (13 readings) — the sensor "
      "may be stuck."),
     None),
    ("implausible_reading", run_implausible,
     ("Trạm đo mưa Tam Đảo: số đo 5.000 mm lúc 13:05 28/10 không hợp lý về vật lý (lớn hơn mức một lần đo có "
      "thể ghi được); số đo này không được cộng vào tổng lượng mưa — cần kiểm tra thiết bị.",
      "Trạm đo mưa Tam Đảo: the reading 5,000 mm at 13:05 28/10 is physically implausible (more than one reading "
      "can hold); it is kept out of the rain totals — please check the device."),
     ("Trạm đo mưa Tam Đảo: hết cảnh báo số đo không hợp lý lúc 14:05 28/10; số đo không hợp lý gần nhất là "
      "5.000 mm.",
      "Trạm đo mưa Tam Đảo: the implausible-reading alert ended at 14:05 28/10; the last implausible reading was "
      "5,000 mm.")),
    ("implausible_reading", run_implausible_camera,
     ("cam-vy-1 (Một cửa Vĩnh Yên): số đo 900 người lúc 13:00 28/10 không hợp lý về vật lý (nhiều người hơn một "
      "khung hình camera có thể chứa) — cần kiểm tra thiết bị.",
      "cam-vy-1 (Một cửa Vĩnh Yên): the reading 900 people at 13:00 28/10 is physically implausible (more people "
      "than one camera view can hold) — please check the device."),
     None),
]


@pytest.mark.parametrize("rule,run,firing,resolved", CASES, ids=[f"{c[0]}-{c[1].__name__}" for c in CASES])
def test_builtin_rule_messages(rule, run, firing, resolved):
    out = run()
    assert {a.rule for a in out} == {rule}
    assert texts(out, "firing")[0] == firing
    assert texts(out, "resolved") == ([resolved] if resolved else [])


def test_a_firing_alert_whose_value_changes_shows_the_new_value():
    """The wall re-reads the active alert: its text follows the value (no stale number, no old threshold)."""
    e = engine("rain_24h_very_heavy")
    e.process([], [ind("rain_mm", "24h", "VP-001", T0, 104.25)], {"rain": T0})
    e.process([], [ind("rain_mm", "24h", "VP-001", T0 + 300, 150.0)], {"rain": T0 + 300})
    (a,) = e.active()
    assert a.message["vi"] == "Mưa rất to tại Trạm đo mưa Tam Đảo: 150,0 mm trong 24 giờ, vượt ngưỡng 100 mm."


def test_anomaly_messages_with_the_values_the_engine_passes():
    """The anomaly detector's numbers depend on days of history: render its built-in templates with typed
    values of the shape alerts/anomaly/explain.py gives (the engine path is tests/alerts/test_anomaly_rule.py)."""
    from alerts.messages import render_all

    rule = next(r for r in RULES if r.name == "anomaly")
    at = local(T0 + 3600)
    values = {"entity_name": {"vi": "Thành phố Vĩnh Yên", "en": "Vinh Yen City"}, "at": "14:00",
              "observed": "57", "observed_vi": "57", "expected_low": "8.5", "expected_low_vi": "8,5",
              "expected_high": "21", "expected_high_vi": "21", "direction_vi": "cao hơn", "direction_en": "above",
              "scale_vi": "một lần đo đơn lẻ", "scale_en": "a single reading", "score": "0.97", "score_vi": "0,97",
              "value": 12.0, "ts": at, "started": at}
    assert render_all(rule.message, values) == {
        "vi": "Thành phố Vĩnh Yên: số hồ sơ tiếp nhận trong giờ đến 14:00 là 57, cao hơn khoảng thường lệ 8,5–21 "
              "(phát hiện ở một lần đo đơn lẻ; điểm bất thường 0,97).",
        "en": "Vinh Yen City: dossiers received in the hour to 14:00 were 57, above the usual 8.5–21 "
              "(seen in a single reading; anomaly score 0.97).",
    }
    assert render_all(rule.resolved_message, values) == {
        "vi": "Thành phố Vĩnh Yên: số hồ sơ tiếp nhận đã trở lại khoảng thường lệ (giờ đến 14:00 ngày 28/10: 12 hồ sơ).",
        "en": "Vinh Yen City: dossiers received are back within the usual range (hour to 14:00 on 28/10: 12 dossiers).",
    }


def test_every_builtin_rule_has_a_snapshot_and_a_resolved_text():
    covered = {c[0] for c in CASES} | {"anomaly"}
    assert {r.name for r in RULES} - OWNED_ELSEWHERE == covered
    for r in RULES:
        if r.name not in OWNED_ELSEWHERE:
            assert r.resolved_message.keys() == {"vi", "en"}, r.name


def test_messages_carry_no_internal_names_or_iso_times():
    for rule, run, *_ in CASES:
        for a in run():
            for text in a.message.values():
                assert "rain_mm" not in text and "_" not in text.replace("cam-vy-1", ""), text
                assert "T13:" not in text and "+07:00" not in text, text
                assert isinstance(a.ts, str) and datetime.fromisoformat(a.ts)  # the record keeps ISO event time


def test_notifications_keep_the_alerts_vietnamese_numbers():
    """Notifications quote the alert's text as rendered: the thousands dot of '5.000 mm' stays a dot."""
    from alerts.notify.messages import render as notification

    (a,) = [x for x in run_implausible() if x.state == "firing"]
    record = {"rule": a.rule, "entity": a.entity, "state": a.state, "severity": a.severity, "ts": a.ts,
              "id": a.id, "labels": a.labels, "message": a.message}
    msg = notification([record], "firing", "vi")
    assert "số đo 5.000 mm lúc 13:05 28/10" in msg.text and "5,000" not in msg.text
