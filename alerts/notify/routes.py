"""Notification routes (pure), in the Alertmanager manner.

A tree: an alert enters at the root and goes down into the first child whose
matchers all hold (and on into the next ones while a matched child says
`continue: true`); where no child matches, the node itself takes it.  Children
inherit `receivers`' settings (group_by, the three timers, channels) from their
parent.  `unit: X` matches an alert of unit X or of any unit below X (its
stations and communes, from the catalog's ancestors).  Each route can escalate:
`escalate: [{after: 10m, receivers: [...]}, ...]` — unacknowledged after that
long, the next tier is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ioc.records import Alert

from alerts.notify.directory import CHANNELS, Directory, NotifyConfigError

_ROUTE_KEYS = {"name", "match", "match_re", "receivers", "channels", "group_by", "group_wait", "group_interval",
               "repeat_interval", "escalate", "continue", "routes"}


@dataclass(frozen=True)
class Tier:
    after_s: float
    receivers: tuple[str, ...]
    channels: tuple[str, ...] = ()  # () = every channel the person has (not the route's)


@dataclass(frozen=True)
class Route:
    id: str
    match: tuple[tuple[str, tuple[str, ...]], ...] = ()
    match_re: tuple[tuple[str, re.Pattern], ...] = ()
    receivers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # () = every channel the person has
    group_by: tuple[str, ...] = ("incident",)
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    escalate: tuple[Tier, ...] = ()
    continue_: bool = False
    children: tuple["Route", ...] = ()

    def matches(self, labels: dict[str, str], units: tuple[str, ...]) -> bool:
        for k, values in self.match:
            if k == "unit":
                if not any(u in values for u in units):
                    return False
            elif labels.get(k) not in values:
                return False
        for k, rx in self.match_re:
            candidates = units if k == "unit" else ((labels[k],) if k in labels else ())
            if not any(rx.fullmatch(v) for v in candidates):
                return False
        return True


def alert_labels(a: Alert) -> dict[str, str]:
    """What routes match on: the alert's labels plus rule, entity, severity, state and incident."""
    return {**a.labels, "rule": a.rule, "alertname": a.rule, "entity": a.entity, "severity": a.severity,
            **({"incident": a.incident} if a.incident else {})}


def unit_chain(unit: str | None, ancestors) -> tuple[str, ...]:
    """The unit and its ancestors (nearest first); `ancestors` is catalog.ancestors or None."""
    if not unit:
        return ()
    return (unit, *(ancestors(unit) if ancestors else ()))


def select(root: Route, labels: dict[str, str], units: tuple[str, ...]) -> list[Route]:
    """The routes that take an alert (Alertmanager semantics)."""

    def walk(node: Route) -> list[Route]:
        if not node.matches(labels, units):
            return []
        out: list[Route] = []
        for child in node.children:
            got = walk(child)
            if got:
                out.extend(got)
                if not child.continue_:
                    break
        return out or [node]

    return walk(root)


def group_value(a: Alert, name: str) -> str:
    if name == "incident":
        return a.incident or a.id
    if name in ("rule", "alertname"):
        return a.rule
    if name == "entity":
        return a.entity
    if name == "severity":
        return a.severity
    return a.labels.get(name, "")


def group_key(route: Route, a: Alert) -> str:
    """The group an alert joins on a route: the values of its group_by labels ("incident=…")."""
    return ",".join(f"{n}={group_value(a, n)}" for n in route.group_by) or f"alert={a.id}"


def _strs(v, where: str, what: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v):
        raise NotifyConfigError(f"{where}: expected {what}")
    return tuple(str(x) for x in v)


