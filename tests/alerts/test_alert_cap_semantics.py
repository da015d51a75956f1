"""CAP that aggregators accept: identifiers, references, sent order, scope, geometry, geocodes, Atom feed.

Every message is validated against the vendored OASIS CAP 1.2 schema (captest_util.validate_cap, and
the autouse check in conftest.py); these tests check the rules the schema cannot: a chain of messages
per alert that never changes once issued and survives a restart.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from alerts.cap import alert_to_cap
from alerts.cap_messages import cap_messages
from alerts.store_sqlite import SqliteAlertStore
from ioc.cap_api import alert_cap_xml, feed_xml
from ioc.cap_config import CapSettings, cap_settings_from_env
from ioc.catalog import CatalogError, demo_catalog, parse_catalog
from ioc.config import ConfigError
from ioc.timeutil import parse_ts

from alerttest_util import T0, engine_for, ind
from captest_util import validate_cap, t

SENDER = "ioc@monitor.vinhphuc.gov.vn"
SETTINGS = CapSettings(sender=SENDER, sender_name={"vi": "Trung tâm Điều hành thông minh tỉnh Vĩnh Phúc",
                                                   "en": "Vinh Phuc Intelligent Operations Center"},
                       public_url="https://ioc.vinhphuc.gov.vn", contact="Trực ban IOC: 0211 3 861 861")
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}
H = 3600


def rain(entity, t_s, mm24, mm12):
    return [ind("rain_mm", "24h", entity, t_s, mm24), ind("rain_mm", "12h", entity, t_s, mm12)]


def storm(eng, ack_at=None):
    """A storm over Tam Đảo: level 1 in two communes (and their district and province), escalation to level 2
    then 3 in one, then the end (Decision 18 levels are per area: alerts/risk)."""
    steps = [
        (T0, rain("VP-010", T0, 120, 60) + rain("VP-011", T0, 110, 55)),
        (T0 + 600, rain("VP-010", T0 + 600, 250, 120)),
        (T0 + 1200, rain("VP-010", T0 + 1200, 450, 200)),
        (T0 + 6 * H, rain("VP-010", T0 + 6 * H, 40, 10) + rain("VP-011", T0 + 6 * H, 30, 5)),
    ]
    for i, (t_s, inds) in enumerate(steps):
        eng.process([], inds, {"rain": t_s})
        if i == 1 and ack_at is not None:
            a = eng.list(rule="rain_risk_level", unit="tt-tam-dao")[0]
            eng.acknowledge(a.id, by="lan", comment="đã báo xã", at=ack_at)


def all_messages(eng, alert) -> list[ET.Element]:
    """Every CAP message of the alert, oldest first, each rendered by its identifier."""
    idents = [m.identifier for m in cap_messages(alert, eng.history(alert.id))]
    return [validate_cap(alert_to_cap(alert, catalog=eng.catalog, rule=eng.rule(alert.rule),
                                      history=eng.history(alert.id), settings=SETTINGS, identifier=i))
            for i in idents]


def test_a_storm_gives_each_alert_a_chain_of_messages(rules, tmp_path):
    cat = demo_catalog()
    eng = engine_for(rules, "rain_risk_level", catalog=cat, store=SqliteAlertStore(tmp_path))
    storm(eng, ack_at=T0 + 700)
    (a10,) = eng.list(rule="rain_risk_level", unit="tt-tam-dao")
    msgs = all_messages(eng, a10)
    # fired, level 2, level 3, ended; the acknowledgement in between is internal and issues nothing
    assert [t(m, "cap:msgType") for m in msgs] == ["Alert", "Update", "Update", "Update"]
    assert [t(m, "cap:info/cap:responseType") for m in msgs] == [None, None, None, "AllClear"]
    idents = [t(m, "cap:identifier") for m in msgs]
    assert len(set(idents)) == 4 and idents[0] == f"ioc.{a10.id}"
    sents = [parse_ts(t(m, "cap:sent")) for m in msgs]
    assert sents == sorted(set(sents)) and sents[0] == T0 and sents[-1] == T0 + 6 * H
    for k, m in enumerate(msgs):
        triples = [f"{SENDER},{t(p, 'cap:identifier')},{t(p, 'cap:sent')}" for p in msgs[:k]]
        assert (t(m, "cap:references") or "").split() == triples  # every earlier message, in order
        assert t(m, "cap:sender") == SENDER and t(m, "cap:scope") == "Public" and t(m, "cap:status") == "Actual"
        assert m.find("cap:restriction", NS) is None
        vi, en = m.findall("cap:info", NS)
        assert t(vi, "cap:language") == "vi-VN" and t(en, "cap:language") == "en-US"
        assert t(vi, "cap:senderName") == "Trung tâm Điều hành thông minh tỉnh Vĩnh Phúc"
        assert t(vi, "cap:web") == f"https://ioc.vinhphuc.gov.vn/console#alert={a10.id}"
        assert t(vi, "cap:contact") == "Trực ban IOC: 0211 3 861 861"
        assert parse_ts(t(vi, "cap:expires")) > parse_ts(t(m, "cap:sent"))
        # the commune's area: a circle around its gauge (no polygon in the demo catalog) and its official code
        assert t(vi, "cap:area/cap:circle") == "21.4573,105.6451 2.0"
        assert t(vi, "cap:area/cap:geocode/cap:value") == "08908"
        assert t(vi, "cap:area/cap:areaDesc") == "Thị trấn Tam Đảo, Huyện Tam Đảo"
    assert [t(m, "cap:info/cap:severity") for m in msgs[:3]] == ["Moderate", "Severe", "Severe"]
    assert "cấp 3" in t(msgs[2], "cap:info/cap:description")  # each message keeps the content it was issued with
    assert "cấp 1" in t(msgs[0], "cap:info/cap:description")
    assert t(msgs[0], "cap:info/cap:instruction").startswith("Theo dõi bản tin")
    assert msgs[-1].find("cap:info/cap:instruction", NS) is None
    assert t(msgs[-1], "cap:info/cap:urgency") == "Past"
    assert parse_ts(t(msgs[0], "cap:info/cap:expires")) == T0 + 24 * H  # the rule's cap.expires
    assert parse_ts(t(msgs[-1], "cap:info/cap:expires")) == T0 + 12 * H  # an AllClear: 6 h
    # the two gauges of the storm are one incident
    (a11,) = eng.list(rule="rain_risk_level", unit="hop-chau")
    assert t(all_messages(eng, a11)[0], "cap:incidents") == t(msgs[0], "cap:incidents")
    assert t(all_messages(eng, a11)[0], "cap:info/cap:area/cap:geocode/cap:value") == "08911"

    # a restart reads the chain back from the store: the same messages, byte for byte
    before = [alert_cap_xml(eng, a10, SETTINGS, base_url=None, identifier=t(m, "cap:identifier")) for m in msgs]
    eng.store.close()
    again = engine_for(rules, "rain_risk_level", catalog=cat, store=SqliteAlertStore(tmp_path))
    after = [alert_cap_xml(again, again.get(a10.id), SETTINGS, base_url=None, identifier=t(m, "cap:identifier"))
             for m in msgs]
    assert after == before
    again.store.close()


def test_a_replay_gives_the_same_identifiers_and_bytes(rules):
    def run():
        eng = engine_for(rules, "rain_risk_level", "rain_24h_very_heavy", catalog=demo_catalog())
        storm(eng)
        return {a.id: [alert_cap_xml(eng, a, SETTINGS, base_url=None, identifier=m.identifier)
                       for m in cap_messages(a, eng.history(a.id))] for a in eng.list()}

    first, second = run(), run()
    # two gauges' 24 h alerts and Hợp Châu's level (2 messages each); Tam Đảo town, its district, the province (4)
    assert first == second and sorted(len(v) for v in first.values()) == [2, 2, 2, 4, 4, 4]


def test_sent_strictly_increases_when_transitions_share_a_second(rules):
    eng = engine_for(rules, "rain_risk_level", catalog=demo_catalog())
    eng.process([], rain("VP-010", T0, 120, 60), {"rain": T0})
    eng.process([], rain("VP-010", T0, 250, 120), {"rain": T0})  # a correction in the same second: level 2
    (a,) = eng.list(unit="tt-tam-dao")
    msgs = all_messages(eng, a)
    assert [t(m, "cap:msgType") for m in msgs] == ["Alert", "Update"]
    assert [parse_ts(t(m, "cap:sent")) for m in msgs] == [T0, T0 + 1]
    assert t(msgs[1], "cap:identifier") == f"ioc.{a.id}.update.{int(T0) + 1}"


def test_internal_alerts_are_restricted_and_units_have_geometry_and_codes(rules):
    cat = demo_catalog()
    eng = engine_for(rules, "dossier_overdue", "queue_long", catalog=cat)
    eng.process([], [ind("dossier_overdue_open", "now", "lien-bao", T0, 3),
                     ind("dossier_overdue_open", "now", "so-tnmt", T0, 2),
                     ind("queue_waiting", "now", "vinh-yen", T0, 90), ind("queue_counters_open", "now", "vinh-yen", T0, 2)],
                {"dossier": T0, "camera": T0})
    eng.process([], [ind("queue_waiting", "now", "vinh-yen", T0 + 400, 90),
                     ind("queue_counters_open", "now", "vinh-yen", T0 + 400, 2)], {"dossier": T0, "camera": T0 + 400})
    by = {(a.rule, a.entity): a for a in eng.list()}
    assert set(by) == {("dossier_overdue", "lien-bao"), ("dossier_overdue", "so-tnmt"), ("queue_long", "vinh-yen")}
    got = {k: validate_cap(alert_to_cap(a, catalog=cat, rule=eng.rule(a.rule), settings=SETTINGS))
           for k, a in by.items()}
    for root in got.values():
        assert t(root, "cap:scope") == "Restricted" and "not for public release" in t(root, "cap:restriction")
    ward = got[("dossier_overdue", "lien-bao")].find("cap:info/cap:area", NS)
    assert t(ward, "cap:geocode/cap:valueName") == "VN-MSDVHC" and t(ward, "cap:geocode/cap:value") == "08710"
    assert t(ward, "cap:areaDesc") == "Phường Liên Bảo, Thành phố Vĩnh Yên"
    centre, radius = t(ward, "cap:circle").split()
    assert centre == "21.3052,105.6001" and float(radius) == 2.0  # the ward's one gauge + the 2 km margin
    dept = got[("dossier_overdue", "so-tnmt")].find("cap:info/cap:area", NS)
    assert t(dept, "cap:geocode/cap:value") == "26"  # a department has no code: the province's
    assert t(dept, "cap:circle").startswith("21.3095,105.6045 ")  # the provincial public administration centre
    # the site `vinh-yen` is a one-stop-shop, not the city of the same id
    site = got[("queue_long", "vinh-yen")].find("cap:info/cap:area", NS)
    assert t(site, "cap:circle") == "21.3089,105.604 0.2" and t(site, "cap:geocode/cap:value") == "243"
    assert t(site, "cap:areaDesc") == "Bộ phận một cửa Thành phố Vĩnh Yên, Thành phố Vĩnh Yên"


POLYGON_CATALOG = """
province: vp
units:
  - {id: vp, name: Tỉnh Vĩnh Phúc, level: province, code: "26"}
  - id: tam-dao
    name: Huyện Tam Đảo
    level: district
    parent: vp
    code: "248"
    polygon: [[21.52, 105.58], [21.52, 105.70], [21.36, 105.70], [21.36, 105.58], [21.52, 105.58]]
