"""The wall's trend drawer (dashboards/wall/trends.js) against `ioc run --demo` in headless Chromium:
select a station, a unit and a site; the charts are drawn from /api/trends/* with the data they show."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

LIVE = '[data-testid="connection-status"][data-state="live"]'
SHOTS = Path("/tmp/shots")

NONZERO_BARS = """(testid) => [...document.querySelectorAll(`[data-testid="${testid}"]`)]
  .filter((r) => Number(r.getAttribute('height')) > 0).length"""


def drawn(page, kind: str, entity: str, timeout_ms: int = 15_000) -> dict:
    page.wait_for_selector(f'#trend-{kind}[data-state="drawn"][data-entity="{entity}"]', timeout=timeout_ms)
    return page.evaluate(f"() => window.iocTrends.data.{kind}")


def refreshed(page, kind: str, entity: str) -> dict:
    page.evaluate(f"() => window.iocTrends.showTrend('{kind}', '{entity}')")
    return drawn(page, kind, entity)


def test_trends_for_a_station_a_unit_and_a_site(new_page, ioc_server):
    page = new_page(1920, 1080)
    page.goto(ioc_server.kiosk_url("/"))
    page.wait_for_selector(LIVE, timeout=20_000)
    assert page.locator('[data-testid="trends-drawer"]').is_hidden()

    # --- rain: a station with rain in the last 24 h, picked in the rain table
    page.wait_for_function("""() => [...document.querySelectorAll('#rain-table tr[data-station]')]
        .some((tr) => tr.querySelector('td.strong')?.textContent.trim() !== '0,0')""", timeout=20_000)
    station = page.evaluate("""() => [...document.querySelectorAll('#rain-table tr[data-station]')]
        .find((tr) => tr.querySelector('td.strong').textContent.trim() !== '0,0').dataset.station""")
    page.click(f'#rain-table tr[data-station="{station}"]')
    assert page.locator('[data-testid="trends-drawer"]').is_visible()
    data = drawn(page, "rain", station)
    deadline = time.monotonic() + 20
    while True:  # the demo runs at 60x: compare the chart and the table at the same watermark
        now = page.evaluate(f"""() => {{ const r = window.iocWall.store.get('rain_mm', '24h', '{station}');
            const td = document.querySelector('#rain-table tr[data-station="{station}"] td.strong');
            return {{ts: r?.ts, value: r?.value, cell: td?.textContent.trim(),
                     legend: document.querySelector('#trend-rain .trend-legend')?.textContent ?? ''}}; }}""")
        if now["ts"] == data["watermark"] and f"{now['cell']} mm" in now["legend"] or time.monotonic() > deadline:
            break
        data = refreshed(page, "rain", station)
    store, cell, legend = now, now["cell"], now["legend"]
    assert store["ts"] == data["watermark"], (store, data["watermark"])
    wet_hours = sum(1 for b in data["bars"] if b["rain_mm"] > 0)
    assert wet_hours > 0
    assert page.evaluate(NONZERO_BARS, "rain-bar") == wet_hours
    assert page.locator('[data-testid="rain-bar"]').count() == len(data["bars"]) in (24, 25)
    curve = page.locator('[data-testid="rain-curve"]')
    assert float(curve.get_attribute("data-end-mm")) == data["total_mm"] == store["value"]
    assert int(curve.get_attribute("data-points")) == len(data["bars"])
    # the total in the legend is the 24 h value of the rain table, in Vietnamese format (decimal comma)
    assert f"{cell} mm" in legend and "Lũy tích" in legend, (legend, cell)

    # --- dossiers: a district picked in the ranking; 30 days, the month before the demo is demo history
    unit = page.evaluate("""() => { const c = window.iocWall.ui.catalog;
        return c.units.find((u) => u.level === 'district' && u.parent === c.rootId).id; }""")
    page.click(f'[data-testid="ranking-row"][data-unit="{unit}"]')
    days = drawn(page, "unit", unit)["days"]
    deadline = time.monotonic() + 60  # the backfill runs in a child process once the demo has caught up
    while sum(1 for d in days if d["source"] == "demo") < 25 and time.monotonic() < deadline:
        time.sleep(1)
        days = refreshed(page, "unit", unit)["days"]
    assert len(days) == 30 and sum(1 for d in days if d["source"] == "demo") >= 25
    assert page.locator('[data-testid="dossier-bar"]').count() == 30
    assert page.evaluate(NONZERO_BARS, "dossier-bar") == sum(1 for d in days if d["received"])
    rated = sum(1 for d in days if d["on_time_rate"] is not None)
    assert rated >= 20 and int(page.locator('[data-testid="ontime-line"]').get_attribute("data-points")) == rated
    assert "mô phỏng" in page.locator("#trend-unit .trend-sub").inner_text()

    # --- queue: a site of the queue panel (it may be hidden while a critical alert enlarges the alert list)
    site = page.locator('[data-testid="queue-site"]').first.get_attribute("data-site")
    page.locator(f'[data-testid="queue-site"][data-site="{site}"]').dispatch_event("click")
    q = refreshed(page, "site", site)
    office = q["hours"][7:18]
    assert page.locator('[data-testid="queue-bar"]').count() == 11
    assert page.evaluate(NONZERO_BARS, "queue-bar") == sum(1 for h in office if h["waiting_mean"])
    usual = sum(1 for h in office if h["usual"] is not None)
    assert usual == 11 and len(q["usual_from"]) == 10  # ten earlier working days: live + demo history
    assert int(page.locator('[data-testid="queue-usual"]').get_attribute("data-points")) == usual

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "wall-trends.png"))

    # English labels after the language switch; closing hides the drawer
    page.click('[data-testid="lang-toggle"]')
    page.wait_for_function("() => document.querySelector('#trend-rain .trend-title').textContent.includes('Rain')")
    assert "Cumulative" in page.locator("#trend-rain .trend-legend").inner_text()
    page.click('[data-testid="trends-close"]')
    assert page.locator('[data-testid="trends-drawer"]').is_hidden()
