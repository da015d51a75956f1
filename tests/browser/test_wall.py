"""The wall display against `ioc run --demo` in headless Chromium."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

LIVE = '[data-testid="connection-status"][data-state="live"]'
PANELS = ["kpi", "ranking", "rain", "queues", "alerts"]
PANEL_TESTID = {"ranking": "unit-ranking", "rain": "rain-map", "queues": "queue-panel", "alerts": "alert-list"}


def open_wall(new_page, server, path="/", width=1920, height=1080):
    page = new_page(width, height)
    page.goto(server.kiosk_url(path))  # signs in once; later goto()s go by the session cookie
    page.wait_for_selector(LIVE, timeout=20_000)
    return page


def test_wall_reaches_live_and_shows_values(new_page, ioc_server):
    page = open_wall(new_page, ioc_server)
    catalog = ioc_server.catalog()
    # KPI tiles: one per indicator of the province; at least one gets a value (not grey)
    assert page.locator('[data-testid="kpi-tile"]').count() >= 6
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="kpi-tile"]')].some(t => t.dataset.status !== 'grey')""",
        timeout=20_000)
    for tile in page.locator('[data-testid="kpi-tile"]').all():
        assert tile.get_attribute("data-status") in {"green", "yellow", "red", "grey", "neutral"}
        # every tile states its data age (or that it has no data)
        assert tile.locator(".tile-age").inner_text().strip()
    # map: one mark per catalog station, and values arrive
    marks = page.locator('[data-testid="rain-map"] [data-testid="station-mark"]')
    assert marks.count() == len(catalog["stations"])
    page.wait_for_selector('[data-testid="station-mark"][data-has-data="true"]', timeout=20_000)
    # ranking lists the province's children; queues list the sites
    page.wait_for_selector('[data-testid="unit-ranking"] [data-testid="ranking-row"]', timeout=20_000)
    if catalog.get("sites"):
        assert page.locator('[data-testid="queue-panel"] [data-testid="queue-site"]').count() == len(catalog["sites"])
        # attached, not visible: a new critical alert (the demo storm) rightly enlarges the alert panel over the queues
        page.wait_for_selector('[data-testid="queue-site"][data-has-data="true"]', state="attached", timeout=20_000)
    assert page.locator('[data-testid="alert-list"]').is_visible()


def test_stale_stations_are_marked_never_zero(new_page, ioc_server):
    page = open_wall(new_page, ioc_server)
    page.wait_for_selector('[data-testid="station-mark"][data-has-data="true"]', timeout=20_000)
    stale = page.locator('[data-testid="station-mark"][data-stale="true"]')
    for i in range(stale.count()):
        mark = stale.nth(i)
        label = mark.locator("text.val").text_content().strip().lower()
        assert label in {"mất tín hiệu", "no signal"}, label
        assert "stale" in mark.get_attribute("class")
    # stations without any record are drawn as no-data, with a dash, not 0
    for mark in page.locator('[data-testid="station-mark"][data-has-data="false"]').all():
        assert mark.locator("text.val").text_content().strip() in {"—", "mất tín hiệu", "no signal"}


def test_drill_down_province_to_district_to_commune(new_page, ioc_server):
    catalog = ioc_server.catalog()
    parents = {u["parent"] for u in catalog["units"] if u.get("parent")}
    district = next((u for u in catalog["units"] if u["level"] == "district" and u["id"] in parents), None)
    assert district is not None, "the demo catalog has districts with communes"
    page = open_wall(new_page, ioc_server)
    page.click(f'[data-testid="ranking-row"][data-unit="{district["id"]}"]')
    # the district's tiles appear next to the province's, and its communes are listed
    page.wait_for_selector(f'[data-testid="kpi-tile"][data-unit="{district["id"]}"]', timeout=5_000)
    commune = next(u for u in catalog["units"] if u.get("parent") == district["id"])
    page.wait_for_selector(f'[data-testid="ranking-row"][data-unit="{commune["id"]}"]', timeout=5_000)
    page.click(f'[data-testid="ranking-row"][data-unit="{commune["id"]}"]')
    page.wait_for_selector(f'[data-testid="kpi-tile"][data-unit="{commune["id"]}"]', timeout=5_000)
    # back up through the breadcrumb
    root = next(u for u in catalog["units"] if u["level"] == "province")
    page.click(f'#crumbs [data-unit="{root["id"]}"]')
    page.wait_for_selector(f'[data-testid="ranking-row"][data-unit="{district["id"]}"]', timeout=5_000)


@pytest.mark.parametrize("panel", PANELS)
def test_single_panel_routes(new_page, ioc_server, panel):
    page = open_wall(new_page, ioc_server, f"/wall/{panel}")
    assert page.locator(f'section[data-panel="{panel}"]').is_visible()
    for other in PANELS:
        if other != panel:
            assert not page.locator(f'section[data-panel="{other}"]').is_visible()
    if panel in PANEL_TESTID:
        assert page.locator(f'[data-testid="{PANEL_TESTID[panel]}"]').is_visible()


def test_language_switch(new_page, ioc_server):
    page = open_wall(new_page, ioc_server)
    assert page.evaluate("document.documentElement.lang") == "vi"
    assert page.locator("#conn-label").inner_text() == "Trực tuyến"
    page.click('[data-testid="lang-toggle"]')
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#conn-label").inner_text() == "Live"
    assert "Rain" in page.locator("#panel-rain h2").inner_text().title()


def test_sound_toggle_is_visible_and_remembered(new_page, ioc_server):
    page = open_wall(new_page, ioc_server)
    toggle = page.locator('[data-testid="sound-toggle"]')
    assert toggle.is_visible()
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    page.reload()
    page.wait_for_selector(LIVE, timeout=20_000)
    assert page.locator('[data-testid="sound-toggle"]').get_attribute("aria-pressed") == "false"


@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_screenshots(new_page, ioc_server, artifacts, width, height):
    page = open_wall(new_page, ioc_server, "/", width, height)
    page.wait_for_selector('[data-testid="station-mark"][data-has-data="true"]', timeout=20_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts / f"wall-{width}x{height}.png"))
    # nothing overflows the viewport: a wall has no scroll bars
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth && document.documentElement.scrollHeight <= innerHeight")
    for panel in ("rain", "alerts"):
        page.goto(f"{ioc_server.base}/wall/{panel}")
        page.wait_for_selector(LIVE, timeout=20_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artifacts / f"wall-{panel}-{width}x{height}.png"))
    page.goto(f"{ioc_server.base}/console")  # a viewer's session: the console answers its sign-in page (403)
    page.wait_for_selector('[data-testid="signin-page"]')
    page.screenshot(path=str(artifacts / f"console-signin-{width}x{height}.png"))