"""


def test_a_unit_with_a_catalog_polygon_gets_that_polygon(rules):
    cat = parse_catalog(POLYGON_CATALOG, "poly.yaml")
    eng = engine_for(rules, "dossier_overdue", catalog=cat)
    (a,) = eng.process([], [ind("dossier_overdue_open", "now", "tam-dao", T0, 1)], {"dossier": T0})
    area = validate_cap(alert_to_cap(a, catalog=cat, rule=eng.rule(a.rule), settings=SETTINGS)).find(
        "cap:info/cap:area", NS)
    assert t(area, "cap:polygon") == "21.52,105.58 21.52,105.7 21.36,105.7 21.36,105.58 21.52,105.58"
    assert area.find("cap:circle", NS) is None and t(area, "cap:geocode/cap:value") == "248"


@pytest.mark.parametrize("unit, error", [
    ('{id: p, name: P, level: province, code: "2"}', "expected the 2-digit official code of a province"),
    ('{id: p, name: P, level: province, code: "2x"}', "got '2x'"),
    ('{id: p, name: P, level: province, polygon: [[1, 2], [3, 4], [1, 2]]}', "at least 4 [lat, lon] points"),
    ('{id: p, name: P, level: province, polygon: [[91, 2], [3, 4], [5, 6], [91, 2]]}', "[91.0, 2.0] is not a latitude"),
])
def test_catalog_codes_and_polygons_are_checked_at_load(unit, error):
    with pytest.raises(CatalogError, match="units\\[p\\]") as exc:
        parse_catalog(f"units:\n  - {unit}\n", "bad.yaml")
    assert error in str(exc.value)
    with pytest.raises(CatalogError, match="already the code of a"):
        parse_catalog('units:\n  - {id: a, name: A, level: province, code: "26"}\n'
                      '  - {id: b, name: B, level: province, code: "26"}\n')


def test_every_demo_administrative_unit_has_an_official_code():
    cat = demo_catalog()
    coded = {u.id: u.code for u in cat.units.values() if u.code}
    assert coded["vinh-phuc"] == "26" and coded["tam-dao"] == "248" and coded["tt-tam-dao"] == "08908"
    assert {u.id for u in cat.units.values() if not u.code} == {"so-tnmt", "so-xd", "so-khdt", "so-gtvt", "so-tp"}


def test_cap_settings_from_the_environment(monkeypatch):
    for k in ("IOC_CAP_SENDER", "IOC_CAP_SENDER_NAME", "IOC_CAP_SENDER_NAME_EN", "IOC_CAP_CONTACT"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("IOC_PUBLIC_URL", "https://ioc.vinhphuc.gov.vn/")
    s = cap_settings_from_env(demo_catalog())
    assert s.sender == "ioc@ioc.vinhphuc.gov.vn" and s.public_url == "https://ioc.vinhphuc.gov.vn"
    assert s.sender_name == {"vi": "Trung tâm Điều hành thông minh tỉnh Vĩnh Phúc",
                             "en": "Intelligent Operations Center, Vinh Phuc Province"}
    monkeypatch.setenv("IOC_PUBLIC_URL", "http://127.0.0.1:8000")
    assert "@127.0.0.1" not in cap_settings_from_env(demo_catalog()).sender  # an address needs a domain
    monkeypatch.setenv("IOC_CAP_SENDER", SENDER)
    assert cap_settings_from_env(None).sender == SENDER
    for bad, why in (("ioc@localhost", "domain"), ("ioc monitor@vinhphuc.gov.vn", "spaces"),
                     ("ioc,x@vinhphuc.gov.vn", "commas"), ("vinhphuc.gov.vn", "domain")):
        monkeypatch.setenv("IOC_CAP_SENDER", bad)
        with pytest.raises(ConfigError, match=f"IOC_CAP_SENDER=.*{why}"):
            cap_settings_from_env(None)
    monkeypatch.setenv("IOC_CAP_SENDER", SENDER)
    monkeypatch.setenv("IOC_PUBLIC_URL", "ftp://x")
    with pytest.raises(ConfigError, match="IOC_PUBLIC_URL='ftp://x': expected a base URL"):
        cap_settings_from_env(None)


def test_the_atom_feed_lists_current_alerts_and_an_allclear_until_it_expires(rules):
    cat = demo_catalog()
    eng = engine_for(rules, "rain_risk_level", "dossier_overdue", catalog=cat)
    eng.process([], rain("VP-010", T0, 120, 60) + rain("VP-011", T0, 110, 55), {"rain": T0})
    eng.process([], [ind("dossier_overdue_open", "now", "lien-bao", T0 + 60, 3)], {"dossier": T0 + 60})

    def feed(lang="vi"):
        root = ET.fromstring(feed_xml(eng, SETTINGS, base_url="https://ioc.vinhphuc.gov.vn", lang=lang))
        assert root.tag == "{http://www.w3.org/2005/Atom}feed"
        for path in ("a:id", "a:title", "a:updated", "a:author/a:name"):  # RFC 4287 required elements
            assert root.findtext(path, namespaces=ATOM), path
        return root

    def entries(root):
        return {e.findtext("a:id", namespaces=ATOM): e for e in root.findall("a:entry", ATOM)}

    first = entries(feed())
    assert len(first) == 5  # two communes, their district, the province; the dossier alert
    a10 = eng.list(rule="rain_risk_level", unit="tt-tam-dao")[0]
    links = {e.find("a:link[@rel='alternate']", ATOM).get("href"): e for e in first.values()}
    e10 = links[f"https://ioc.vinhphuc.gov.vn/api/alerts/{a10.id}/cap"]
    assert e10.find("a:link[@rel='alternate']", ATOM).get("type") == "application/cap+xml"
    assert e10.findtext("a:updated", namespaces=ATOM) == "2026-10-28T13:00:00+07:00"
    assert "cấp 1" in e10.findtext("a:title", namespaces=ATOM)
    scopes = sorted(c.get("term") for e in first.values() for c in e.findall("a:category", ATOM)
                    if c.get("scheme").endswith(":scope"))
    assert scopes == ["Public"] * 4 + ["Restricted"]
    english = feed("en")
    assert english.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert "level 1" in entries(english)[e10.findtext("a:id", namespaces=ATOM)].findtext("a:title", namespaces=ATOM)

    eng.process([], rain("VP-010", T0 + 600, 250, 120), {"rain": T0 + 600})  # level 2: same entry, updated
    second = entries(feed())
    assert set(second) == set(first)
    e10b = second[e10.findtext("a:id", namespaces=ATOM)]
    assert e10b.findtext("a:updated", namespaces=ATOM) == "2026-10-28T13:10:00+07:00"
    assert e10b.findtext("a:published", namespaces=ATOM) == "2026-10-28T13:00:00+07:00"

    eng.process([], rain("VP-010", T0 + 3 * H, 40, 10), {"rain": T0 + 3 * H})  # ended: its AllClear stays 6 h
    ended = entries(feed())[e10.findtext("a:id", namespaces=ATOM)]
    assert ended.findtext("a:title", namespaces=ATOM).startswith("Đã kết thúc: ")
    eng.process([], rain("VP-011", T0 + 10 * H, 120, 60), {"rain": T0 + 10 * H})
    assert e10.findtext("a:id", namespaces=ATOM) not in entries(feed())  # past the AllClear's expires
    assert len(entries(feed())) == 4  # Hợp Châu keeps its district and the province at level 1


DRILL_RULE = """
rules:
  - name: rain_drill
    kind: threshold
    entity: station
    indicator: rain_mm
    window: 1h
    op: ">"
    threshold: 30
    severity: warning
    cap: {category: Met, status: Exercise, scope: Restricted, expires: 2h, radius_km: 12.5, contact: "Ban CHPCTT huyện Tam Đảo"}
    message: {vi: "Diễn tập: mưa lớn tại {entity_name}", en: "Drill: heavy rain at {entity_name}"}
