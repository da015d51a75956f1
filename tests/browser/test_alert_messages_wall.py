"""Alert messages as the wall shows them (issue 12): Vietnamese number format, station names not
doubled, English on the switch, and a resolved alert that says what ended.  Saves a screenshot of the
alert list for a person to check by eye (test-artifacts/wall-alert-messages-*.png)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.test_alert_flow import LIVE, post_rain

pytestmark = pytest.mark.integration

ICT = timezone(timedelta(hours=7))


def test_wall_alert_list_reads_for_people_in_both_languages(new_page, fresh_server, artifacts):
    server = fresh_server
    wall = new_page(1920, 1080)
    wall.goto(server.kiosk_url("/wall/alerts"))
    wall.wait_for_selector(LIVE, timeout=20_000)
    st = server.catalog()["stations"][0]
    assert st["name"].lower().startswith("trạm")  # the demo names its gauges "Trạm đo mưa …"
    wm = datetime.fromisoformat(server.get_json("/healthz")["watermarks"]["rain"]).astimezone(ICT)
    for i in range(8):  # 8 × 10 mm in the last 40 min (the gauge uploading late): ≥ 70 mm in 3 h, each plausible
        post_rain(server, st["id"], wm - timedelta(minutes=40 - 5 * i), 10.0)
    row = f'[data-testid="alert-row"][data-entity="{st["id"]}"][data-rule="rain_3h_intense"]'
    wall.wait_for_selector(f'{row}[data-state="firing"]', timeout=10_000)
    msg = wall.locator(f"{row} .alert-msg")
    vi = msg.inner_text()  # the text when it fired (70–80 mm, depending on how the batch was cut)
    assert re.fullmatch(rf"Mưa cường suất lớn tại {re.escape(st['name'])}: [78]\d,\d mm trong 3 giờ, "
                        r"đạt ngưỡng 70 mm\.", vi), vi
    wall.screenshot(path=str(artifacts / "wall-alert-messages-vi-1920x1080.png"))

    wall.click('[data-testid="lang-toggle"]')
    wall.wait_for_function(f"() => document.querySelector('{row} .alert-msg').innerText.startsWith('Intense rain')",
                           timeout=5_000)
    en = msg.inner_text()
    assert re.fullmatch(rf"Intense rain at {re.escape(st['name'])}: [78]\d\.\d mm in 3 h, "
                        r"at or above the 70 mm threshold\.", en), en
    wall.screenshot(path=str(artifacts / "wall-alert-messages-en-1920x1080.png"))
    wall.click('[data-testid="lang-toggle"]')

    # the demo's backfilled morning has ended alerts: each says what ended, with local times
    ENDED = {"dossier_overdue": ": không còn hồ sơ quá hạn chưa xử lý (lúc ",
             "anomaly": ": số hồ sơ tiếp nhận đã trở lại khoảng thường lệ (giờ đến ",
             "rain_3h_intense": "Đã hết mưa cường suất lớn tại ", "rain_24h_very_heavy": "Đã hết mưa rất to tại "}
    ended = wall.locator('[data-testid="alert-row"][data-state="resolved"]')
    ended.first.wait_for(timeout=10_000)
    seen = 0
    for i in range(ended.count()):
        r = ended.nth(i)
        rule, text = r.get_attribute("data-rule"), r.locator(".alert-msg").inner_text()
        assert "+07:00" not in text and "trạm Trạm" not in text, text
        if rule in ENDED:
            assert ENDED[rule] in text and re.search(r"\d{2}:\d{2}( ngày)? \d{2}/\d{2}", text), text
            seen += 1
    assert seen >= 1
    wall.evaluate("document.querySelector('.alerts-sep')?.scrollIntoView()")  # the ended alerts, below the firing
    wall.screenshot(path=str(artifacts / "wall-alert-messages-resolved-1920x1080.png"))
