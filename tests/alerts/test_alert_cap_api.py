"""CAP over a real `ioc run` (uvicorn): the alert's messages, the Atom feed, and a SIGKILL restart."""

from __future__ import annotations

from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import httpx
import pytest

from ioc.timeutil import parse_ts
from tests.conftest import wait_for, AS_INGEST, AS_VIEWER

from captest_util import t, validate_cap

pytestmark = pytest.mark.integration

PUBLIC = "https://ioc.vinhphuc.gov.vn"
SENDER = "ioc@monitor.vinhphuc.gov.vn"
ENV = {"IOC_CAP_SENDER": SENDER, "IOC_PUBLIC_URL": PUBLIC, "IOC_CAP_CONTACT": "Trực ban IOC: 0211 3 861 861"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}


def readings(day: int, start_min: int, n: int, mm: float) -> list[dict]:
    return [{"kind": "rain", "station": "VP-010", "ts": f"2026-10-{day}T{13 + (start_min + 5 * k) // 60:02d}:"
             f"{(start_min + 5 * k) % 60:02d}:00+07:00", "rain_mm": mm} for k in range(n)]




def risk_alert(url: str, severity: str | None = None, state: str | None = None) -> dict | None:
    # the commune's level (its district and the province have their own alerts: Decision 18 levels are per area)
    got = httpx.get(url + "/api/alerts", params={"rule": "rain_risk_level", "unit": "tt-tam-dao"},
                    headers=AS_VIEWER).json()["alerts"]
    ok = [a for a in got if (severity is None or a["severity"] == severity) and (state is None or a["state"] == state)]
    return ok[0] if ok else None


def cap(url: str, alert_id: str, identifier: str | None = None) -> httpx.Response:
    params = {"identifier": identifier} if identifier else None
    return httpx.get(f"{url}/api/alerts/{alert_id}/cap", params=params, headers=AS_VIEWER)