"""


def test_a_rules_cap_block_is_applied_and_checked_at_load():
    from alerts.engine import AlertEngine
    from alerts.rules import RuleError, parse_rules

    cat = demo_catalog()
    eng = AlertEngine(parse_rules(DRILL_RULE, "drill.yaml"), cat)
    (a,) = eng.process([], [ind("rain_mm", "1h", "VP-010", T0, 35)], {"rain": T0})
    root = validate_cap(alert_to_cap(a, catalog=cat, rule=eng.rule(a.rule), settings=SETTINGS))
    assert t(root, "cap:status") == "Exercise" and t(root, "cap:scope") == "Restricted"
    assert t(root, "cap:info/cap:contact") == "Ban CHPCTT huyện Tam Đảo"  # the rule's contact wins
    assert t(root, "cap:info/cap:area/cap:circle") == "21.4573,105.6451 12.5"
    assert parse_ts(t(root, "cap:info/cap:expires")) == T0 + 2 * H
    bad = DRILL_RULE.replace("status: Exercise", "status: Drill").replace("expires: 2h", "expires: later")
    with pytest.raises(RuleError) as exc:
        parse_rules(bad, "drill.yaml")
    assert "drill.yaml: rule 'rain_drill': cap.status: expected one of Actual, Exercise, Test, got 'Drill'" in str(exc.value)
    assert "cap.expires" in str(exc.value)


def test_an_entity_missing_from_the_catalog_still_gives_a_valid_message(rules):
    cat = demo_catalog()
    eng = engine_for(rules, "rain_24h_very_heavy", catalog=cat)
    (a,) = eng.process([], [ind("rain_mm", "24h", "VP-999", T0, 130)], {"rain": T0})
    area = validate_cap(alert_to_cap(a, catalog=cat, rule=eng.rule(a.rule), settings=SETTINGS)).find(
        "cap:info/cap:area", NS)
    assert t(area, "cap:areaDesc") == "VP-999" and area.find("cap:circle", NS) is None
