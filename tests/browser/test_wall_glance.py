"""The wall at a glance (issue 16): critical alerts on top and highlighted even when already there at
page load, text that fits at 1920×1080 and 3840×2160, map labels that do not overlap, Decision 18 level
colours apart from the rain classes, and the province shown apart from the units it ranks.

Screenshots for a person to look at: /tmp/shots/wall-1920.png and /tmp/shots/wall-3840.png."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.browser.conftest import IocServer, _require_runtime, free_port
from tests.browser.test_alert_flow import LIVE, post_rain
from tests.browser.wall_measure import LABEL_BOXES_JS, OVERFLOW_JS, overlapping

pytestmark = pytest.mark.integration

ICT = timezone(timedelta(hours=7))
SHOTS = Path("/tmp/shots")
SEVERITY = {"critical": 3, "warning": 2, "info": 1}
RISK_RULES = {"rain_risk_level", "flash_flood_landslide_risk"}
MAX_RESOLVED_GROUPS = 20  # the wall lists the 20 most pressing resolved incidents


@pytest.fixture(scope="module")
def alert_server(tmp_path_factory, artifacts):
    """A demo server with a mix of alerts: three gauges over the critical thresholds (one acknowledged),
    an operator's level 4 on one of their communes, next to the demo's warnings, resolved alerts and incidents."""
    _require_runtime()
    srv = IocServer(free_port(), tmp_path_factory.mktemp("ioc-glance"), artifacts)
    srv.start()
    try:
        stations = [s for s in srv.catalog()["stations"] if s.get("commune")][:3]
        wm = datetime.fromisoformat(srv.get_json("/healthz")["watermarks"]["rain"]).astimezone(ICT)
        for i, st in enumerate(stations):
            post_rain(srv, st["id"], wm + timedelta(seconds=1 + i), 120.0)
        status, body = srv.post_json(f"/api/areas/{stations[0]['commune']}/risk-level",
                                     {"level": 4, "reason": "Bản tin lũ quét khẩn cấp số 7"}, token=srv.operator_token)
        assert status == 200, body
        crit = [a for a in srv.get_json("/api/alerts", token=srv.viewer_token)["alerts"]
                if a["rule"] == "rain_3h_intense" and a["state"] == "firing"]
        assert len(crit) >= 3, crit
        acked = next(a for a in crit if a["entity"] == stations[1]["id"])
        status, body = srv.post_json(f"/api/alerts/{acked['id']}/ack", {"comment": "Đã báo xã"}, token=srv.operator_token)
        assert status == 200, body
        srv.glance = {"stations": stations, "acked_id": acked["id"]}
        yield srv
    finally:
        srv.stop()


def open_wall(new_page, server, path="/", width=1920, height=1080):
    page = new_page(width, height)
    page.goto(server.kiosk_url(path))
    page.wait_for_selector(LIVE, timeout=20_000)
    return page


# the alerts as the wall holds them, and the rows it shows, read in one go once they agree
READ_ALERTS_JS = r"""
() => {
  const alerts = [...window.iocWall.store.alerts.values()].map((a) => ({
    id: a.id, rule: a.rule, severity: a.severity, state: a.state, acked: !!a.acknowledged,
    level: Number(a.labels?.level) || 0, incident: a.incident || null, t: Date.parse(a.started) || a._ts || 0 }));
  const rows = [...document.querySelectorAll('#alerts-body [data-testid="alert-row"]')].map((r) => r.dataset.alertId);
  return { alerts, rows };
}
"""


def expected_order(alerts: list[dict]) -> list[str]:
    """The documented order: firing above resolved; then severity (a Decision 18 level adds its level),
    unacknowledged before acknowledged, newest first; an incident's alerts together, placed by its first."""
    def key(a):
        score = SEVERITY.get(a["severity"], 0) * 10 + (a["level"] if a["rule"] in RISK_RULES else 0)
        urgency = 2 if a["state"] != "firing" else 1 if a["acked"] else 0
        return (a["state"] != "firing", -score, urgency, -a["t"], a["id"])

    groups: dict[str, list[dict]] = {}
    for a in alerts:
        groups.setdefault(a["incident"] or f"id:{a['id']}", []).append(a)
    ordered = sorted(((sorted(items, key=key), g) for g, items in groups.items()), key=lambda x: (key(x[0][0]), x[1]))
    out, resolved = [], 0
    for items, _ in ordered:
        if items[0]["state"] != "firing":
            resolved += 1
            if resolved > MAX_RESOLVED_GROUPS:
                continue
        out += [a["id"] for a in items]
    return out


