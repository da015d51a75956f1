"""CAP 1.2 (OASIS Common Alerting Protocol) XML for one alert — an adapter.

    alert_to_cap(alert, catalog=catalog, rule=engine.rule(alert.rule), sender="ioc@province.gov.vn") -> bytes

msgType: Alert for a newly firing alert, Update for a later state of an
active one (escalation, acknowledgement), Cancel when resolved (with
responseType AllClear).  Updates and cancels reference the original message.
One <info> per language (vi-VN, en-US).  The area is the station's (a
circle "lat,lon 0") or site's location, else the unit's name.
"""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree as ET

from ioc.records import Alert
from ioc.timeutil import LOCAL_TZ, parse_ts

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_SEVERITY = {"critical": "Severe", "warning": "Moderate", "info": "Minor"}
_URGENCY = {"critical": "Immediate", "warning": "Expected", "info": "Future"}


def cap_time(ts: str) -> str:
    """CAP dateTime: local offset, whole seconds, never 'Z'."""
    return datetime.fromtimestamp(int(parse_ts(ts)), LOCAL_TZ).isoformat(timespec="seconds")


def msg_type(alert: Alert) -> str:
    if alert.state == "resolved":
        return "Cancel"
    if alert.acknowledged or (alert.started and alert.ts != alert.started):
        return "Update"
    return "Alert"


def cap_identifier(alert: Alert, mtype: str | None = None) -> str:
    mtype = mtype or msg_type(alert)
    base = f"ioc.{alert.id}"
    if mtype == "Alert":
        return base
    suffix = "c" if mtype == "Cancel" else ("a" if alert.acknowledged and alert.ts == alert.started else "u")
    return f"{base}.{suffix}{int(parse_ts(alert.ts))}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _area(info: ET.Element, alert: Alert, catalog, lang: str) -> None:
    area = _sub(info, "area")
    desc, circle = alert.entity, None
    if catalog is not None:
        st = catalog.stations.get(alert.entity)
        site = catalog.sites.get(alert.entity) or catalog.sites.get(alert.labels.get("site", ""))
        unit = catalog.units.get(alert.labels.get("unit", "")) or catalog.units.get(alert.entity)
        unit_name = (unit.name_en or unit.name) if unit is not None and lang == "en" else (unit.name if unit else None)
        if st is not None:
            desc = st.name + (f", {unit_name}" if unit_name else "")
            circle = f"{st.lat},{st.lon} 0"
        elif site is not None:
            desc = site.name + (f", {unit_name}" if unit_name else "")
            if site.lat is not None and site.lon is not None:
                circle = f"{site.lat},{site.lon} 0"
        elif unit_name:
            desc = unit_name
    _sub(area, "areaDesc", desc)
    if circle:
        _sub(area, "circle", circle)


def alert_to_cap(alert: Alert, *, catalog=None, rule=None, sender: str = "ioc-monitor@localhost",
                 sender_name: str | None = None, web: str | None = None) -> bytes:
    ET.register_namespace("", CAP_NS)
    mtype = msg_type(alert)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", cap_identifier(alert, mtype))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(alert.ts))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", mtype)
    _sub(root, "scope", "Public")
    if mtype != "Alert":
        original = f"{sender},ioc.{alert.id},{cap_time(alert.started or alert.ts)}"
        _sub(root, "references", original)
    if alert.incident:
        _sub(root, "incidents", f"ioc.incident.{alert.incident}")
    cap_cfg = dict(getattr(rule, "cap", {}) or {})
    category = cap_cfg.get("category") or ("Met" if alert.rule.startswith("rain") else "Other")
    severity = _SEVERITY.get(alert.severity, "Unknown")
    if alert.labels.get("level") == "4":
        severity = "Extreme"
    urgency = "Past" if alert.state == "resolved" else _URGENCY.get(alert.severity, "Unknown")
    certainty = cap_cfg.get("certainty", "Observed")
    for lang, code in (("vi", "vi-VN"), ("en", "en-US")):
        info = _sub(root, "info")
        _sub(info, "language", code)
        _sub(info, "category", category)
        _sub(info, "event", cap_cfg.get(f"event_{lang}") or alert.rule)
        if mtype == "Cancel":
            _sub(info, "responseType", "AllClear")
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        _sub(info, "onset", cap_time(alert.started or alert.ts))
        if sender_name:
            _sub(info, "senderName", sender_name)
        text = alert.message.get(lang) or alert.message.get("en") or alert.rule
        if mtype == "Cancel":
            text = ("Đã kết thúc: " if lang == "vi" else "Ended: ") + text
        headline = text.split(". ")[0]
        _sub(info, "headline", headline[:157] + "..." if len(headline) > 160 else headline)
        _sub(info, "description", text)
        if web:
            _sub(info, "web", web)
        params = {"rule": alert.rule, "entity": alert.entity, "alert_id": alert.id}
        if alert.value is not None:
            params["value"] = str(alert.value)
        params.update({f"label.{k}": v for k, v in sorted(alert.labels.items())})
        for k, v in params.items():
            p = _sub(info, "parameter")
            _sub(p, "valueName", k)
            _sub(p, "value", v)
        _area(info, alert, catalog, lang)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
