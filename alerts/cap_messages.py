"""The CAP messages of one alert, derived from its audit log (pure, no clock).

Aggregators keep a message per (sender, identifier) and follow `references`,
so each alert is a chain of messages that never changes once issued:

- `firing`   → msgType Alert,  identifier `ioc.{alert id}`
- `update`   → msgType Update, identifier `ioc.{alert id}.update.{sent}` (severity, level or labels changed)
- `resolved` → msgType Update with responseType AllClear, `ioc.{alert id}.allclear.{sent}`

`sent` is the transition's event time in whole seconds, moved one second past
the previous message when two fall in the same second (or a late reading made
the later transition's time earlier), so it strictly increases along the
chain; `{sent}` in the identifier is that epoch second, so identifiers are
unique per alert and a replay — which re-derives the same audit — gives the
same identifiers.  Each message is rendered from the alert as it was at that
transition (the audit's snapshot), never from the current record.

Not messages: an acknowledgement, comment or assignment is an operator's
internal action; public receivers are not told (the IOC's own people are, by
the notification channels).  Cancel is not used: CAP reserves it for
withdrawing messages issued in error, and an alert that ends is an AllClear.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ioc.records import Alert
from ioc.timeutil import parse_ts

_KIND = {"firing": "alert", "update": "update", "resolved": "allclear"}


@dataclass(frozen=True)
class CapMessage:
    alert: Alert  # the alert as it was at this transition
    kind: str  # alert | update | allclear
    identifier: str
    sent_s: int  # epoch seconds; strictly increasing along an alert's messages

    @property
    def msg_type(self) -> str:
        return "Alert" if self.kind == "alert" else "Update"


def _snapshot(entry: dict) -> Alert | None:
    try:
        return msgspec.convert(entry["alert"], Alert)
    except (KeyError, TypeError, msgspec.ValidationError):  # an entry of an older version: skip it
        return None


def cap_messages(alert: Alert, history: list[dict] | None = None) -> list[CapMessage]:
    """Every CAP message of `alert`, oldest first, from its audit entries (oldest first).  An operator's
    test alert (alerts/test_alert.py) has none: it is never published."""
    from alerts.test_alert import is_test

    if is_test(alert):
        return []
    steps: list[tuple[str, Alert]] = []
    seen: set = set()
    for entry in history or ():
        kind = _KIND.get(entry.get("transition", ""))
        if kind is None or entry.get("id") != alert.id:
            continue
        snap = _snapshot(entry)
        if snap is None:
            continue
        if not steps and kind != "alert":  # the audit lost the beginning: start from the alert itself
            steps.append(("alert", _first(alert)))
        if steps and steps[-1][0] == "allclear":
            break  # nothing follows the end of an alert
        if kind == "alert" and steps:
            continue
        mark = (kind, snap.ts, snap.severity, tuple(sorted(snap.labels.items())))
        if mark in seen:  # a transition recorded twice (a replay after a crash): one message
            continue
        seen.add(mark)
        steps.append((kind, snap))
    if not steps:
        steps.append(("alert", _first(alert)))
    if history is None and alert.state != "resolved" and alert.started and alert.ts != alert.started:
        steps.append(("update", alert))  # no audit at hand (a notifier): the alert changed since it fired
    if alert.state == "resolved" and steps[-1][0] != "allclear":
        steps.append(("allclear", alert))
    out: list[CapMessage] = []
    prev = None
    for kind, snap in steps:
        sent = int(parse_ts(snap.ts))
        if prev is not None and sent <= prev:
            sent = prev + 1
        ident = f"ioc.{alert.id}" if kind == "alert" else f"ioc.{alert.id}.{kind}.{sent}"
        out.append(CapMessage(snap, kind, ident, sent))
        prev = sent
    return out


def _first(alert: Alert) -> Alert:
    """The alert as it fired, when the audit does not have it (an engine without history)."""
    return msgspec.structs.replace(alert, state="firing", ts=alert.started or alert.ts, acknowledged=None,
                                   comments=[], assignee=None)
