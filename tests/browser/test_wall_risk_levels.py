"""Decision 18 levels on the wall: an operator's level shows who set it, and the reason (issue 12)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

LIVE = '[data-testid="connection-status"][data-state="live"]'
REASON = "Bản tin cảnh báo lũ quét số 12 của Đài KTTV"


def test_an_operators_level_is_shown_with_who_and_why(new_page, fresh_server, artifacts):
    status, body = fresh_server.post_json("/api/areas/vinh-tuong/risk-level", {"level": 3, "reason": REASON},
                                          token=fresh_server.operator_token)
    assert status == 200 and body["alert"]["labels"]["basis"] == "manual", body
    page = new_page(1920, 1080)
    page.goto(fresh_server.kiosk_url("/wall/alerts"))
    page.wait_for_selector(LIVE, timeout=20_000)
    row = page.locator('[data-testid="alert-row"][data-entity="vinh-tuong"][data-rule="rain_risk_level"]')
    row.wait_for(timeout=20_000)
    chip = row.locator('[data-testid="alert-risk-level"]')
    assert chip.get_attribute("data-basis") == "manual"
    assert chip.inner_text().strip() == "Cấp 3 · do operator đặt" and chip.get_attribute("title") == REASON
    assert REASON in row.inner_text() and "Điều 4" in row.inner_text()
    page.screenshot(path=str(artifacts / "wall-alerts-risk-manual.png"))
