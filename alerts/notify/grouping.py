"""Notification groups (pure): when an incident's message is due, and what it says.

One group per (route, group_by values) — with `group_by: [incident]` a storm
is one group.  The first message waits `group_wait` (so the stations of one
storm arrive together); a change after a message waits until
`group_interval` after it; an incident still active and unacknowledged is
repeated every `repeat_interval`.  A message is sent only when what it says
changed: its transition key is the digest of the (alert, state, severity) set,
so a replayed change never makes a second message.  Times are wall-clock
epoch seconds, persisted with the group, so a restart resumes the timers.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

from alerts.notify.routes import Route

RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass
class Group:
    route: str
    key: str  # "incident=…"
    created_at: float
    alerts: dict[str, dict] = field(default_factory=dict)  # alert id → latest record
    flush_at: float | None = None  # the next message is due (group_wait / group_interval)
    last_sent_at: float | None = None
    first_sent_at: float | None = None
    sent_digest: str = ""
    sent_rank: int = -1  # highest severity already told
    n_sent: int = 0
    tier: int = 0  # escalation tiers told
    escalate_at: float | None = None
    escalation_stopped: str = ""  # "acknowledged" / "resolved" once it stopped
    repeat_at: float | None = None
    n_repeat: int = 0
    done: bool = False
    told: dict[str, str] = field(default_factory=dict)  # "person|channel" → digest of their last message

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Group":
        return cls(**d)

    @property
    def active(self) -> list[dict]:
        return [a for a in self.alerts.values() if a.get("state") != "resolved"]

    def top_rank(self) -> int:
        return max((RANK.get(a.get("severity", "info"), 0) for a in (self.active or self.alerts.values())), default=0)

    def critical(self) -> bool:
        return self.top_rank() >= RANK["critical"]


def digest(alerts) -> str:
    items = sorted(f"{a['id']}|{a.get('state')}|{a.get('severity')}" for a in alerts)
    return hashlib.sha1("\n".join(items).encode()).hexdigest()[:12]


def on_alert(g: Group, record: dict, route: Route, now: float) -> None:
    """Fold one alert transition into its group and schedule the next message."""
    g.alerts[record["id"]] = record
    if g.flush_at is not None:
        return
    if g.n_sent == 0:
        g.flush_at = g.created_at + route.group_wait_s
    else:
        g.flush_at = max(now, (g.last_sent_at or now) + route.group_interval_s)


def flush(g: Group, route: Route, now: float) -> str | None:
    """At flush time: the kind of message to send (firing, update, escalated, resolved) or None."""
    g.flush_at = None
    all_resolved = not g.active
    d = digest(g.alerts.values())
    if d == g.sent_digest:
        return None
    if all_resolved and g.n_sent == 0:  # over before anyone was told: tell no one
        g.done = True
        return None
    if all_resolved:
        kind = "resolved"
        g.done = True
        g.escalate_at, g.repeat_at = None, None
    elif g.n_sent == 0:
        kind = "firing"
    elif g.top_rank() > g.sent_rank:
        kind = "escalated"
    else:
        kind = "update"
    g.sent_digest = d
    g.sent_rank = max(g.sent_rank, g.top_rank())
    g.n_sent += 1
    g.last_sent_at = now
    if g.first_sent_at is None and not all_resolved:
        g.first_sent_at = now
        if route.escalate:
            g.escalate_at = now + route.escalate[0].after_s
    if not all_resolved and route.repeat_interval_s > 0:
        g.repeat_at = now + route.repeat_interval_s
    return kind


def repeat_due(g: Group, route: Route, now: float, acknowledged: set[str]) -> bool:
    """A reminder for an active incident nobody acknowledged; reschedules the next one."""
    if g.repeat_at is None or now < g.repeat_at or g.done:
        return False
    g.repeat_at = now + route.repeat_interval_s if route.repeat_interval_s > 0 else None
    if not g.active or all(a["id"] in acknowledged for a in g.active):
        return False
    g.n_repeat += 1
    return True


def merge_acknowledged(g: Group, acked: dict[str, dict]) -> None:
    """Mark the group's records acknowledged as the store knows them (acks never reach the outbox)."""
    for aid, ack in acked.items():
        if aid in g.alerts and not g.alerts[aid].get("acknowledged"):
            g.alerts[aid] = {**g.alerts[aid], "acknowledged": ack}
