"""The provisioned Grafana dashboards show data: a real Prometheus scrapes a real `ioc run --demo`
(with the metrics token, as deploy/prometheus.yml would), then every target expression of every panel
and every variable query is evaluated through Prometheus' HTTP API and must return series.  The demo's
/metrics must also pass `promtool check metrics` (Prometheus naming conventions)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from tests.conftest import AS_INGEST, AS_VIEWER, INGEST_TOKEN, ROOT, VIEWER_TOKEN, IocServer, free_port, wait_for

pytestmark = pytest.mark.integration

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
DASHBOARDS = ROOT / "dashboards" / "grafana" / "dashboards"
METRICS_TOKEN = "test-metrics-token"
SCRAPE_S = 1
# Grafana's own variables, as Grafana would fill them for a 1 s scrape interval (rate interval = 4 scrapes+)
BUILTINS = {"__rate_interval": "5s", "__interval": "1s", "__range": "1m"}


def _dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def _variables(dashboard: dict) -> dict[str, str]:
    """Each variable's value with the dashboard's defaults: "All" (allValue) for multi-selects, else current."""
    values = dict(BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("includeAll"):
            values[var["name"]] = var["allValue"]
        else:
            values[var["name"]] = var["current"]["value"]
    return values


def _fill(expr: str, values: dict[str, str]) -> str:
    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], expr)
    assert "$" not in out, out
    return out


def _targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with the variables filled) for every panel target."""
    out = []
    for name, d in _dashboards().items():
        values = _variables(d)
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                out.append((name, panel["title"], _fill(t["expr"], values)))
    return out