def test_cap_messages_and_atom_feed_over_http_survive_a_sigkill(ioc_server, tmp_path):
    server = ioc_server(data_dir=tmp_path / "data", extra_env=ENV)
    url = server.url
    post = lambda evs: httpx.post(url + "/api/ingest", headers=AS_INGEST, json=evs).json()  # noqa: E731
    assert post(readings(28, 5, 6, 20.0))["accepted"] == 6  # 120 mm: risk level 1
    first = wait_for(lambda: risk_alert(url, "warning"))
    assert first, server.log()
    assert post(readings(28, 35, 6, 20.0))["accepted"] == 6  # 240 mm in 24 h: level 2
    assert wait_for(lambda: risk_alert(url, "critical"))
    aid = first["id"]

    latest = cap(url, aid)
    assert latest.status_code == 200 and latest.headers["content-type"].startswith("application/xml")
    up = validate_cap(latest.content)
    assert t(up, "cap:msgType") == "Update" and t(up, "cap:sender") == SENDER
    assert t(up, "cap:references") == f"{SENDER},ioc.{aid},{first['started']}"
    assert t(up, "cap:info/cap:web") == f"{PUBLIC}/console#alert={aid}"
    assert t(up, "cap:info/cap:contact") == "Trực ban IOC: 0211 3 861 861"
    assert t(up, "cap:info/cap:area/cap:geocode/cap:value") == "08908"
    original = validate_cap(cap(url, aid, f"ioc.{aid}").content)
    assert t(original, "cap:msgType") == "Alert" and t(original, "cap:sent") == first["started"]
    r = cap(url, aid, "ioc.nope")
    assert r.status_code == 404 and "no CAP message" in r.json()["detail"]

    # the feed: viewer token, RFC 4287, one entry per current alert linking to its CAP XML
    assert httpx.get(url + "/api/cap/feed.atom").status_code == 401
    r = httpx.get(url + "/api/cap/feed.atom", params={"lang": "fr"}, headers=AS_VIEWER)
    assert r.status_code == 422 and "vi or en" in r.json()["detail"]
    r = httpx.get(url + "/api/cap/feed.atom", headers=AS_VIEWER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    assert feed.find("a:link[@rel='self']", ATOM).get("href") == f"{PUBLIC}/api/cap/feed.atom?lang=vi"
    active = httpx.get(url + "/api/alerts", params={"state": "active"}, headers=AS_VIEWER).json()["alerts"]
    hrefs = [e.find("a:link[@rel='alternate']", ATOM).get("href") for e in feed.findall("a:entry", ATOM)]
    assert sorted(hrefs) == sorted(f"{PUBLIC}/api/alerts/{a['id']}/cap" for a in active) and len(hrefs) >= 3
    for href in hrefs:  # every message behind the feed is valid CAP
        validate_cap(httpx.get(url + urlsplit(href).path, headers=AS_VIEWER).content)
    stale = {"kind": "rain", "station": "VP-011", "ts": "2026-10-28T13:05:00+07:00", "rain_mm": 0.2}
    assert post([stale, {**stale, "station": "VP-010", "ts": "2026-10-28T14:40:00+07:00"}])["accepted"] == 2
    assert wait_for(lambda: httpx.get(url + "/api/alerts", params={"rule": "sensor_stale"},
                                      headers=AS_VIEWER).json()["alerts"]), server.log()  # VP-011: 95 min silent
    public = ET.fromstring(httpx.get(url + "/api/cap/feed.atom", params={"scope": "Public"}, headers=AS_VIEWER).content)
    terms = [c.get("term") for c in public.findall("a:entry/a:category", ATOM) if c.get("scheme").endswith(":scope")]
    assert terms and set(terms) == {"Public"}
    everything = ET.fromstring(httpx.get(url + "/api/cap/feed.atom", headers=AS_VIEWER).content)
    assert "Restricted" in {c.get("term") for c in everything.findall("a:entry/a:category", ATOM)}
    entry_ids = sorted(e.findtext("a:id", namespaces=ATOM) for e in everything.findall("a:entry", ATOM))
    for e in everything.findall("a:entry", ATOM):
        msg = validate_cap(httpx.get(url + urlsplit(e.find("a:link[@rel='alternate']", ATOM).get("href")).path,
                                     headers=AS_VIEWER).content)
        scope = [c.get("term") for c in e.findall("a:category", ATOM) if c.get("scheme").endswith(":scope")]
        assert [t(msg, "cap:scope")] == scope and (t(msg, "cap:restriction") is not None) == (scope == ["Restricted"])
    assert httpx.get(url + "/api/cap/feed.atom", params={"scope": "Private"}, headers=AS_VIEWER).status_code == 422

    # SIGKILL and restart: the messages already issued are the same, byte for byte
    issued = {i: cap(url, aid, i).content for i in (f"ioc.{aid}", t(up, "cap:identifier"))}
    server.kill()
    server.start()
    for ident, body in issued.items():
        assert cap(url, aid, ident).content == body
    again = ET.fromstring(httpx.get(url + "/api/cap/feed.atom", headers=AS_VIEWER).content)
    assert sorted(e.findtext("a:id", namespaces=ATOM) for e in again.findall("a:entry", ATOM)) == entry_ids

    # the rain stops: the end is an AllClear Update referencing both earlier messages
    assert post([{"kind": "rain", "station": "VP-010", "ts": "2026-10-29T10:00:00+07:00", "rain_mm": 0.0}])["accepted"]
    assert post([{"kind": "rain", "station": "VP-010", "ts": "2026-10-29T14:30:00+07:00", "rain_mm": 0.0}])["accepted"]
    assert wait_for(lambda: risk_alert(url, state="resolved")), server.log()
    end = validate_cap(cap(url, aid).content)
    assert t(end, "cap:msgType") == "Update" and t(end, "cap:info/cap:responseType") == "AllClear"
    refs = t(end, "cap:references").split()
    assert [r.split(",")[1] for r in refs] == list(issued)
    sents = [r.split(",")[2] for r in refs] + [t(end, "cap:sent")]
    assert [parse_ts(s) for s in sents] == sorted({parse_ts(s) for s in sents})
