"""From alert transitions and the clock to per-recipient deliveries (pure: no I/O, `now` passed in).

`ingest()` routes one outbox record into its groups; `tick()` runs the groups'
due timers (message, escalation tier, reminder) and returns the deliveries
they make.  A delivery key is `recipient|channel|incident|transition`, the
transition being the digest of what that person is told (or the tier or
reminder number), so the same step replayed after a crash yields the same
keys and the store ignores them.  Each person hears only of the alerts in the
units they cover, in their language, over the route's channels they have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ioc.records import Alert

from alerts.lifecycle import alert_from_builtins
from alerts.notify.config import NotifyConfig
from alerts.notify.deliveries import NewDelivery
from alerts.notify.directory import Person
from alerts.notify.escalation import escalation_due, stop_if_acknowledged
from alerts.notify.grouping import Group, digest, flush, merge_acknowledged, on_alert, repeat_due
from alerts.notify.messages import link_for, render
from alerts.notify.routes import Route, alert_labels, group_key, select, unit_chain


@dataclass(frozen=True)
class Recipient:
    person: Person
    channel: str
    address: str


def routes_by_id(root: Route) -> dict[str, Route]:
    out, stack = {}, [root]
    while stack:
        r = stack.pop()
        out[r.id] = r
        stack.extend(r.children)
    return out


def _record(a: dict) -> dict:
    slim = {k: v for k, v in a.items() if k != "comments"}
    return slim


class Planner:
    def __init__(self, ancestors: Callable[[str], tuple[str, ...]] | None = None) -> None:
        self.ancestors = ancestors

    # ------------------------------------------------------------ routing
    def routes_for(self, cfg: NotifyConfig, a: Alert) -> list[Route]:
        return select(cfg.root, alert_labels(a), unit_chain(a.labels.get("unit"), self.ancestors))

    def ingest(self, cfg: NotifyConfig, groups: dict[tuple[str, str], Group], record: dict, now: float) -> list[Group]:
        """Fold one outbox record (an alert transition) into the groups of the routes that take it."""
        a = alert_from_builtins(record)
        changed = []
        for route in self.routes_for(cfg, a):
            if not route.receivers and not route.escalate:
                continue
            gk = group_key(route, a)
            g = groups.get((route.id, gk))
            if g is None or g.done:
                if a.state == "resolved":
                    continue  # its group was never told, or is over
                g = Group(route.id, gk, now)
                groups[(route.id, gk)] = g
            on_alert(g, _record(record), route, now)
            changed.append(g)
        return changed

    # ------------------------------------------------------------ timers
    def tick(self, cfg: NotifyConfig, groups: dict[tuple[str, str], Group], now: float,
             acknowledged: Callable[[list[str]], dict[str, dict]]) -> tuple[list[Group], list[NewDelivery]]:
        """Run every due timer; `acknowledged(ids)` → {id: ack} of those acknowledged (read from the store)."""
        routes = routes_by_id(cfg.root)
        changed: list[Group] = []
        out: list[NewDelivery] = []
        for gid in sorted(groups, key=lambda k: (groups[k].created_at, k)):
            g = groups[gid]
            route = routes.get(g.route, cfg.root)
            touched = False
            needs_ack = (g.escalate_at is not None and g.escalate_at <= now) or (
                g.repeat_at is not None and g.repeat_at <= now)
            acked: set[str] = set()
            if needs_ack and g.active:
                found = acknowledged([x["id"] for x in g.active])
                merge_acknowledged(g, found)
                acked = set(found)
                if stop_if_acknowledged(g, acked):
                    touched = True
            if g.flush_at is not None and g.flush_at <= now:
                kind = flush(g, route, now)
                touched = True
                if kind is not None:
                    out += self._deliveries(cfg, route, g, kind, self._told(route, g), now, "msg")
            tier = escalation_due(g, route, now, acked) if g.escalate_at is not None else None
            touched = touched or needs_ack
            if tier is not None:
                touched = True
                t = route.escalate[tier - 1]
                out += self._deliveries(cfg, route, g, "unacked", [(t.receivers, t.channels)], now,
                                        f"tier{tier}", waited_s=now - (g.first_sent_at or now))
            if repeat_due(g, route, now, acked):
                touched = True
                out += self._deliveries(cfg, route, g, "repeat", self._told(route, g), now, f"repeat{g.n_repeat}")
            if touched:
                changed.append(g)
            if g.done and g.escalate_at is None:
                del groups[gid]
        return changed, out

    @staticmethod
    def _told(route: Route, g: Group) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """(receivers, channels) of the first tier and of every escalation tier already told (updates and
        the end reach them all)."""
        return [(route.receivers, route.channels), *((t.receivers, t.channels) for t in route.escalate[: g.tier])]

    def recipients(self, cfg: NotifyConfig, tiers: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> list[Recipient]:
        """Each person once per channel: the tier's channels they have (all they have when it names none)."""
        out: dict[tuple[str, str], Recipient] = {}
        for receivers, channels in tiers:
            for p in cfg.directory.expand(receivers):
                for ch in channels or tuple(p.addresses):
                    if ch in p.addresses and (ch in cfg.channels or ch == "webhook"):
                        out.setdefault((p.id, ch), Recipient(p, ch, p.addresses[ch]))
        return list(out.values())

    def _deliveries(self, cfg: NotifyConfig, route: Route, g: Group, kind: str,
                    tiers: list[tuple[tuple[str, ...], tuple[str, ...]]], now: float, transition: str,
                    waited_s: float | None = None) -> list[NewDelivery]:
        out = []
        for rc in self.recipients(cfg, tiers):
            mine = [a for a in g.alerts.values()
                    if rc.person.covers(a.get("labels", {}).get("unit"), self.ancestors(a["labels"]["unit"])
                                        if self.ancestors and a.get("labels", {}).get("unit") else ())]
            if not mine:
                continue
            active = [a for a in mine if a.get("state") != "resolved"]
            k = kind
            if kind in ("firing", "update", "escalated") and not active:
                k = "resolved"
            if kind == "resolved" and active:
                k = "update"
            mine_digest, who = digest(mine), f"{rc.person.id}|{rc.channel}"
            if transition == "msg" and g.told.get(who) == mine_digest:
                continue  # what changed is in other units: nothing new for them
            if k in ("update", "escalated") and who not in g.told:
                k = "firing"  # their first message of the incident (a new station in their district)
            g.told[who] = mine_digest
            tr = f"{transition}:{mine_digest}" if transition == "msg" or transition.startswith("repeat") else transition
            first = (active or mine)[0]
            msg = render(mine, k, rc.person.language, title=cfg.title.get(rc.person.language, "IOC"),
                         link=link_for(cfg.public_url, first["id"]), waited_s=waited_s)
            next_at = now
            if not g.critical() and rc.person.quiet_hours is not None:
                next_at = rc.person.quiet_hours.end_after(now) or now
            key = f"{rc.person.id}|{rc.channel}|{g.key}|{tr}"
            out.append(NewDelivery(key, rc.person.id, rc.channel, rc.address, g.key, tr, k, msg.subject, msg.text,
                                   msg.short, {"kind": k, "incident": g.key, "alerts": mine},
                                   tuple(a["id"] for a in mine), next_at))
        return out

    # ------------------------------------------------------------ dry run
    def explain(self, cfg: NotifyConfig, a: Alert) -> list[dict]:
        """Who would be told of `a`, over which channel, after which waits (`ioc routes test`)."""
        rows = []
        for route in self.routes_for(cfg, a):
            unit = a.labels.get("unit")
            anc = self.ancestors(unit) if self.ancestors and unit else ()
            tiers = [(0.0, route.receivers, route.channels)] + [(t.after_s, t.receivers, t.channels)
                                                               for t in route.escalate]
            for i, (after, names, channels) in enumerate(tiers):
                for rc in self.recipients(cfg, [(names, channels)]):
                    if not rc.person.covers(unit, anc):
                        continue
                    rows.append({"route": route.id, "tier": i, "person": rc.person.id, "name": rc.person.name,
                                 "language": rc.person.language, "channel": rc.channel, "address": rc.address,
                                 "group_by": list(route.group_by), "wait_s": route.group_wait_s + after,
                                 "group_interval_s": route.group_interval_s,
                                 "repeat_interval_s": route.repeat_interval_s,
                                 "quiet_hours": a.severity != "critical" and rc.person.quiet_hours is not None})
        return rows
