"""CAP over HTTP: the alert's messages and the Atom feed (used by ioc/alerts_api.py's routes).

Messages are derived from the alert's stored audit log (alerts/cap_messages.py), so they are the
same after a restart.  The feed's "now" is the event time of the pipeline (its most advanced
watermark), like every other time the core compares, so an AllClear leaves the feed when
event time passes its `expires`.
"""

from __future__ import annotations

import time
from typing import Any

from alerts import cap as cap_xml
from alerts.cap import ALLCLEAR_EXPIRES_S
from alerts.cap_feed import FeedItem, atom_feed, current
from alerts.cap_messages import cap_messages
from ioc.records import Alert
from ioc.timeutil import parse_ts

FEED_RESOLVED_LOOKBACK = 500  # ended alerts considered for their AllClear
MAX_FEED_ENTRIES = 2000


class CapNotFound(KeyError):
    """No message with that identifier for the alert."""


def _rule(service: Any, alert: Alert):
    return service.rule(alert.rule) if hasattr(service, "rule") else None


def _messages(service: Any, alert: Alert):
    history = service.history(alert.id) if hasattr(service, "history") else None
    return cap_messages(alert, history)


def alert_cap_xml(service: Any, alert: Alert, settings, *, base_url: str | None,
                  identifier: str | None = None) -> bytes:
    """The latest message of the alert, or the one named `identifier` (CapNotFound)."""
    msgs = _messages(service, alert)
    try:
        i = cap_xml.message_index(msgs, identifier)
    except KeyError:
        raise CapNotFound(identifier) from None
    return cap_xml.render_cap(msgs[i], msgs[:i], catalog=getattr(service, "catalog", None), rule=_rule(service, alert),
                      settings=settings, base_url=base_url)


def event_now(service: Any, clock=time.time) -> float:
    wm = getattr(service, "watermarks", None)
    return max(wm.values()) if isinstance(wm, dict) and wm else clock()


def feed_xml(service: Any, settings, *, base_url: str, lang: str, scope: str | None = None,
             clock=time.time) -> bytes:
    """The Atom feed (blocking: SQLite reads; run it in a worker thread).  `scope` Public: only the
    messages a public aggregator may pass on."""
    now = event_now(service, clock)
    alerts = {a.id: a for a in service.list(state="active", limit=MAX_FEED_ENTRIES)}
    # an ended alert is current while its AllClear has not expired (sent ≥ the end, + an hour of slack
    # for a sent moved past earlier messages): older ones are not even read
    horizon = now - ALLCLEAR_EXPIRES_S - 3600
    for a in service.list(state="resolved", limit=FEED_RESOLVED_LOOKBACK):
        if parse_ts(a.ts) > horizon:
            alerts.setdefault(a.id, a)
    if scope is not None:
        alerts = {k: a for k, a in alerts.items() if cap_xml.scope_of(a, _rule(service, a)) == scope}
    items = [FeedItem(a, _messages(service, a), _rule(service, a)) for a in alerts.values()]
    return atom_feed(current(items, now)[:MAX_FEED_ENTRIES], settings=settings, base_url=base_url, lang=lang,
                     now_s=now)