def test_alert_order_highlight_at_load_and_level_colours(new_page, alert_server, artifacts):
    page = open_wall(new_page, alert_server)
    page.wait_for_selector(f'[data-alert-id="{alert_server.glance["acked_id"]}"][data-acknowledged="true"]', timeout=10_000)
    for _ in range(20):  # the list is redrawn on the next frame after a delta: read when it shows the store
        seen = page.evaluate(READ_ALERTS_JS)
        if sorted(seen["rows"]) == sorted(expected_order(seen["alerts"])):
            break
        page.wait_for_timeout(200)
    alerts, rows = seen["alerts"], seen["rows"]
    by_id = {a["id"]: a for a in alerts}
    # the mix the order is about
    firing = [by_id[i] for i in rows if by_id[i]["state"] == "firing"]
    assert sum(a["severity"] == "critical" for a in firing) >= 4, firing
    assert any(a["severity"] == "warning" for a in firing) and any(a["acked"] for a in firing)
    assert any(by_id[i]["state"] == "resolved" for i in rows)
    assert any(len([a for a in alerts if a["incident"] == inc]) > 1 for inc in {a["incident"] for a in alerts} - {None})
    assert rows == expected_order(alerts)
    # what a person sees: the operator's level 4 on top, criticals above all warnings, resolved at the bottom
    top = by_id[rows[0]]
    assert (top["rule"], top["level"], top["state"], top["acked"]) == ("rain_risk_level", 4, "firing", False), top
    sev = [SEVERITY[by_id[i]["severity"]] for i in rows if by_id[i]["state"] == "firing"]
    last_critical = max(i for i, s in enumerate(sev) if s == 3)
    first_warning = min(i for i, s in enumerate(sev) if s == 2)
    incidents_split = any(by_id[rows[i]]["incident"] for i in range(last_critical))  # only an incident may mix them
    assert last_critical < first_warning or incidents_split
    # resolved at the bottom: after every incident with something firing (whose resolved members stay with it)
    group_of = lambda i: by_id[i]["incident"] or i  # noqa: E731
    groups = list(dict.fromkeys(group_of(i) for i in rows))
    active = [any(by_id[i]["state"] == "firing" for i in rows if group_of(i) == g) for g in groups]
    assert active == sorted(active, reverse=True) and not all(active)
    # an incident's alerts stay together
    seen_inc: list[str] = []
    for i in rows:
        inc = by_id[i]["incident"]
        if inc and (not seen_inc or seen_inc[-1] != inc):
            assert inc not in seen_inc, f"incident {inc} split in the list"
            seen_inc.append(inc)

    # highlighted at load like a critical arriving while the page is open (a kiosk reboot must not hide it)
    unacked = [s["id"] for s in alert_server.glance["stations"][::2]]
    for station in unacked:
        row = page.locator(f'[data-testid="alert-row"][data-entity="{station}"][data-rule="rain_3h_intense"]')
        row.wait_for(timeout=10_000)
        assert "flash" in row.get_attribute("class").split(), station
    acked = page.locator(f'[data-alert-id="{alert_server.glance["acked_id"]}"]')
    assert "flash" not in acked.get_attribute("class").split()
    # the same cue as a critical that arrives while the page is open: counted, toast, alert panel enlarged
    assert int(page.evaluate("document.body.dataset.criticalCues || 0")) >= 1
    assert page.locator("#toast").is_visible()
    assert "focus-alerts" in page.get_attribute("#wall", "class")
    page.screenshot(path=str(artifacts / "wall-glance-alerts-1920x1080.png"))

    # Decision 18 levels and rain classes each have their own colours
    station = alert_server.glance["stations"][0]["id"]
    mark = f'[data-testid="station-mark"][data-station="{station}"]'
    page.wait_for_selector(f'{mark}[data-risk="4"][data-class="very_heavy"]', timeout=10_000)
    colours = page.evaluate(f"""() => {{
      const css = getComputedStyle(document.documentElement);
      const probe = document.createElement('i'); document.body.append(probe);
      const rgb = (v) => {{ probe.style.color = css.getPropertyValue(v).trim(); return getComputedStyle(probe).color; }};
      const g = document.querySelector('{mark}');
      return {{ risk: [1, 2, 3, 4, 5].map((n) => rgb('--risk-' + n)),
        rain: ['light', 'rain', 'moderate', 'heavy', 'very_heavy'].map((c) => rgb('--rc-' + c)),
        dot: getComputedStyle(g.querySelector('.dot')).fill, ring: getComputedStyle(g.querySelector('.risk-ring')).stroke }};
    }}""")
    # Art. 4: 1 light blue, 2 yellow, 3 orange, 4 red, 5 purple (docs/domain.md)
    assert colours["risk"] == ["rgb(125, 211, 252)", "rgb(253, 230, 138)", "rgb(251, 146, 60)", "rgb(239, 68, 68)",
                               "rgb(168, 85, 247)"]
    assert not set(colours["rain"]) & set(colours["risk"]) and len(set(colours["rain"])) == 5
    # a 120 mm gauge in a level-4 commune: its dot says very heavy rain, its ring says level 4
    assert colours["dot"] == colours["rain"][4] and colours["ring"] == colours["risk"][3]