def parse_routes(raw: dict, source: str, directory: Directory, parse_duration, unit_ids: set[str] | None) -> Route:
    """The route tree of a `routes:` mapping; every error names the file and the route's path."""

    def dur(d: dict, key: str, default: float, where: str) -> float:
        if key not in d:
            return default
        try:
            return parse_duration(d[key])
        except ValueError as exc:
            raise NotifyConfigError(f"{where}.{key}: {exc}") from None

    def build(d: object, path: str, parent: Route | None) -> Route:
        if not isinstance(d, dict):
            raise NotifyConfigError(f"{source}: {path}: a route is a mapping")
        where = f"{source}: {path}" + (f" ({d['name']})" if isinstance(d.get("name"), str) else "")
        unknown = set(d) - _ROUTE_KEYS
        if unknown:
            raise NotifyConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        match = []
        for k, v in (d.get("match") or {}).items():
            values = _strs(v, f"{where}.match.{k}", "a value or a list of values")
            if k == "unit" and unit_ids is not None:
                for u in values:
                    if u not in unit_ids:
                        raise NotifyConfigError(f"{where}.match.unit: {u!r} is not a unit of the catalog")
            match.append((str(k), values))
        match_re = []
        for k, v in (d.get("match_re") or {}).items():
            try:
                match_re.append((str(k), re.compile(str(v))))
            except re.error as exc:
                raise NotifyConfigError(f"{where}.match_re.{k}: not a regular expression: {exc}") from None
        receivers = _strs(d.get("receivers", list(parent.receivers) if parent else []), f"{where}.receivers",
                          "a list of people or groups")
        for r in receivers:
            if not directory.knows(r):
                raise NotifyConfigError(f"{where}.receivers: {r!r} is not a person or group of the directory")
        channels = _strs(d.get("channels", list(parent.channels) if parent else []), f"{where}.channels",
                         "a list of channels")
        for c in channels:
            if c not in CHANNELS:
                raise NotifyConfigError(f"{where}.channels: {c!r} is not one of {', '.join(CHANNELS)}")
        tiers = []
        esc = d.get("escalate", None)
        if esc is None and parent is not None and "receivers" not in d:
            tiers = list(parent.escalate)
        for i, t in enumerate(esc or []):
            tw = f"{where}.escalate[{i}]"
            if not isinstance(t, dict) or "after" not in t or "receivers" not in t:
                raise NotifyConfigError(f"{tw}: expected {{after: 10m, receivers: [...]}}")
            rs = _strs(t["receivers"], f"{tw}.receivers", "a list of people or groups")
            for r in rs:
                if not directory.knows(r):
                    raise NotifyConfigError(f"{tw}.receivers: {r!r} is not a person or group of the directory")
            after = dur(t, "after", 0.0, tw)
            if after <= 0:
                raise NotifyConfigError(f"{tw}.after: must be more than 0")
            tch = _strs(t.get("channels", []), f"{tw}.channels", "a list of channels")
            for c in tch:
                if c not in CHANNELS:
                    raise NotifyConfigError(f"{tw}.channels: {c!r} is not one of {', '.join(CHANNELS)}")
            tiers.append(Tier(after, rs, tch))
        cont = d.get("continue", False)
        if not isinstance(cont, bool):
            raise NotifyConfigError(f"{where}.continue: expected true or false")
        base = parent or Route("root")
        node = Route(
            id=str(d.get("name") or path), match=tuple(match), match_re=tuple(match_re), receivers=receivers,
            channels=channels,
            group_by=_strs(d["group_by"], f"{where}.group_by", "a list of labels") if "group_by" in d else base.group_by,
            group_wait_s=dur(d, "group_wait", base.group_wait_s, where),
            group_interval_s=dur(d, "group_interval", base.group_interval_s, where),
            repeat_interval_s=dur(d, "repeat_interval", base.repeat_interval_s, where),
            escalate=tuple(tiers), continue_=cont)
        kids = d.get("routes") or []
        if not isinstance(kids, list):
            raise NotifyConfigError(f"{where}.routes: expected a list of routes")
        children = tuple(build(c, f"{path}.routes[{i}]", node) for i, c in enumerate(kids))
        return Route(**{**node.__dict__, "children": children})

    if parent_check := raw.get("match"):
        raise NotifyConfigError(f"{source}: routes: the root route matches every alert (got match: {parent_check})")
    return build(raw, "routes", None)
