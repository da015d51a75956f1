"""An Atom feed (RFC 4287) of the current CAP messages — how aggregators poll a CAP source.

One entry per current alert: each active alert, and each ended alert whose AllClear has not yet
expired (so a poller learns that it ended).  The entry's `id` is stable per alert (urn:uuid from
sender + alert id) and its `updated` is the `sent` of the alert's latest message, so a poller
fetches the CAP XML behind `<link rel="alternate" type="application/cap+xml">` only when it
changed.  Text is in one language per feed (`lang`: vi or en).  Pure: the caller passes "now".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterable, Sequence
from xml.etree import ElementTree as ET

from alerts.cap import cap_time, category_of, expires_s, scope_of
from alerts.cap_messages import CapMessage
from ioc.records import Alert

ATOM_NS = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CAP_MEDIA_TYPE = "application/cap+xml"


@dataclass(frozen=True)
class FeedItem:
    alert: Alert  # the current record
    messages: Sequence[CapMessage]  # its CAP messages, oldest first
    rule: object | None = None


def entry_id(sender: str, alert_id: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"cap:{sender}:{alert_id}"))


def current(items: Iterable[FeedItem], now_s: float) -> list[FeedItem]:
    """Active alerts, and ended ones whose AllClear is still in force at `now_s`; newest first."""
    out = [it for it in items if it.messages and (it.messages[-1].kind != "allclear"
                                                    or expires_s(it.messages[-1], it.rule) > now_s)]
    return sorted(out, key=lambda it: (it.messages[-1].sent_s, it.alert.id), reverse=True)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def atom_feed(items: Sequence[FeedItem], *, settings, base_url: str, lang: str = "vi", now_s: float) -> bytes:
    """The feed XML.  `base_url`: absolute base of the links (the public URL, else the request's);
    `now_s`: when the feed is built (epoch s), its `updated` when no entry is newer."""
    ET.register_namespace("", ATOM_NS)
    base = base_url.rstrip("/")
    name = settings.sender_name.get(lang) or settings.sender_name.get("vi") or settings.sender
    root = ET.Element(f"{{{ATOM_NS}}}feed", {_XML_LANG: lang})
    _sub(root, "id", "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"cap-feed:{settings.sender}")))
    _sub(root, "title", ("Cảnh báo CAP – " if lang == "vi" else "CAP alerts – ") + name)
    newest = max((it.messages[-1].sent_s for it in items), default=int(now_s))
    _sub(root, "updated", cap_time(newest))
    author = _sub(root, "author")
    _sub(author, "name", name)
    _sub(author, "email", settings.sender)
    _sub(root, "link", rel="self", type="application/atom+xml", href=f"{base}/api/cap/feed.atom?lang={lang}")
    _sub(root, "generator", "ioc-monitor")
    for it in items:
        last, first = it.messages[-1], it.messages[0]
        a = last.alert
        entry = _sub(root, "entry")
        _sub(entry, "id", entry_id(settings.sender, it.alert.id))
        text = a.message.get(lang) or a.message.get("en") or a.rule
        if last.kind == "allclear":
            text = ("Đã kết thúc: " if lang == "vi" else "Ended: ") + text
        _sub(entry, "title", text.split(". ")[0][:200])
        _sub(entry, "updated", cap_time(last.sent_s))
        _sub(entry, "published", cap_time(first.sent_s))
        _sub(entry, "summary", text)
        _sub(entry, "category", term=category_of(a, it.rule), scheme="urn:oasis:names:tc:emergency:cap:1.2:category")
        _sub(entry, "category", term=scope_of(a, it.rule), scheme="urn:oasis:names:tc:emergency:cap:1.2:scope")
        _sub(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=f"{base}/api/alerts/{it.alert.id}/cap")
        web = settings.web(it.alert.id, base)
        if web:
            _sub(entry, "link", rel="related", type="text/html", href=web)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
