"""CAP 1.2 (OASIS Common Alerting Protocol) XML for an alert's messages — an adapter.

    msgs = cap_messages(alert, engine.history(alert.id))          # alerts/cap_messages.py
    render_cap(msgs[-1], msgs[:-1], catalog=catalog, rule=engine.rule(alert.rule), settings=settings)
    alert_to_cap(alert, history=..., settings=...)                # the latest message in one call

What an aggregator gets (the contract is in docs/architecture.md §5):
- `sender` and `senderName` from configuration (ioc/cap_config.py), a new `identifier` per message,
  Update with a later `sent` and `references` listing every earlier message of the alert
  ("sender,identifier,sent" triples, space separated); an alert that ends is an Update with
  responseType AllClear and urgency Past (CAP's Cancel is for messages issued in error);
- `scope` Public for hazards (CAP categories other than Infra and Other), Restricted with a
  `restriction` for internal alerts (stale sensors, data quality, overdue dossiers, queues,
  anomalies); a rule's `cap.scope` overrides; `status` Actual (a rule's `cap.status`: Exercise, Test);
- one <info> per language (vi-VN, en-US) with `expires` (the rule's `cap.expires`, else 24 h; an
  AllClear 6 h), `web` (the alert's console page), `instruction` and `contact` (rule, else
  configuration), and an <area> with a circle or polygon and geocodes (alerts/cap_area.py).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Sequence
from xml.etree import ElementTree as ET

from alerts.cap_area import cap_area
from alerts.cap_messages import CapMessage, cap_messages
from alerts.rules import parse_duration
from ioc.records import Alert
from ioc.timeutil import LOCAL_TZ, parse_ts

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_SEVERITY = {"critical": "Severe", "warning": "Moderate", "info": "Minor"}
_URGENCY = {"critical": "Immediate", "warning": "Expected", "info": "Future"}
RESTRICTED_CATEGORIES = ("Infra", "Other")  # the IOC's own operations, not a hazard to the public
DEFAULT_EXPIRES_S = 24 * 3600
ALLCLEAR_EXPIRES_S = 6 * 3600  # long enough for a slow poller to see the end
_LANGS = (("vi", "vi-VN"), ("en", "en-US"))


def cap_time(ts: str | float) -> str:
    """CAP dateTime: local offset, whole seconds, never 'Z'."""
    t = parse_ts(ts) if isinstance(ts, str) else ts
    return datetime.fromtimestamp(int(t), LOCAL_TZ).isoformat(timespec="seconds")


def msg_type(alert: Alert) -> str:
    """msgType of the alert's latest message (an acknowledgement issues none)."""
    return cap_messages(alert, None)[-1].msg_type


def cap_identifier(alert: Alert, history: list[dict] | None = None) -> str:
    return cap_messages(alert, history)[-1].identifier


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def category_of(alert: Alert, rule) -> str:
    cap = getattr(rule, "cap", None) or {}
    return cap.get("category") or ("Met" if alert.rule.startswith("rain") else "Other")


def scope_of(alert: Alert, rule) -> str:
    cap = getattr(rule, "cap", None) or {}
    return cap.get("scope") or ("Restricted" if category_of(alert, rule) in RESTRICTED_CATEGORIES else "Public")


def expires_s(msg: CapMessage, rule) -> int:
    if msg.kind == "allclear":
        return msg.sent_s + ALLCLEAR_EXPIRES_S
    cap = getattr(rule, "cap", None) or {}
    return msg.sent_s + int(parse_duration(cap["expires"]) if cap.get("expires") else DEFAULT_EXPIRES_S)


def _area(info: ET.Element, alert: Alert, catalog, rule, lang: str) -> None:
    spec = cap_area(alert, catalog, rule)
    area = _sub(info, "area")
    _sub(area, "areaDesc", spec.desc.get(lang) or spec.desc.get("vi") or alert.entity)
    for p in spec.polygons:
        _sub(area, "polygon", p)
    for c in spec.circles:
        _sub(area, "circle", c)
    for name, value in spec.geocodes:
        g = _sub(area, "geocode")
        _sub(g, "valueName", name)
        _sub(g, "value", value)


