"""CAP 1.2 XML: valid against the OASIS schema, has the required elements, maps lifecycle to msgType."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from alerts.cap import CAP_NS, alert_to_cap

from alerttest_util import T0, engine_for, ind
from captest_util import validate_cap

NS = {"cap": CAP_NS}


def _parse(xml: bytes) -> ET.Element:
    return validate_cap(xml)


def t(el, path):
    return el.findtext(path, namespaces=NS)


def test_cap_for_a_rain_alert_at_a_station(rules, catalog):
    eng = engine_for(rules, "rain_24h_very_heavy", catalog=catalog)
    (a,) = eng.process([], [ind("rain_mm", "24h", "VP-001", T0, 123.4)], {"rain": T0})
    root = _parse(alert_to_cap(a, catalog=catalog, rule=eng.rule(a.rule), sender="ioc@vinhphuc.gov.vn"))
    for tag in ("identifier", "sender", "sent", "status", "msgType", "scope"):
        assert t(root, f"cap:{tag}"), tag
    assert t(root, "cap:status") == "Actual" and t(root, "cap:msgType") == "Alert" and t(root, "cap:scope") == "Public"
    assert t(root, "cap:sent") == "2026-10-28T13:00:00+07:00"
    assert t(root, "cap:identifier") == f"ioc.{a.id}"
    assert t(root, "cap:incidents") == f"ioc.incident.{a.incident}"
    infos = root.findall("cap:info", NS)
    assert [t(i, "cap:language") for i in infos] == ["vi-VN", "en-US"]
    for info in infos:
        assert t(info, "cap:category") == "Met"
        assert t(info, "cap:urgency") == "Expected" and t(info, "cap:severity") == "Moderate"
        assert t(info, "cap:certainty") == "Observed"
        assert t(info, "cap:event") and t(info, "cap:headline") and t(info, "cap:description")
        assert t(info, "cap:area/cap:circle") == "21.459,105.646 5.0"  # the rule's radius_km around the gauge
    assert "Mưa rất to" in t(infos[0], "cap:event") and "123,4 mm" in t(infos[0], "cap:description")
    assert t(infos[0], "cap:area/cap:areaDesc") == "Tam Đảo, Huyện Tam Đảo"


def test_cap_ack_issues_no_message_and_resolve_is_an_allclear_update(rules, catalog):
    eng = engine_for(rules, "rain_3h_intense", catalog=catalog)
    (a,) = eng.process([], [ind("rain_mm", "3h", "VP-002", T0, 80)], {"rain": T0})
    acked = eng.acknowledge(a.id, by="lan", at=T0 + 10)
    up = _parse(alert_to_cap(acked, catalog=catalog, history=eng.history(a.id), sender="ioc@vinhphuc.gov.vn"))
    assert t(up, "cap:msgType") == "Alert" and t(up, "cap:identifier") == f"ioc.{a.id}"  # internal: no Update
    assert up.find("cap:references", NS) is None
    assert t(up, "cap:info/cap:severity") == "Severe" and t(up, "cap:info/cap:urgency") == "Immediate"
    (r,) = eng.process([], [ind("rain_mm", "3h", "VP-002", T0 + 600, 10)], {"rain": T0 + 600})
    end = _parse(alert_to_cap(r, catalog=catalog, history=eng.history(a.id), sender="ioc@vinhphuc.gov.vn"))
    assert t(end, "cap:msgType") == "Update" and t(end, "cap:info/cap:responseType") == "AllClear"
    assert t(end, "cap:info/cap:urgency") == "Past"
    assert t(end, "cap:references") == f"ioc@vinhphuc.gov.vn,ioc.{a.id},2026-10-28T13:00:00+07:00"
    assert t(end, "cap:identifier") == f"ioc.{a.id}.allclear.{int(T0 + 600)}"
    assert t(end, "cap:info/cap:headline").startswith("Đã kết thúc: ")


def test_cap_for_a_unit_alert_has_area_desc_and_enclosing_circle(rules, catalog):
    eng = engine_for(rules, "dossier_overdue", catalog=catalog)
    (a,) = eng.process([], [ind("dossier_overdue_open", "now", "vinh-yen", T0, 4)], {"dossier": T0})
    root = _parse(alert_to_cap(a, catalog=catalog, sender="ioc@vinhphuc.gov.vn"))
    info_en = root.findall("cap:info", NS)[1]
    assert t(info_en, "cap:area/cap:areaDesc") == "Vinh Yen City"
    # no polygon in the catalog: a circle around the unit's gauge and one-stop-shop, 2 km margin
    lat_lon, radius = t(info_en, "cap:area/cap:circle").split()
    assert lat_lon == "21.305,105.595" and 2.0 < float(radius) < 3.0
    assert t(info_en, "cap:category") == "Other"
    assert t(root, "cap:scope") == "Restricted" and t(root, "cap:restriction")