def _start_prometheus(tmp: Path, target_port: int) -> tuple[subprocess.Popen, str]:
    """A private Prometheus (own port, config and storage) scraping 127.0.0.1:target_port every second."""
    assert PROMETHEUS.exists(), "prometheus is not installed: ./scripts/test.sh installs it"
    (tmp / "token").write_text(METRICS_TOKEN)
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "ioc-api",
            "authorization": {"credentials_file": str(tmp / "token")},
            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
        }],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(tmp / "prometheus.log", "wb") as log:
        proc = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _targets_of(title: str) -> str:
    (promql,) = [q for _, t, q in _targets() if t == title]
    return promql


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`ioc run --demo` (/metrics behind IOC_METRICS_TOKEN, one wall display connected) and a Prometheus
    scraping it; (server, Prometheus URL) once a few scrapes have stored the display's messages.

    Prometheus starts while the demo does: it applies its targets only ~5 s after start anyway."""
    tmp = tmp_path_factory.mktemp("grafana")
    env = {"IOC_VIEWER_TOKEN": VIEWER_TOKEN, "IOC_INGEST_TOKEN": INGEST_TOKEN, "IOC_METRICS_TOKEN": METRICS_TOKEN,
           "PYTHONUNBUFFERED": "1"}
    server = IocServer(tmp / "data", free_port(), ["--demo"], {**os.environ, **env})
    server.spawn()
    (tmp / "prom").mkdir()
    proc, url = _start_prometheus(tmp / "prom", server.port)
    try:
        server.wait_healthy(30)
        with connect(server.ws_url, open_timeout=5, additional_headers=AS_VIEWER) as ws:
            ws.recv(timeout=5)  # the snapshot: ioc_ws_messages_sent_total and ioc_ws_clients now have values
            # three scrapes that saw the display, so rate() over 5 s has samples to work with
            stored = wait_for(lambda: _scalar(url, "min(count_over_time(ioc_ws_messages_sent_total[1m]))") >= 3,
                              timeout_s=30, interval_s=0.5)
            assert stored, (tmp / "prom" / "prometheus.log").read_text(errors="replace")[-3000:]
            yield server, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.stop()


def _query(url: str, promql: str) -> list[dict]:
    r = httpx.get(url + "/api/v1/query", params={"query": promql}, timeout=5)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (promql, body)
    return body["data"]["result"]


def _scalar(url: str, promql: str) -> float:
    try:
        result = _query(url, promql)
    except (httpx.HTTPError, ValueError, AssertionError):  # not up yet: refused, 503 text, or an error answer
        return 0.0
    return float(result[0]["value"][1]) if result else 0.0


def test_every_panel_query_returns_data(stack):
    prometheus = stack[1]
    targets = _targets()
    assert len(targets) >= 25
    empty = []
    for name, title, promql in targets:
        result = _query(prometheus, promql)
        values = [float(s["value"][1]) for s in result]
        if not values or not any(math.isfinite(v) for v in values):
            empty.append((name, title, promql, values))
    assert not empty, empty


def test_every_variable_query_lists_values(stack):
    prometheus = stack[1]
    for name, d in _dashboards().items():
        for var in d["templating"]["list"]:
            if var["type"] != "query":
                continue
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["query"]["query"]).groups()
            r = httpx.get(f"{prometheus}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=5)
            assert len(r.json()["data"]) >= 3, (name, var["name"])


def test_every_metric_a_panel_names_exists(stack):
    """Fallbacks like `... or vector(0)` cannot hide a misspelt metric: each name must have series
    (after one refused event, so that the rejects counter exists too)."""
    demo, prometheus = stack
    r = httpx.post(demo.url + "/api/ingest", headers=AS_INGEST,
                   json={"kind": "rain", "station": "VP-001", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": -3})
    assert r.status_code == 400
    names = {m for _, _, q in _targets() for m in re.findall(r"\bioc_\w+", q)}
    assert "ioc_events_rejected_total" in names
    missing = lambda: [n for n in sorted(names) if not _query(prometheus, f'count({{__name__="{n}"}})')]  # noqa: E731
    assert wait_for(lambda: not missing(), timeout_s=10, interval_s=0.5), missing()
    promql = _targets_of("Events rejected per second, by feed and reason")
    reasons = lambda: {s["metric"].get("reason") for s in _query(prometheus, promql)}  # noqa: E731
    assert wait_for(lambda: "negative_value" in reasons(), timeout_s=10), reasons()


def test_demo_metrics_pass_promtool(stack):
    demo = stack[0]
    assert PROMTOOL.exists(), "promtool is not installed: ./scripts/test.sh installs prometheus"
    r = httpx.get(demo.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5)
    assert r.status_code == 200 and "ioc_rain_mm{" in r.text and "ioc_dossier_ratio{" in r.text
    check = subprocess.run([str(PROMTOOL), "check", "metrics"], input=r.content, capture_output=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        check.stdout.decode() + check.stderr.decode())


def test_promtool_would_catch_a_bad_name():
    """The check above is meaningful: promtool flags a gauge named like a counter or a histogram part."""
    bad = b"# HELP ioc_x_count n\n# TYPE ioc_x_count gauge\nioc_x_count 1\n"
    check = subprocess.run([str(PROMTOOL), "check", "metrics"], input=bad, capture_output=True, timeout=30)
    assert b"_count" in check.stdout + check.stderr


def _expected_unit(expr: str) -> str:
    """The Grafana unit a panel on this expression needs (base units, but rain in mm)."""
    if "/" in expr or "_ratio" in expr:
        return "percentunit"  # a ratio 0.0-1.0 shown as %
    if "_seconds" in expr:
        return "s"
    if "ioc_rain_mm" in expr:
        return "lengthmm"  # rain is kept in millimetres, the unit of every threshold
    if "rate(ioc_ws_messages" in expr:
        return "mps"
    if "rate(ioc_events_" in expr:
        return "eps"
    return "short"  # people, dossiers, clients: plain counts


def test_every_panel_has_the_unit_of_its_values():
    wrong = []
    for name, d in _dashboards().items():
        for panel in d["panels"]:
            if panel["type"] == "row":
                continue
            defaults = panel["fieldConfig"]["defaults"]
            by_ref = {o["matcher"]["options"]: o["properties"][0]["value"] for o in panel["fieldConfig"]["overrides"]
                      if o["matcher"]["id"] == "byFrameRefID" and o["properties"][0]["id"] == "unit"}
            for t in panel["targets"]:
                unit = by_ref.get(t["refId"], defaults.get("unit"))
                if unit != _expected_unit(t["expr"]):
                    wrong.append((name, panel["title"], t["expr"], unit))
    assert not wrong, wrong