def check_fits(page, shot: str | None = None) -> None:
    """No text overflows its box, the map labels and no-signal marks are pairwise disjoint, and a
    shortened name keeps the full one on hover."""
    if shot:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / shot))
    assert page.evaluate(OVERFLOW_JS) == []
    boxes = page.evaluate(LABEL_BOXES_JS)
    assert sum(b["kind"] == "label" for b in boxes) >= 20  # most gauges keep their label
    assert any(b["kind"] == "no-signal" for b in boxes)  # the demo has gauges that lost their signal
    assert overlapping(boxes) == []
    names = page.evaluate("""() => [...document.querySelectorAll('.rank-name')].map((n) => [n.textContent, n.title])""")
    shortened = [(text, title) for text, title in names if title and not text.startswith(title)]
    assert shortened, names


def open_demo_wall(new_page, server, lang="vi", width=1920, height=1080, unit=None):
    page = open_wall(new_page, server, f"/?lang={lang}" + (f"&unit={unit}" if unit else ""), width, height)
    page.wait_for_selector('[data-testid="station-mark"][data-has-data="true"]', timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"ranking-row\"] .rank-no b').length >= 10",
                           timeout=20_000)
    page.wait_for_timeout(500)  # the next redraws: every panel has its data and fitted sizes
    return page


def test_province_apart_from_the_units_it_ranks_and_1920_fits(new_page, ioc_server):
    catalog = ioc_server.catalog()
    root = next(u for u in catalog["units"] if u["level"] == "province" and not u.get("parent"))
    page = open_demo_wall(new_page, ioc_server)
    check_fits(page, "wall-1920.png")
    summary = page.locator('[data-testid="ranking-summary"]')
    assert summary.get_attribute("data-unit") == root["id"] and summary.get_attribute("data-kind") == "province"
    assert summary.locator(".rank-no").count() == 0  # not ranked
    rows = page.evaluate("""() => [...document.querySelectorAll('[data-testid="ranking-row"]')].map((r) => ({
      unit: r.dataset.unit, rank: Number(r.dataset.rank), of: r.querySelector('.rank-no small').textContent }))""")
    assert root["id"] not in {r["unit"] for r in rows}
    level = {u["id"]: u["level"] for u in catalog["units"]}
    for kind in ("district", "province"):  # districts; departments (units of province level under the province)
        group = [r for r in rows if level[r["unit"]] == kind]
        n = len([u for u in catalog["units"] if u["level"] == kind and u.get("parent") == root["id"]])
        assert [r["rank"] for r in group] == list(range(1, len(group) + 1)) and len(group) == n, group
        assert {r["of"] for r in group} == {f"/{n}"}
    # a selected department is labelled as one, next to the province's tiles; still nothing overflows
    dept = next(u for u in catalog["units"] if u["level"] == "province" and u.get("parent"))
    page.click(f'[data-testid="ranking-row"][data-unit="{dept["id"]}"]')
    head = page.locator(f'.kpi-group[data-unit="{dept["id"]}"] .kpi-level')
    head.wait_for(timeout=5_000)
    assert head.get_attribute("data-kind") == "department" and head.inner_text().strip().lower() == "sở, ngành"
    assert page.locator(f'.kpi-group[data-unit="{root["id"]}"] .kpi-level').inner_text().strip().lower() == "tỉnh"
    page.wait_for_timeout(300)
    check_fits(page)


@pytest.mark.parametrize("width,height,lang", [(3840, 2160, "vi"), (1920, 1080, "en")])
def test_text_fits_and_map_labels_do_not_overlap(new_page, ioc_server, width, height, lang):
    # in English, with the department of the longest name selected (its tiles next to the province's)
    longest = max((u for u in ioc_server.catalog()["units"] if u["level"] == "province" and u.get("parent")),
                  key=lambda u: len(u.get("name_en") or u["name"]))
    page = open_demo_wall(new_page, ioc_server, lang, width, height, unit=longest["id"] if lang == "en" else None)
    check_fits(page, f"wall-{width}.png" if lang == "vi" else None)
    if lang == "en":
        head = page.locator(f'.kpi-group[data-unit="{longest["id"]}"] .kpi-unit')
        assert head.get_attribute("title") == longest["name_en"]  # shortened or not, the full name is on hover
