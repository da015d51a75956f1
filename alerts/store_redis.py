"""Redis alert store for the distributed mode (same interface as SqliteAlertStore).

Keys (all under `prefix`, default "ioc:alerts"):
  {p}:alert        hash id → record JSON          {p}:meta       hash id → lifecycle meta JSON
  {p}:active       set of active ids              {p}:resolved   zset id → event time
  {p}:audit:{id}   list of audit entries of one alert (silence ids too)
  {p}:audit        list of all audit entries (the global log)
  {p}:silences     hash id → silence JSON
  {p}:outbox       hash key → entry JSON          {p}:outbox:due zset key → due score (creation order, then retry time)
  {p}:outbox:st    hash key → {status, attempts, next_at, delivered_at, last_error}
  {p}:state        engine checkpoint JSON
One Commit is one MULTI/EXEC; outbox keys are enqueued by a Lua script only
if new (HSETNX), so a replayed batch never enqueues a notification twice.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import redis

from ioc.records import Alert
from ioc.timeutil import parse_ts

from alerts.lifecycle import Commit, alert_from_builtins
from alerts.store import OUTBOX_DELIVERED, OUTBOX_FAILED, OUTBOX_PENDING

_enc = msgspec.json.Encoder()

_ENQUEUE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  local seq = redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[2], seq, ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


def _dumps(x: Any) -> str:
    return _enc.encode(x).decode()


class RedisAlertStore:
    def __init__(self, client: redis.Redis | str = "redis://127.0.0.1:6379/0", *, prefix: str = "ioc:alerts",
                 recent_resolved: int = 500) -> None:
        self.r = redis.Redis.from_url(client, decode_responses=True) if isinstance(client, str) else client
        self.p = prefix
        self.recent_resolved = recent_resolved
        self._enqueue = self.r.register_script(_ENQUEUE)

    def k(self, *parts: str) -> str:
        return ":".join((self.p, *parts))

    # ---------------------------------------------------------------- engine side
    def load(self) -> dict[str, Any]:
        r = self.r
        ids = sorted(r.smembers(self.k("active")))
        active = []
        if ids:
            recs = r.hmget(self.k("alert"), ids)
            metas = r.hmget(self.k("meta"), ids)
            for rec, meta in zip(recs, metas):
                if rec:
                    active.append((alert_from_builtins(json.loads(rec)), json.loads(meta) if meta else {}))
            active.sort(key=lambda x: (parse_ts(x[0].ts), x[0].id))
        rids = r.zrevrange(self.k("resolved"), 0, self.recent_resolved - 1)
        resolved = []
        if rids:
            resolved = [alert_from_builtins(json.loads(x)) for x in r.hmget(self.k("alert"), rids) if x]
            resolved.reverse()
        silences = [json.loads(v) for _, v in sorted(r.hgetall(self.k("silences")).items())]
        st = r.get(self.k("state"))
        return {"active": active, "resolved": resolved, "silences": silences, "state": json.loads(st) if st else None}

    def commit(self, c: Commit) -> None:
        if not c:
            return
        pipe = self.r.pipeline(transaction=True)
        for e in c.audit:
            s = _dumps(e)
            pipe.rpush(self.k("audit", e["id"]), s)
            pipe.rpush(self.k("audit"), s)
        for aid, (record, active, meta) in c.upserts.items():
            pipe.hset(self.k("alert"), aid, _dumps(record))
            pipe.hset(self.k("meta"), aid, _dumps(meta))
            if active:
                pipe.sadd(self.k("active"), aid)
                pipe.zrem(self.k("resolved"), aid)
            else:
                pipe.srem(self.k("active"), aid)
                pipe.zadd(self.k("resolved"), {aid: parse_ts(record["ts"])})
        for s in c.silences_put:
            pipe.hset(self.k("silences"), s["id"], _dumps(s))
        for sid in c.silences_deleted:
            pipe.hdel(self.k("silences"), sid)
        for n in c.outbox:
            st = _dumps({"status": OUTBOX_PENDING, "attempts": 0, "next_at": 0, "delivered_at": None,
                         "last_error": None})
            self._enqueue(keys=[self.k("outbox"), self.k("outbox", "due"), self.k("outbox", "st"),
                                self.k("outbox", "seq")], args=[n["key"], _dumps(n), st], client=pipe)
        if c.engine_state is not None:
            pipe.set(self.k("state"), _dumps(c.engine_state))
        pipe.execute()

    # ---------------------------------------------------------------- queries
    def get_alert(self, alert_id: str) -> Alert | None:
        rec = self.r.hget(self.k("alert"), alert_id)
        return alert_from_builtins(json.loads(rec)) if rec else None

    def list_alerts(self, state: str | None = None, limit: int = 500) -> list[Alert]:
        ids: list[str] = []
        if state in (None, "firing", "active"):
            ids.extend(self.r.smembers(self.k("active")))
        if state in (None, "resolved"):
            ids.extend(self.r.zrevrange(self.k("resolved"), 0, limit - 1))
        if not ids:
            return []
        alerts = [alert_from_builtins(json.loads(x)) for x in self.r.hmget(self.k("alert"), ids) if x]
        alerts.sort(key=lambda a: (parse_ts(a.ts), a.id), reverse=True)
        return alerts[:limit]

    def history(self, alert_id: str) -> list[dict]:
        return [{"seq": i + 1, **json.loads(x)} for i, x in enumerate(self.r.lrange(self.k("audit", alert_id), 0, -1))]

    def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[dict]:
        rows = self.r.lrange(self.k("audit"), after_seq, after_seq + limit - 1)
        return [{"seq": after_seq + i + 1, **json.loads(x)} for i, x in enumerate(rows)]

    # ---------------------------------------------------------------- outbox
    # Due scores: new entries get their creation sequence (1, 2, ...: always due, in order);
    # a retry gets its next-attempt epoch.
    def outbox_pending(self, now: float, limit: int = 100) -> list[dict]:
        keys = self.r.zrangebyscore(self.k("outbox", "due"), "-inf", now, start=0, num=limit)
        if not keys:
            return []
        bodies = self.r.hmget(self.k("outbox"), keys)
        states = self.r.hmget(self.k("outbox", "st"), keys)
        out = []
        for body, st in zip(bodies, states):
            if body:
                out.append({**json.loads(body), "attempts": json.loads(st)["attempts"] if st else 0})
        return out

    def _set_state(self, key: str, **changes: Any) -> dict:
        cur = self.r.hget(self.k("outbox", "st"), key)
        st = json.loads(cur) if cur else {"status": OUTBOX_PENDING, "attempts": 0}
        st.update(changes)
        return st

    def outbox_delivered(self, key: str, at: float) -> None:
        st = self._set_state(key, status=OUTBOX_DELIVERED, delivered_at=at, last_error=None)
        st["attempts"] = st.get("attempts", 0) + 1
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k("outbox", "st"), key, _dumps(st))
        pipe.zrem(self.k("outbox", "due"), key)
        pipe.execute()

    def outbox_retry(self, key: str, attempts: int, next_at: float, error: str) -> None:
        st = self._set_state(key, attempts=attempts, next_at=next_at, last_error=error[:500])
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k("outbox", "st"), key, _dumps(st))
        pipe.zadd(self.k("outbox", "due"), {key: next_at}, xx=True)
        pipe.execute()

    def outbox_failed(self, key: str, attempts: int, error: str) -> None:
        st = self._set_state(key, status=OUTBOX_FAILED, attempts=attempts, last_error=error[:500])
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k("outbox", "st"), key, _dumps(st))
        pipe.zrem(self.k("outbox", "due"), key)
        pipe.execute()

    def outbox_status(self, key: str) -> dict | None:
        st = self.r.hget(self.k("outbox", "st"), key)
        return json.loads(st) if st else None

    def outbox_all(self) -> list[dict]:
        return [{"key": k, **json.loads(v)} for k, v in sorted(self.r.hgetall(self.k("outbox", "st")).items())]

    def clear(self) -> None:
        """Delete every key under the prefix (tests, resets)."""
        keys = list(self.r.scan_iter(match=f"{self.p}:*", count=500))
        if keys:
            self.r.delete(*keys)

    def close(self) -> None:
        self.r.close()
