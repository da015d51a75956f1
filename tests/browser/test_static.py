"""Checks on the static dashboard files that need no server or browser:
translations complete in both languages, every translation key used exists,
no outside host referenced, Grafana dashboards and provisioning consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .outside_refs import is_outside, kind_of, references

REPO = Path(__file__).resolve().parents[2]
WALL = REPO / "dashboards" / "wall"
GRAFANA = REPO / "dashboards" / "grafana"
RULES = ["rain_24h_very_heavy", "rain_3h_intense", "rain_risk_level", "sensor_stale", "dossier_overdue", "queue_long", "anomaly"]


@pytest.fixture(scope="module")
def i18n() -> dict:
    return json.loads((WALL / "i18n.json").read_text(encoding="utf-8"))


def test_both_languages_have_every_key(i18n):
    assert set(i18n) == {"vi", "en"}
    assert set(i18n["vi"]) == set(i18n["en"])
    empty = [k for lang in ("vi", "en") for k, v in i18n[lang].items() if not v.strip()]
    assert not empty
    # placeholders agree
    for k in i18n["vi"]:
        assert set(re.findall(r"\{(\w+)\}", i18n["vi"][k])) == set(re.findall(r"\{(\w+)\}", i18n["en"][k])), k


def test_every_used_key_is_translated(i18n):
    used: set[str] = set()
    for js in WALL.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", js.read_text(encoding="utf-8")))
    for html in WALL.glob("*.html"):
        used |= set(re.findall(r"""data-i18n(?:-title|-placeholder|-aria)?="([\w.]+)\"""", html.read_text(encoding="utf-8")))
    # keys built at run time
    used |= {f"rule.{r}" for r in RULES}
    used |= {f"severity.{s}" for s in ("critical", "warning", "info")}
    used |= {f"rainclass.{c}" for c in ("light", "rain", "moderate", "heavy", "very_heavy")}
    used |= {f"period.{p}" for p in ("day", "month", "year")}
    used |= {f"status.{s}" for s in ("green", "yellow", "red", "grey", "neutral")}
    used |= {f"level.{s}" for s in ("province", "district", "commune", "department")}
    used |= {f"ranking.group_{s}" for s in ("department", "district", "commune")}
    used |= {f"conn.{s}" for s in ("live", "reconnecting", "stale", "denied")}
    used |= {f"feed.{s}" for s in ("rain", "dossiers", "cameras", "alerts")}
    used |= {f"kpi.{s}" for s in ("on_time", "online", "digitization", "online_payment", "overdue", "received")}
    missing = sorted(k for k in used if k not in i18n["vi"])
    assert not missing, missing


def test_vietnamese_is_the_default(i18n):
    for html in WALL.glob("*.html"):
        assert '<html lang="vi">' in html.read_text(encoding="utf-8")
    assert "Mất tín hiệu" in i18n["vi"]["rain.no_signal"]
    assert i18n["en"]["rain.no_signal"] == "No signal"


def test_files_reference_no_outside_host():
    base = "http://127.0.0.1:1/static/"
    bad = []
    for f in sorted(WALL.iterdir()):
        if f.suffix not in (".html", ".js", ".css"):
            continue
        for ref in references(f.read_text(encoding="utf-8"), kind_of(f.name)):
            if is_outside(ref, base):
                bad.append((f.name, ref))
    assert not bad, bad


def test_pages_reference_existing_static_assets():
    for html in WALL.glob("*.html"):
        for ref in references(html.read_text(encoding="utf-8"), "html"):
            if ref.startswith("/static/"):
                assert (WALL / ref[len("/static/"):]).is_file(), (html.name, ref)
    for js in WALL.glob("*.js"):
        for ref in references(js.read_text(encoding="utf-8"), "js"):
            if ref.startswith("./"):
                assert (WALL / ref[2:]).is_file(), (js.name, ref)


def test_testids_the_tests_rely_on_are_present():
    html = (WALL / "index.html").read_text(encoding="utf-8")
    js = "".join(p.read_text(encoding="utf-8") for p in WALL.glob("*.js"))
    for tid in ("unit-ranking", "rain-map", "queue-panel", "alert-list", "connection-status"):
        assert f'data-testid="{tid}"' in html, tid
    for tid in ("kpi-tile", "alert-row", "station-mark"):
        assert f'"data-testid": "{tid}"' in js or f'"{tid}"' in js, tid
    for attr in ("alertId", "severity", "state", "acknowledged"):
        assert attr in js
    assert 'data-state="reconnecting"' in html


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_grafana_dashboards(dashboards):
    assert set(dashboards) == {"ioc-pipeline.json", "ioc-rain.json", "ioc-dossiers.json", "ioc-queues.json"}
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    exprs = ""
    for name, d in dashboards.items():
        assert d["title"] and d["panels"], name
        ids = [p["id"] for p in d["panels"]]
        assert len(set(ids)) == len(ids), name
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            assert p["datasource"]["uid"] == "prometheus", (name, p["title"])
            assert p["targets"], (name, p["title"])
            exprs += " ".join(t["expr"] for t in p["targets"])
    for metric in ("ioc_events_ingested_total", "ioc_events_rejected_total", "ioc_processing_lag_seconds", "ioc_ws_clients",
                   "ioc_ws_messages_sent_total", "ioc_rain_mm", "ioc_dossier_ratio", "ioc_dossiers",
                   "ioc_queue_waiting", "ioc_queue_waiting_avg_15m", "ioc_queue_waiting_max_15m"):
        assert metric in exprs, metric


def test_grafana_provisioning():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (prom,) = ds["datasources"]
    assert prom["type"] == "prometheus" and prom["uid"] == "prometheus" and prom["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "provider.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_nothing_needs_unsafe_inline_or_eval():
    """The pages run under `script-src 'self'; style-src 'self'` (ioc/security_headers.py): no inline
    script, inline event handler or style attribute in the HTML, and no script that makes them."""
    for html in WALL.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), html.name
        assert not re.search(r"\son[a-z]+\s*=", text), html.name
        assert not re.search(r"\sstyle\s*=", text), html.name
        assert "javascript:" not in text, html.name
    for js in WALL.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        for bad in (r"\.innerHTML\s*=", r"insertAdjacentHTML", r"\beval\(", r"new Function\(",
                    r"setAttribute\(\s*[\"']style", r"setAttribute\(\s*[\"']on", r"document\.write"):
            assert not re.search(bad, text), f"{js.name}: {bad}"
