"""Message text (pure): one short message per incident, in the recipient's language.

A storm over 15 stations is one message listing its stations (the first
MAX_LINES, then "and N more"), then one per update, escalation and
resolution.  Vietnamese text uses comma decimals and "HH:MM DD/MM/YYYY";
times are Asia/Ho_Chi_Minh.  The link opens the alert in the console.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ioc.timeutil import local, parse_ts

MAX_LINES = 10
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")

_SEVERITY = {
    "vi": {"critical": "KHẨN CẤP", "warning": "CẢNH BÁO", "info": "THÔNG TIN"},
    "en": {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"},
}
_KIND = {
    "vi": {"firing": "", "update": "Cập nhật", "escalated": "Tăng mức", "resolved": "ĐÃ KẾT THÚC",
           "repeat": "Nhắc lại", "unacked": "Chưa ai xác nhận"},
    "en": {"firing": "", "update": "Update", "escalated": "Escalated", "resolved": "RESOLVED",
           "repeat": "Reminder", "unacked": "Not acknowledged"},
}
_MORE = {"vi": "… và {n} cảnh báo khác", "en": "… and {n} more"}
_OPEN = {"vi": "Xem", "en": "Open"}
_COUNT = {"vi": "{n} cảnh báo", "en": "{n} alerts"}
_UNACKED = {"vi": "Chưa ai xác nhận sau {m} phút.", "en": "Not acknowledged after {m} min."}
_DONE = {"vi": "(đã kết thúc)", "en": "(resolved)"}
_ACKED = {"vi": "(đã xác nhận: {by})", "en": "(acknowledged by {by})"}
_TEST = {"vi": "THỬ", "en": "TEST"}  # an operator's test alert (alerts/test_alert.py): never a real incident


@dataclass(frozen=True)
class Message:
    subject: str
    text: str  # the whole message (e-mail body, Telegram, Zalo, webhook)
    short: str  # SMS: the subject, the count and the link


def number_vi(text: str) -> str:
    """'82.5 mm' → '82,5 mm' (Vietnamese decimal comma)."""
    return _DECIMAL.sub(",", text)


def when(ts: str, lang: str) -> str:
    d = local(parse_ts(ts))
    return d.strftime("%H:%M %d/%m/%Y") if lang == "vi" else d.strftime("%Y-%m-%d %H:%M (UTC+7)")


def _line(a: dict, lang: str) -> str:
    text = (a.get("message") or {}).get(lang) or (a.get("message") or {}).get("vi") or f"{a['rule']} {a['entity']}"
    # the alert's text is already in the language's number format (alerts/messages.py): re-writing
    # "." as "," here would turn the thousands of "5.000 mm" into a decimal
    tail = ""
    if a.get("state") == "resolved":
        tail = " " + _DONE[lang]
    elif a.get("acknowledged"):
        tail = " " + _ACKED[lang].format(by=a["acknowledged"].get("by", "?"))
    return f"- {text}{tail}"


def render(alerts: list[dict], kind: str, lang: str, *, title: str = "IOC", link: str | None = None,
           waited_s: float | None = None) -> Message:
    """`alerts`: the incident's alert records (firing ones first is not required); `kind`: firing, update,
    escalated, resolved, repeat or unacked (an escalation tier: `waited_s` since the first message)."""
    lang = lang if lang in _SEVERITY else "vi"
    rank = {"info": 0, "warning": 1, "critical": 2}
    active = [a for a in alerts if a.get("state") != "resolved"]
    shown = sorted(active or alerts, key=lambda a: (-rank.get(a.get("severity", "info"), 0), a.get("ts", ""),
                                                     a.get("entity", "")))
    if kind != "resolved":
        shown += [a for a in alerts if a.get("state") == "resolved" and a not in shown]
    top = max((a.get("severity", "info") for a in (active or alerts)), key=lambda s: rank.get(s, 0))
    label = _KIND[lang].get(kind, "")
    head = " — ".join(x for x in (_SEVERITY[lang].get(top, top.upper()), label) if x)
    first = shown[0]
    n = len(active) if kind != "resolved" else len(alerts)
    tag = f" [{_TEST[lang]}]" if any((a.get("labels") or {}).get("test") == "true" for a in alerts) else ""
    subject = f"[{title}]{tag} {head}: {first['message'].get(lang, '')}"
    if n > 1:
        subject = f"[{title}]{tag} {head}: {_COUNT[lang].format(n=n)}"
    subject = subject.split("\n")[0][:160]
    lines = [subject]
    if kind == "unacked" and waited_s is not None:
        lines.append(_UNACKED[lang].format(m=_minutes(waited_s, lang)))
    for a in shown[:MAX_LINES]:
        lines.append(_line(a, lang))
    if len(shown) > MAX_LINES:
        lines.append(_MORE[lang].format(n=len(shown) - MAX_LINES))
    latest = max(a.get("ts", "") for a in alerts)
    if latest:
        lines.append(when(latest, lang))
    if link:
        lines.append(f"{_OPEN[lang]}: {link}")
    short = subject if len(subject) <= 120 else subject[:119] + "…"
    if link:
        short += f" {link}"
    return Message(subject, "\n".join(lines), short)


def _minutes(seconds: float, lang: str) -> str:
    m = seconds / 60.0
    text = f"{m:.0f}" if m >= 10 or m == int(m) else f"{m:.1f}"
    return number_vi(text) if lang == "vi" else text


def link_for(public_url: str | None, alert_id: str) -> str | None:
    return f"{public_url}/console#alert={alert_id}" if public_url else None
