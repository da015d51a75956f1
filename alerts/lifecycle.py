"""Alert lifecycle (pure): firing → acknowledged → resolved.

- One active alert per key (rule, entity, scope) — scope is "" except where
  one rule watches two kinds of entity whose ids could collide (the `anomaly`
  rule on a unit and on a site of the same id; `sensor_stale` on a station
  and a camera): there it is the feed.  The id is stable and deterministic:
  sha1("rule|entity[|scope]|started")[:16], `started` being the event time
  the alert first fired, so a replay produces the same ids.
- A re-trigger while active updates the alert (value, severity, labels) and
  never creates a second one; only changes that matter (severity, labels such
  as the risk level) produce an output record.
- Operator actions name the acting principal and carry a wall-clock `at`
  that the caller passes in; none of them feeds rule evaluation or sends a
  notification.  Acknowledgement (by, at, comment): a second one with a
  comment adds the comment to the thread, without one it changes nothing.
  Comments are a bounded thread of {by, at, text}; an alert is assigned to
  one person at a time ({name, by, at}); a silence records who created and
  who expired it.
- Silences: matchers (rule, entity, severity, unit, incident or any label;
  shell-style wildcards) with an expiry; they mute notifications, not
  alerts, and never those of a critical alert.  A notification muted
  while a silence was active is sent when the silence expires if the alert
  is still active and unacknowledged.
  Silence times are compared with the alert's event time (its feed's
  watermark), so no clock is read here.
- Incidents: alerts of one hazard (rule `hazard:`) that are active at the
  same time, or start within `incident_window_s` of the last one ending, share
  one incident id — a storm over 15 stations is one incident on the wall.
- Every transition is appended to an audit log; every notification goes to an
  outbox with an idempotency key ("{alert id}:{kind}"), so a store that keeps
  keys unique never sends one twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import msgspec

from ioc.records import Alert
from alerts.rules import SEVERITY_RANK

Key = tuple[str, str, str]  # (rule, entity, scope)
log = logging.getLogger("alerts.lifecycle")


def alert_id(rule: str, entity: str, started: str, scope: str = "") -> str:
    raw = f"{rule}|{entity}|{scope}|{started}" if scope else f"{rule}|{entity}|{started}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def _builtins(a: Alert) -> dict:
    return msgspec.to_builtins(a)


def alert_from_builtins(d: dict) -> Alert:
    return msgspec.convert(d, Alert)


class NotFound(KeyError):
    pass


class NotActive(ValueError):
    pass


class ThreadFull(ValueError):
    """The alert already holds MAX_COMMENTS comments."""


MAX_COMMENTS = 200  # per alert: the thread travels in every record of the alert
MAX_COMMENT_CHARS = 2000


@dataclass
class Silence:
    id: str
    matchers: dict[str, str]
    ends_at: float
    starts_at: float | None = None
    created_by: str = ""
    created_at: float | None = None
    comment: str = ""
    expired_by: str = ""  # set when an operator expires (deletes) it
    expired_at: float | None = None

    def active_at(self, t: float) -> bool:
        return (self.starts_at is None or self.starts_at <= t) and t < self.ends_at

    def matches(self, a: Alert) -> bool:
        for k, pattern in self.matchers.items():
            if k == "rule":
                v = a.rule
            elif k == "entity":
                v = a.entity
            elif k == "severity":
                v = a.severity
            elif k == "incident":
                v = a.incident or ""
            else:
                v = a.labels.get(k)
                if v is None:
                    return False
            if not fnmatchcase(v, pattern):
                return False
        return True

    def to_dict(self) -> dict:
        return {"id": self.id, "matchers": dict(self.matchers), "ends_at": self.ends_at,
                "starts_at": self.starts_at, "created_by": self.created_by,
                "created_at": self.created_at, "comment": self.comment,
                **({"expired_by": self.expired_by, "expired_at": self.expired_at} if self.expired_by else {})}

    @classmethod
    def from_dict(cls, d: dict) -> "Silence":
        return cls(d["id"], dict(d["matchers"]), float(d["ends_at"]), d.get("starts_at"),
                   d.get("created_by", ""), d.get("created_at"), d.get("comment", ""),
                   d.get("expired_by", ""), d.get("expired_at"))


@dataclass
class Meta:
    """Bookkeeping per active alert that is not part of the record."""

    key: Key
    feed: str = ""
    hazard: str | None = None
    t: float = 0.0  # event time of the last transition
    sent: list[str] = field(default_factory=list)  # notification keys already enqueued
    muted: dict[str, str] = field(default_factory=dict)  # kind → notification key, muted by a silence
    sev_rank: int = 0  # highest severity notified
    level: int = 0  # highest level notified (levels rules)

    def to_dict(self) -> dict:
        return {"key": list(self.key), "feed": self.feed, "hazard": self.hazard, "t": self.t,
                "sent": list(self.sent), "muted": dict(self.muted), "sev_rank": self.sev_rank,
                "level": self.level}

    @classmethod
    def from_dict(cls, d: dict) -> "Meta":
        return cls(tuple(d["key"]), d.get("feed", ""), d.get("hazard"), d.get("t", 0.0), list(d.get("sent", [])),
                   dict(d.get("muted", {})), d.get("sev_rank", 0), d.get("level", 0))


@dataclass
class Commit:
    """What one batch (or operator action) changed, for a store to write atomically."""

    audit: list[dict] = field(default_factory=list)
    upserts: dict[str, tuple[dict, bool, dict]] = field(default_factory=dict)  # id → (record, active, meta)
    outbox: list[dict] = field(default_factory=list)
    silences_put: list[dict] = field(default_factory=list)
    silences_deleted: list[str] = field(default_factory=list)
    engine_state: dict | None = None

    def __bool__(self) -> bool:
        return bool(self.audit or self.upserts or self.outbox or self.silences_put or self.silences_deleted
                    or self.engine_state is not None)

    def merge(self, later: "Commit") -> "Commit":
        """Fold a later commit into this one (one store transaction for several batches)."""
        self.audit.extend(later.audit)
        for aid, up in later.upserts.items():
            self.upserts.pop(aid, None)  # keep the order of the last write
            self.upserts[aid] = up
        self.outbox.extend(later.outbox)
        self.silences_put.extend(later.silences_put)
        self.silences_deleted.extend(later.silences_deleted)
        if later.engine_state is not None:
            self.engine_state = later.engine_state
        return self


# Silence times must be representable as timestamps (years 1..9999): anything else would be
# stored and then fail every listing (ends_at 1e300 once made GET /api/silences answer 500).
SILENCE_MIN_S = -62135596800.0  # 0001-01-01T00:00:00Z
SILENCE_MAX_S = 253402214400.0  # 9999-12-31T00:00:00Z (a day short of the end: local offsets)


def check_silence_time(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected epoch seconds")
    try:
        f = float(value)
    except OverflowError:
        raise ValueError(f"{name}: {value!r} is out of range") from None
    if not (SILENCE_MIN_S <= f <= SILENCE_MAX_S):  # also refuses NaN and infinities
        raise ValueError(f"{name}: {value!r} is not a time between the years 1 and 9999")
    return f


class Lifecycle:
    def __init__(self, incident_window_s: float = 6 * 3600, keep_resolved: int = 2000,
                 keep_audit: int = 20000) -> None:
        self.incident_window_s = incident_window_s
        self.active: dict[Key, Alert] = {}
        self.meta: dict[Key, Meta] = {}
        self.by_id: dict[str, Key] = {}
        self.resolved: dict[str, Alert] = {}  # recent resolved, oldest first
        self.keep_resolved = keep_resolved
        self.audit: deque[dict] = deque(maxlen=keep_audit)
        self.silences: dict[str, Silence] = {}
        self.incidents: dict[str, list] = {}  # hazard → [incident id, last event time, n active]
        self.commit = Commit()
        self.updates: list[Alert] = []  # out-of-band lifecycle updates (acks) for the hub
        self._muted_keys: set[Key] = set()

    # ------------------------------------------------------------ queries
    def get(self, aid: str) -> Alert | None:
        key = self.by_id.get(aid)
        if key is not None:
            return self.active[key]
        return self.resolved.get(aid)

    def history(self, aid: str) -> list[dict]:
        return [e for e in self.audit if e["id"] == aid]

    def is_active(self, key: Key) -> bool:
        return key in self.active

    # ------------------------------------------------------------ transitions
    def _audit(self, transition: str, a: Alert, **extra: Any) -> None:
        snapshot = _builtins(a)
        snapshot.pop("comments", None)  # the thread is in the "commented" entries: never copied 200 times
        entry = {"id": a.id, "transition": transition, "ts": a.ts, **extra, "alert": snapshot}
        self.audit.append(entry)
        self.commit.audit.append(entry)

    def _upsert(self, a: Alert, active: bool, meta: Meta) -> None:
        self.commit.upserts[a.id] = (_builtins(a), active, meta.to_dict())

    def _incident(self, hazard: str | None, ts: str, t: float) -> str | None:
        if not hazard:
            return None
        inc = self.incidents.get(hazard)
        if inc is not None and (inc[2] > 0 or t - inc[1] <= self.incident_window_s):
            inc[1] = max(inc[1], t)
            inc[2] += 1
            return inc[0]
        iid = hashlib.sha1(f"incident|{hazard}|{ts}".encode()).hexdigest()[:16]
        self.incidents[hazard] = [iid, t, 1]
        return iid

    def fire(self, key: Key, *, ts: str, t: float, value: float | None, severity: str, labels: dict[str, str],
             message: dict[str, str], late: bool = False, feed: str = "", hazard: str | None = None,
             level: int = 0) -> Alert | None:
        """Fire or update the alert of `key`; returns a record when something that matters changed."""
        cur = self.active.get(key)
        if cur is None:
            rule, entity, scope = key
            aid = alert_id(rule, entity, ts, scope)
            a = Alert(rule=rule, entity=entity, state="firing", severity=severity, ts=ts, value=value,
                      labels=dict(labels), id=aid, late=late, message=dict(message), started=ts,
                      incident=self._incident(hazard, ts, t))
            meta = Meta(key, feed, hazard, t)
            self.active[key] = a
            self.meta[key] = meta
            self.by_id[aid] = key
            self.resolved.pop(aid, None)
            self._audit("firing", a)
            self._notify(key, "firing", a, t)
            meta.sev_rank = SEVERITY_RANK.get(severity, 0)
            meta.level = level
            self._upsert(a, True, meta)
            return a
        meta = self.meta[key]
        matters = severity != cur.severity or labels != cur.labels
        if not matters:
            if value != cur.value:
                self.active[key] = msgspec.structs.replace(cur, value=value)
            return None
        a = msgspec.structs.replace(cur, ts=ts, value=value, severity=severity, labels=dict(labels),
                                    message=dict(message), late=late)
        self.active[key] = a
        meta.t = t
        self._audit("update", a)
        rank = SEVERITY_RANK.get(severity, 0)
        if rank > meta.sev_rank or level > meta.level:  # escalation: tell receivers; downgrades only update
            self._notify(key, f"escalated:{severity}" + (f":level{level}" if level else ""), a, t)
            meta.sev_rank = max(meta.sev_rank, rank)
            meta.level = max(meta.level, level)
        self._upsert(a, True, meta)
        return a

    def resolve(self, key: Key, *, ts: str, t: float, value: float | None = None, late: bool = False,
                keep_value: bool = False, message: dict[str, str] | None = None) -> Alert | None:
        """End the alert at `ts`; `message` (the rule's resolved text) replaces the firing text."""
        cur = self.active.pop(key, None)
        if cur is None:
            return None
        meta = self.meta.pop(key)
        self._muted_keys.discard(key)
        self.by_id.pop(cur.id, None)
        a = msgspec.structs.replace(cur, state="resolved", ts=ts, late=late,
                                    value=cur.value if keep_value else value, message=message or cur.message)
        self.resolved[a.id] = a
        while len(self.resolved) > self.keep_resolved:
            del self.resolved[next(iter(self.resolved))]
        if meta.hazard and meta.hazard in self.incidents:
            inc = self.incidents[meta.hazard]
            if inc[0] == cur.incident:
                inc[2] = max(0, inc[2] - 1)
                inc[1] = max(inc[1], t)
        meta.t = t
        self._audit("resolved", a)
        if meta.sent:  # tell receivers it is over only if they were told it began
            self._notify(key, "resolved", a, t, meta=meta)
        self._upsert(a, False, meta)
        return a

    def _active_key(self, aid: str) -> Key:
        key = self.by_id.get(aid)
        if key is None:
            if aid in self.resolved:
                raise NotActive(f"alert {aid} is already resolved")
            raise NotFound(aid)
        return key

    def check_comment(self, aid: str) -> None:
        """Raise NotFound / NotActive / ThreadFull for a comment comment() would refuse."""
        if len(self.active[self._active_key(aid)].comments) >= MAX_COMMENTS:
            raise ThreadFull(f"alert {aid} already has {MAX_COMMENTS} comments, the most one alert keeps")

    def _changed(self, key: Key, a: Alert) -> Alert:
        self.active[key] = a
        self._upsert(a, True, self.meta[key])
        self.updates.append(a)
        return a

    def _with_comment(self, aid: str, cur: Alert, by: str, text: str, at: str) -> Alert:
        self.check_comment(aid)
        note = {"by": by, "at": at, "text": text[:MAX_COMMENT_CHARS]}
        return msgspec.structs.replace(cur, comments=[*cur.comments, note])

    def acknowledge(self, aid: str, by: str, comment: str | None, at: str) -> Alert:
        """Acknowledge, or (already acknowledged) add the comment to the thread; no comment: unchanged."""
        key = self._active_key(aid)
        cur = self.active[key]
        if cur.acknowledged:
            return self.comment(aid, by, comment, at) if comment else cur
        ack = {"by": by, "at": at}
        a = cur
        if comment:
            ack["comment"] = comment
            a = self._with_comment(aid, cur, by, comment, at)
        a = msgspec.structs.replace(a, acknowledged=ack)
        self._audit("acknowledged", a, at=at, by=by, **({"comment": comment} if comment else {}))
        meta = self.meta[key]
        meta.muted.clear()  # an acknowledged alert needs no late "firing" notification
        self._muted_keys.discard(key)
        return self._changed(key, a)

    def comment(self, aid: str, by: str, text: str, at: str) -> Alert:
        """Append {by, at, text} to the alert's thread (raises ThreadFull past MAX_COMMENTS)."""
        key = self._active_key(aid)
        a = self._with_comment(aid, self.active[key], by, text, at)
        # n: the comment's place in the thread, so two equal comments in one second stay two audit rows
        self._audit("commented", a, at=at, by=by, text=a.comments[-1]["text"], n=len(a.comments))
        return self._changed(key, a)

    def assign(self, aid: str, to: str, by: str, at: str) -> Alert:
        """Make `to` the one person responsible; assigning the current assignee again changes nothing."""
        key = self._active_key(aid)
        cur = self.active[key]
        if cur.assignee and cur.assignee.get("name") == to:
            return cur
        a = msgspec.structs.replace(cur, assignee={"name": to, "by": by, "at": at})
        self._audit("assigned", a, at=at, by=by, to=to,
                    **({"previous": cur.assignee["name"]} if cur.assignee else {}))
        return self._changed(key, a)

    def unassign(self, aid: str, by: str, at: str) -> Alert:
        key = self._active_key(aid)
        cur = self.active[key]
        if not cur.assignee:
            return cur
        a = msgspec.structs.replace(cur, assignee=None)
        self._audit("unassigned", a, at=at, by=by, previous=cur.assignee.get("name", ""))
        return self._changed(key, a)

    # ------------------------------------------------------------ notifications & silences
    def silenced(self, a: Alert, t: float) -> Silence | None:
        for s in self.silences.values():
            if s.active_at(t) and s.matches(a):
                return s
        return None

    def _notify(self, key: Key, kind: str, a: Alert, t: float, meta: Meta | None = None) -> None:
        meta = meta or self.meta[key]
        nkey = f"{a.id}:{kind}"
        if nkey in meta.sent:
            return
        if a.severity != "critical" and self.silenced(a, t) is not None:  # a silence never mutes a critical alert
            if kind != "resolved":
                meta.muted[kind] = nkey
                self._muted_keys.add(key)
            else:
                meta.muted.clear()
            return
        meta.sent.append(nkey)
        meta.muted.pop(kind, None)
        self.commit.outbox.append({"key": nkey, "kind": kind.split(":")[0], "alert_id": a.id, "ts": a.ts,
                                   "alert": _builtins(a)})

    def release_muted(self, watermarks: dict[str, float]) -> None:
        """Send notifications muted by silences that have expired (event time of each alert's feed)."""
        if not self._muted_keys:
            return
        for key in sorted(self._muted_keys):
            a, meta = self.active.get(key), self.meta.get(key)
            if a is None or meta is None or not meta.muted:
                self._muted_keys.discard(key)
                continue
            t = watermarks.get(meta.feed, meta.t)
            if self.silenced(a, t) is not None or a.acknowledged:
                continue
            for kind in list(meta.muted):
                self._notify(key, kind, a, t)
            meta.muted.clear()
            self._muted_keys.discard(key)
            self._upsert(a, True, meta)

    def add_silence(self, s: Silence) -> Silence:
        self.silences[s.id] = s
        self.commit.silences_put.append(s.to_dict())
        entry = {"id": s.id, "transition": "silence_added", **({"by": s.created_by} if s.created_by else {}),
                 "silence": s.to_dict()}
        self.audit.append(entry)
        self.commit.audit.append(entry)
        return s

    def remove_silence(self, sid: str, by: str = "", at: float | None = None) -> bool:
        s = self.silences.pop(sid, None)
        if s is None:
            return False
        s.expired_by, s.expired_at = by, at
        self.commit.silences_deleted.append(sid)
        entry = {"id": sid, "transition": "silence_removed", **({"by": by} if by else {}), "silence": s.to_dict()}
        self.audit.append(entry)
        self.commit.audit.append(entry)
        return True

    # ------------------------------------------------------------ commits & state
    def take_commit(self) -> Commit:
        c, self.commit = self.commit, Commit()
        return c

    def drain_updates(self) -> list[Alert]:
        out, self.updates = self.updates, []
        return out

    def restore(self, active: list[tuple[Alert, dict]], resolved: list[Alert], silences: list[dict]) -> None:
        """Rebuild from a store: active alerts with their meta, recent resolved ones, silences."""
        for a, m in active:
            meta = Meta.from_dict(m) if m else Meta((a.rule, a.entity, ""))
            key = meta.key
            self.active[key] = a
            self.meta[key] = meta
            self.by_id[a.id] = key
            if meta.muted:
                self._muted_keys.add(key)
            if meta.hazard and a.incident:
                inc = self.incidents.get(meta.hazard)
                if inc is None or inc[0] != a.incident:
                    self.incidents[meta.hazard] = [a.incident, meta.t, 1]
                else:
                    inc[2] += 1
                    inc[1] = max(inc[1], meta.t)
        for a in resolved:
            if a.id not in self.by_id:
                self.resolved[a.id] = a
        for d in silences:
            try:
                s = Silence.from_dict(d)
                check_silence_time(s.ends_at, "ends_at")
                if s.starts_at is not None:
                    check_silence_time(s.starts_at, "starts_at")
            except (KeyError, TypeError, ValueError) as exc:  # written by an older version: never load it
                log.warning("dropping a stored silence that cannot apply: %s", exc)
                continue
            self.silences[s.id] = s

    def get_state(self) -> dict:
        return {
            "active": [[_builtins(a), self.meta[k].to_dict()] for k, a in self.active.items()],
            "resolved": [_builtins(a) for a in self.resolved.values()],
            "silences": [s.to_dict() for s in self.silences.values()],
            "incidents": {h: list(v) for h, v in self.incidents.items()},
        }

    def set_state(self, state: dict) -> None:
        self.__init__(self.incident_window_s, self.keep_resolved, self.audit.maxlen or 20000)
        self.restore([(alert_from_builtins(a), m) for a, m in state.get("active", [])],
                     [alert_from_builtins(a) for a in state.get("resolved", [])], state.get("silences", []))
        self.incidents = {h: list(v) for h, v in state.get("incidents", {}).items()}
