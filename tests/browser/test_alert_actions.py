"""Attributable actions in the browser (issue 17): the console shows who is signed in, acknowledges
with a comment, comments, assigns the alert to a colleague picked from the people list and unassigns;
the wall shows who acknowledged and who is assigned."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.test_alert_flow import LIVE, post_rain, sign_in

pytestmark = pytest.mark.integration

ICT = timezone(timedelta(hours=7))


def add_operator(server, name: str) -> str:
    status, body = server.post_json("/api/principals", {"name": name, "role": "operator"}, token=server.admin_token)
    assert status == 201, body
    return body["token"]


def test_console_names_the_operator_assigns_and_wall_shows_who(new_page, fresh_server, artifacts):
    server = fresh_server
    lan = add_operator(server, "lan")
    add_operator(server, "minh")

    wall = new_page(1920, 1080)
    wall.goto(server.kiosk_url("/wall/alerts"))
    wall.wait_for_selector(LIVE, timeout=20_000)
    station = server.catalog()["stations"][0]["id"]
    wm = server.get_json("/healthz")["watermarks"]["rain"]
    post_rain(server, station, datetime.fromisoformat(wm).astimezone(ICT) + timedelta(seconds=1), 120.0)
    row_sel = f'[data-testid="alert-row"][data-entity="{station}"][data-rule="rain_3h_intense"]'
    wall.wait_for_selector(row_sel, timeout=5_000)
    alert_id = wall.get_attribute(row_sel, "data-alert-id")

    console = new_page(1600, 900)
    sign_in(console, server, lan)
    who = console.locator('[data-testid="console-who"]')
    who.wait_for(timeout=5_000)
    console.wait_for_function("() => document.querySelector('[data-testid=\"console-who\"]').dataset.name === 'lan'",
                              timeout=5_000)
    assert "lan" in who.inner_text() and "điều hành" in who.inner_text()  # Vietnamese by default

    row = console.locator(f'[data-testid="console-alert-row"][data-alert-id="{alert_id}"]')
    row.wait_for(timeout=10_000)
    row.locator('[data-testid="ack-button"]').click()
    console.fill('[data-testid="ack-comment"]', "Đã báo Ban chỉ huy PCTT huyện")
    console.click('[data-testid="ack-confirm"]')
    console.wait_for_selector(f'[data-testid="console-alert-row"][data-alert-id="{alert_id}"][data-acknowledged="true"]',
                              timeout=5_000)
    row.locator('[data-testid="comment-button"]').click()
    console.fill('[data-testid="comment-text"]', "Đội xung kích đang đến")
    console.click('[data-testid="comment-confirm"]')
    thread = row.locator('[data-testid="comment-thread"] [data-testid="comment"]')
    thread.nth(1).wait_for(timeout=5_000)
    texts = [thread.nth(i).inner_text() for i in range(thread.count())]
    assert "Đã báo Ban chỉ huy" in texts[0] and "Đội xung kích" in texts[1]
    now = datetime.now(ICT)  # author and local (Asia/Ho_Chi_Minh) time of each comment
    local = {(now - timedelta(minutes=m)).strftime("%H:%M") for m in range(3)}
    assert all(t.startswith("lan · ") and re.search(r"\d{2}:\d{2}", t)[0] in local for t in texts), (texts, local)

    # assign to a colleague chosen from the people list
    row.locator('[data-testid="assign-button"]').click()
    console.wait_for_selector('[data-testid="assign-to"] option[value="minh"]', state="attached", timeout=5_000)
    options = console.locator('[data-testid="assign-to"] option').evaluate_all("os => os.map(o => o.value)")
    assert "minh" in options and "lan" in options and "demo-viewer" not in options  # viewers cannot act
    console.select_option('[data-testid="assign-to"]', "minh")
    console.click('[data-testid="assign-confirm"]')
    console.wait_for_function(
        f"() => document.querySelector('[data-alert-id=\"{alert_id}\"] [data-testid=\"assignee\"]')?.innerText.includes('minh')",
        timeout=5_000)
    assert "lan" in row.locator('[data-testid="assignee"]').inner_text()  # assigned by lan
    console.screenshot(path=str(artifacts / "console-assigned.png"))

    # the wall: acknowledged by lan, assigned to minh, the latest comment with its author
    wall.wait_for_selector(f'{row_sel} [data-testid="alert-assignee"][data-name="minh"]', timeout=5_000)
    assert wall.locator(f'{row_sel} [data-testid="alert-acked-by"]').inner_text().strip() == "lan"
    assert "Phụ trách: minh" in wall.locator(f'{row_sel} [data-testid="alert-assignee"]').inner_text()
    assert "lan: Đội xung kích" in wall.locator(f'{row_sel} [data-testid="alert-last-comment"]').inner_text()
    wall.screenshot(path=str(artifacts / "wall-acked-assigned-1920x1080.png"))

    # unassign: gone from the console and from the wall
    row.locator('[data-testid="unassign-button"]').click()
    console.wait_for_function(
        f"() => !document.querySelector('[data-alert-id=\"{alert_id}\"] [data-testid=\"assignee\"] .assignee')",
        timeout=5_000)
    wall.wait_for_selector(f'{row_sel} [data-testid="alert-assignee"]', state="detached", timeout=5_000)
    history = server.get_json(f"/api/alerts/{alert_id}/history", token=server.viewer_token)["history"]
    assert [(h["transition"], h.get("by")) for h in history][1:] == [
        ("acknowledged", "lan"), ("commented", "lan"), ("assigned", "lan"), ("unassigned", "lan")]

    # the link in a notification or CAP message (/console#alert=<id>) marks that alert's row
    console.goto(f"{server.base}/console#alert={alert_id}")
    console.wait_for_selector(f'[data-testid="console-alert-row"][data-alert-id="{alert_id}"].linked', timeout=10_000)
    assert console.locator("tr.linked").count() == 1
