"""Escalation (pure): unacknowledged `after` the first message → the next tier is told.

Each tier's `after` counts from the incident's first message (tiers at 10m and
30m: the second tier hears 30 minutes after the first message).  An
acknowledgement of every active alert of the group, or its resolution, stops
it for good; the due time is wall clock, persisted with the group, so a
restart neither loses nor repeats a tier.
"""

from __future__ import annotations

from alerts.notify.grouping import Group
from alerts.notify.routes import Route


def escalation_due(g: Group, route: Route, now: float, acknowledged: set[str]) -> int | None:
    """The tier (1-based) to tell now, or None; advances or stops the group's escalation."""
    if g.escalate_at is None or now < g.escalate_at:
        return None
    if g.done or not g.active:
        g.escalate_at, g.escalation_stopped = None, "resolved"
        return None
    if all(a["id"] in acknowledged for a in g.active):
        g.escalate_at, g.escalation_stopped = None, "acknowledged"
        return None
    if g.tier >= len(route.escalate):
        g.escalate_at = None
        return None
    g.tier += 1
    nxt = route.escalate[g.tier] if g.tier < len(route.escalate) else None
    g.escalate_at = (g.first_sent_at or now) + nxt.after_s if nxt is not None else None
    return g.tier


def stop_if_acknowledged(g: Group, acknowledged: set[str]) -> bool:
    """Stop a pending escalation as soon as every active alert is acknowledged (True if it stopped)."""
    if g.escalate_at is not None and g.active and all(a["id"] in acknowledged for a in g.active):
        g.escalate_at, g.escalation_stopped = None, "acknowledged"
        return True
    return False