def render_cap(msg: CapMessage, earlier: Sequence[CapMessage], *, catalog=None, rule=None, settings,
               base_url: str | None = None) -> bytes:
    """One message as CAP 1.2 XML; `earlier`: the alert's messages before it, oldest first.
    `settings`: an ioc.cap_config.CapSettings; `base_url` stands in for its public URL in `web`."""
    ET.register_namespace("", CAP_NS)
    a = msg.alert
    cap_cfg = dict(getattr(rule, "cap", None) or {})
    allclear = msg.kind == "allclear"
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", msg.identifier)
    _sub(root, "sender", settings.sender)
    _sub(root, "sent", cap_time(msg.sent_s))
    _sub(root, "status", cap_cfg.get("status", "Actual"))
    _sub(root, "msgType", msg.msg_type)
    scope = scope_of(a, rule)
    _sub(root, "scope", scope)
    if scope == "Restricted":
        _sub(root, "restriction", settings.restriction)
    if earlier:
        _sub(root, "references", " ".join(f"{settings.sender},{m.identifier},{cap_time(m.sent_s)}" for m in earlier))
    if a.incident:
        _sub(root, "incidents", f"ioc.incident.{a.incident}")
    category = category_of(a, rule)
    severity = _SEVERITY.get(a.severity, "Unknown")
    if a.labels.get("level") == "4":
        severity = "Extreme"
    urgency = "Past" if allclear else _URGENCY.get(a.severity, "Unknown")
    certainty = "Observed" if allclear else cap_cfg.get("certainty", "Observed")
    web = settings.web(a.id, base_url)
    contact = cap_cfg.get("contact") or settings.contact
    for lang, code in _LANGS:
        info = _sub(root, "info")
        _sub(info, "language", code)
        _sub(info, "category", category)
        _sub(info, "event", cap_cfg.get(f"event_{lang}") or a.rule)
        if allclear:
            _sub(info, "responseType", "AllClear")
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        _sub(info, "onset", cap_time(a.started or a.ts))
        _sub(info, "expires", cap_time(expires_s(msg, rule)))
        name = settings.sender_name.get(lang) or settings.sender_name.get("vi")
        if name:
            _sub(info, "senderName", name)
        text = a.message.get(lang) or a.message.get("en") or a.rule
        if allclear:
            text = ("Đã kết thúc: " if lang == "vi" else "Ended: ") + text
        headline = text.split(". ")[0]
        _sub(info, "headline", headline[:157] + "..." if len(headline) > 160 else headline)
        _sub(info, "description", text)
        instruction = None if allclear else cap_cfg.get(f"instruction_{lang}")
        if instruction:
            _sub(info, "instruction", instruction)
        if web:
            _sub(info, "web", web)
        if contact:
            _sub(info, "contact", contact)
        params = {"rule": a.rule, "entity": a.entity, "alert_id": a.id}
        if a.value is not None:
            params["value"] = str(a.value)
        params.update({f"label.{k}": v for k, v in sorted(a.labels.items())})
        for k, v in params.items():
            p = _sub(info, "parameter")
            _sub(p, "valueName", k)
            _sub(p, "value", v)
        _area(info, a, catalog, rule, lang)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


_ENV_KEYS = ("IOC_CAP_SENDER", "IOC_CAP_SENDER_NAME", "IOC_CAP_SENDER_NAME_EN", "IOC_PUBLIC_URL", "IOC_CAP_CONTACT",
             "IOC_CAP_RESTRICTION")
_ENV_SETTINGS: dict[tuple, object] = {}


def _settings(settings, sender: str | None, sender_name: str | None, catalog, web: str | None):
    from dataclasses import replace

    from ioc.cap_config import CapSettings, cap_settings_from_env

    if settings is None:
        key = (id(catalog), *(os.environ.get(k) for k in _ENV_KEYS))
        settings = _ENV_SETTINGS.get(key)
        if settings is None:  # read once per catalog and environment: a notifier renders many messages
            settings = _ENV_SETTINGS[key] = cap_settings_from_env(catalog)
    if sender:
        settings = replace(settings, sender=sender)
    if sender_name:
        settings = replace(settings, sender_name={"vi": sender_name, "en": sender_name})
    if web:
        settings = replace(settings, public_url=web.rstrip("/"))
    assert isinstance(settings, CapSettings)
    return settings


def alert_to_cap(alert: Alert, *, catalog=None, rule=None, history: list[dict] | None = None, settings=None,
                 sender: str | None = None, sender_name: str | None = None, web: str | None = None,
                 identifier: str | None = None, base_url: str | None = None) -> bytes:
    """The alert's latest CAP message (or the one with `identifier`; KeyError when it has none).

    `history`: the alert's audit entries (AlertEngine.history), from which the chain of messages is
    derived; without it the chain is rebuilt from the alert alone (first message, then its current
    state).  `settings` (ioc.cap_config.CapSettings) defaults to the environment's; `sender`,
    `sender_name` and `web` (a base URL) override it."""
    settings = _settings(settings, sender, sender_name, catalog, web)
    msgs = cap_messages(alert, history)
    i = message_index(msgs, identifier)
    return render_cap(msgs[i], msgs[:i], catalog=catalog, rule=rule, settings=settings, base_url=base_url)


def message_index(msgs: list, identifier: str | None) -> int:
    """Where in an alert's chain the message `identifier` is (None: the latest); KeyError if nowhere
    (an alert without messages, such as a test alert, has no latest either)."""
    if not msgs:
        raise KeyError(identifier)
    if identifier is None:
        return len(msgs) - 1
    for k, m in enumerate(msgs):
        if m.identifier == identifier:
            return k
    raise KeyError(identifier)
