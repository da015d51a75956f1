"""Redis side of the distributed runtime: outputs, dedupe, checkpoints.

Keys (``P`` = the configured prefix, default ``ioc``):

``P:latest``            hash  record key → latest record JSON (the snapshot)
``P:seq``               int   INCR'd once per published delta message
``P:deltas``            pub/sub channel: ``{"seq": N, "records": [...]}``
``P:alerts:seen:<id>``  set   transitions (state|started) of the alert with
                              this stable id already published: a transition
                              is published (delta, ioc.alerts, notification)
                              once; a later record in the same state is an
                              update of the alert and only refreshes latest
``P:alerts:produced:<id>`` set  transitions of the alert found in ioc.alerts when a
                              partition was restored (read back from Kafka): not
                              produced again by the replay
``P:ckpt:<topic>:<p>``  hash  epoch, offset, state (msgpack), written_at
``P:epoch:<topic>:<p>`` int   fencing token, raised by each new owner (to more than
                              the previous value and the current time in ms, so
                              epochs keep growing even after Redis lost the key)
``P:watermarks``        hash  ``<feed>:<p>`` → watermark (epoch s)
``P:cuts:<topic>:<p>``  zset  input offsets where the core's batches ended since
                              the checkpoint: a replay cuts its batches at the
                              same offsets, so it reproduces the same outputs

Every write made on behalf of a partition runs in one Lua script that first
checks the partition's fencing epoch, so a worker that lost the partition
(a zombie after a rebalance) can no longer publish or checkpoint.  The
scripts answer -1 when another epoch is current (`Fenced`) and -2 when the
epoch key is gone (`StateLost`: Redis restarted without persistence, or was
flushed); the owner then re-claims the partition with `reclaim` and
re-writes what Redis lost from its memory (ioc.distributed.worker).

Connection errors are not handled here: the worker retries every call with
backoff (`TRANSIENT` lists what counts as an outage).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import msgspec
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from ioc.records import Alert, Indicator, Record, encode

# a Redis outage (connection refused/reset, timeouts, "LOADING" while it reads its AOF,
# a replica not yet writable): retried by the worker with backoff
TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    ConnectionError,
    TimeoutError,
    OSError,
)

SEEN_TTL_S = 90 * 86400  # dedupe memory per alert id (refreshed on every transition)

# KEYS: epoch, latest, seq, watermarks, cuts   ARGV: epoch, channel, seen_prefix, ttl, n_ind, n_alert, n_wm,
#   then n_ind × (field, raw), n_alert × (id, raw, transition), n_wm × (field, value), n_cuts, cut offsets
_EPOCH_CHECK = """
local cur_epoch = redis.call('GET', KEYS[1])
if not cur_epoch then return -2 end
if cur_epoch ~= ARGV[1] then return -1 end
"""

_PUBLISH = _EPOCH_CHECK + """
local n_ind, n_alert, n_wm = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local i = 8
local out = {}
local new_alerts = {}
for _ = 1, n_ind do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  out[#out + 1] = ARGV[i + 1]
  i = i + 2
end
for j = 1, n_alert do
  local seen = ARGV[3] .. ARGV[i]
  local field = 'alert|' .. ARGV[i]
  local raw = ARGV[i + 1]
  local publish = false
  if redis.call('SADD', seen, ARGV[i + 2]) == 1 then
    redis.call('EXPIRE', seen, tonumber(ARGV[4]))
    new_alerts[#new_alerts + 1] = j
    publish = true
  else
    -- a transition already published: only an update of the alert's current state passes
    local cur = redis.call('HGET', KEYS[2], field)
    if cur and cur ~= raw then
      local ok, doc = pcall(cjson.decode, cur)
      local ok2, mine = pcall(cjson.decode, raw)
      if ok and ok2 and doc.state == mine.state then publish = true end
    end
  end
  if publish then
    redis.call('HSET', KEYS[2], field, raw)
    out[#out + 1] = raw
  end
  i = i + 3
end
for _ = 1, n_wm do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local n_cuts = tonumber(ARGV[i])
i = i + 1
for _ = 1, n_cuts do
  redis.call('ZADD', KEYS[5], ARGV[i], ARGV[i])
  i = i + 1
end
if #out == 0 then return {0, new_alerts} end
local seq = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], '{"seq":' .. seq .. ',"records":[' .. table.concat(out, ',') .. ']}')
return {seq, new_alerts}
"""

# KEYS: epoch, latest   ARGV: epoch, then (field, raw)...  — fill keys nobody has written yet
_FILL = _EPOCH_CHECK + """
local n = 0
for i = 2, #ARGV, 2 do n = n + redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) end
return n
"""

# KEYS: epoch, ckpt, cuts   ARGV: epoch, offset, state, written_at
_CHECKPOINT = _EPOCH_CHECK + """
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'offset', ARGV[2], 'state', ARGV[3], 'written_at', ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
return 1
"""


# KEYS: epoch   ARGV: now_ms  → the new epoch: above the previous one and the clock, so an epoch
# claimed after Redis lost the key is still above every epoch handed out before
_CLAIM = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local e = math.max(cur + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], e)
return e
"""

# KEYS: epoch   ARGV: my epoch, now_ms → the new epoch, or -1 when someone else claimed it since
_RECLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return -1 end
local e = math.max(tonumber(ARGV[1]) + 1, tonumber(ARGV[2]))
redis.call('SET', KEYS[1], e)
return e
"""


def record_field(rec: Record) -> str:
    """Hash field of a record: its key in the snapshot (same as ioc.hub.key_of)."""
    if isinstance(rec, Alert):
        return "alert|" + (rec.id or f"{rec.rule}|{rec.entity}")
    return f"indicator|{rec.name}|{rec.window}|{rec.entity}"


def alert_id(rec: Alert) -> str:
    return rec.id or f"{rec.rule}|{rec.entity}"


def transition_of(rec: Alert) -> str:
    """What makes an alert record a transition of its incident (produced to ioc.alerts once):
    its state, and while firing its severity and level, so an escalation (level 1 → 2 of
    `rain_risk_level`, warning → critical) is a transition of its own; a return to a
    severity and level the incident already had is an update (refreshes the snapshot only)."""
    if rec.state == "firing":
        return f"firing|{rec.started or ''}|{rec.severity}|{rec.labels.get('level', '')}"
    return f"{rec.state}|{rec.started or ''}"


@dataclass
class Checkpoint:
    offset: int  # last input offset whose effects are in `state` and published
    state: dict[str, Any]
    epoch: int
    written_at: float


class Fenced(Exception):
    """This worker no longer owns the partition (another claimed a newer epoch)."""


class StateLost(Exception):
    """The partition's epoch key is gone: Redis lost its data (restart without persistence, FLUSHALL)."""


def _check(res, topic: str, partition: int, epoch: int):
    if isinstance(res, int) and res < 0:
        if res == -2:
            raise StateLost(f"{topic}[{partition}]: epoch key missing in Redis")
        raise Fenced(f"{topic}[{partition}] epoch {epoch} is no longer current")
    return res


class RedisStore:
    def __init__(self, url: str, prefix: str = "ioc") -> None:
        self.url = url
        self.prefix = prefix
        # short timeouts: an outage is noticed (and retried by the worker) within seconds
        self.r = aioredis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=10.0, health_check_interval=5)
        self._publish = self.r.register_script(_PUBLISH)
        self._fill = self.r.register_script(_FILL)
        self._checkpoint = self.r.register_script(_CHECKPOINT)
        self._claim = self.r.register_script(_CLAIM)
        self._reclaim = self.r.register_script(_RECLAIM)

    # -- keys ------------------------------------------------------------
    @property
    def latest_key(self) -> str:
        return f"{self.prefix}:latest"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:deltas"

    @property
    def seq_key(self) -> str:
        return f"{self.prefix}:seq"

    @property
    def watermarks_key(self) -> str:
        return f"{self.prefix}:watermarks"

    def epoch_key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:epoch:{topic}:{partition}"

    def ckpt_key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:ckpt:{topic}:{partition}"

    def cuts_key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:cuts:{topic}:{partition}"

    async def load_cuts(self, topic: str, partition: int, after: int) -> list[int]:
        """Offsets where published core batches ended after `after` (the checkpoint)."""
        vals = await self.r.zrangebyscore(self.cuts_key(topic, partition), f"({after}", "+inf")
        return sorted(int(v) for v in vals)

    # -- ownership and checkpoints ---------------------------------------
    async def claim(self, topic: str, partition: int) -> int:
        return int(await self._claim(keys=[self.epoch_key(topic, partition)], args=[int(time.time() * 1000)]))

    async def reclaim(self, topic: str, partition: int, epoch: int) -> int:
        """After `StateLost`: a new epoch if nobody claimed the partition since; else `Fenced`."""
        res = int(await self._reclaim(keys=[self.epoch_key(topic, partition)], args=[epoch, int(time.time() * 1000)]))
        return _check(res, topic, partition, epoch)

    async def ping(self) -> bool:
        return bool(await self.r.ping())

    async def persistence(self) -> dict[str, str]:
        """{'appendonly': 'yes'|'no', 'appendfsync': ..., 'save': ...}; {} when CONFIG is not allowed."""
        out: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "save"):
            try:
                d = await self.r.config_get(name)
            except redis_errors.ResponseError:  # CONFIG renamed or disabled (managed Redis)
                return {}
            for k, v in d.items():
                out[k.decode() if isinstance(k, bytes) else k] = v.decode() if isinstance(v, bytes) else v
        return out

    async def mark_seen(self, alerts: Sequence[Alert]) -> int:
        """Record transitions already in ioc.alerts (read back from Kafka) as produced, so a
        replay does not produce them again.  A set of its own (``P:alerts:produced:<id>``): the
        ``seen`` sets also say what the snapshot hash holds, which these may not be."""
        if not alerts:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for a in alerts:
            key = f"{self.prefix}:alerts:produced:{alert_id(a)}"
            pipe.sadd(key, transition_of(a))
            pipe.expire(key, SEEN_TTL_S)
        res = await pipe.execute()
        return sum(int(x) for x in res[::2])

    async def load_checkpoint(self, topic: str, partition: int) -> Checkpoint | None:
        d = await self.r.hgetall(self.ckpt_key(topic, partition))
        if not d or b"state" not in d:
            return None
        return Checkpoint(
            offset=int(d[b"offset"]),
            state=msgspec.msgpack.decode(d[b"state"]),
            epoch=int(d[b"epoch"]),
            written_at=float(d.get(b"written_at", b"0")),
        )

    async def write_checkpoint(self, topic: str, partition: int, epoch: int, offset: int, state: dict) -> None:
        blob = msgspec.msgpack.encode(state)
        ok = await self._checkpoint(
            keys=[self.epoch_key(topic, partition), self.ckpt_key(topic, partition), self.cuts_key(topic, partition)],
            args=[epoch, offset, blob, repr(time.time())],
        )
        _check(int(ok), topic, partition, epoch)

    # -- outputs ----------------------------------------------------------
    async def publish(
        self,
        topic: str,
        partition: int,
        epoch: int,
        indicators: Sequence[Indicator],
        alerts: Sequence[Alert],
        watermarks: dict[str, float] | None = None,
        cuts: Sequence[int] = (),
    ) -> list[Alert]:
        """Write latest values, dedupe alerts, publish one delta; returns the alerts not seen before."""
        latest: dict[str, bytes] = {}
        for rec in indicators:  # one value per key per call: the newest
            f = record_field(rec)
            latest.pop(f, None)
            latest[f] = encode(rec)
        args: list[Any] = [epoch, self.channel, f"{self.prefix}:alerts:seen:", SEEN_TTL_S, len(latest), len(alerts), 0]
        for f, raw in latest.items():
            args += [f, raw]
        for a in alerts:
            raw = encode(a)
            args += [alert_id(a), raw, transition_of(a)]
        wm = watermarks or {}
        args[6] = len(wm)
        for feed, w in wm.items():
            args += [f"{feed}:{partition}", repr(float(w))]
        args.append(len(cuts))
        args.extend(int(c) for c in cuts)
        res = await self._publish(
            keys=[self.epoch_key(topic, partition), self.latest_key, self.seq_key, self.watermarks_key, self.cuts_key(topic, partition)],
            args=args,
        )
        _check(res, topic, partition, epoch)
        new_idx = res[1] if isinstance(res, list) else []
        return [alerts[int(j) - 1] for j in new_idx]

    async def fill_missing(self, topic: str, partition: int, epoch: int, records: Sequence[Record]) -> int:
        if not records:
            return 0
        args: list[Any] = [epoch]
        for rec in records:
            args += [record_field(rec), encode(rec)]
        n = await self._fill(keys=[self.epoch_key(topic, partition), self.latest_key], args=args)
        return int(_check(int(n), topic, partition, epoch))

    async def overwrite(self, topic: str, partition: int, epoch: int, indicators: Sequence[Indicator]) -> None:
        """Publish indicator records unconditionally (a recovered partition's restored state)."""
        if indicators:
            await self.publish(topic, partition, epoch, indicators, [])

    async def unseen_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Alert records not published yet (checked before producing them to Kafka); a
        transition twice in one batch (1 → 2 → 1 → 2) counts once."""
        if not alerts:
            return []
        pipe = self.r.pipeline(transaction=False)
        for a in alerts:
            pipe.sismember(f"{self.prefix}:alerts:seen:{alert_id(a)}", transition_of(a))
            pipe.sismember(f"{self.prefix}:alerts:produced:{alert_id(a)}", transition_of(a))
        res = await pipe.execute()
        seen = [a or b for a, b in zip(res[::2], res[1::2])]
        out, mine = [], set()
        for a, s in zip(alerts, seen):
            k = (alert_id(a), transition_of(a))
            if not s and k not in mine:
                mine.add(k)
                out.append(a)
        return out

    # -- reads (api) ------------------------------------------------------
    async def snapshot(self) -> tuple[int, list[bytes]]:
        """(seq, every latest record) read atomically."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(self.seq_key)
        pipe.hvals(self.latest_key)
        seq, vals = await pipe.execute()
        return int(seq or 0), list(vals)

    async def watermarks(self) -> dict[str, float]:
        d = await self.r.hgetall(self.watermarks_key)
        out: dict[str, float] = {}
        for k, v in d.items():
            feed = k.decode().split(":", 1)[0]
            out[feed] = max(out.get(feed, float("-inf")), float(v))
        return out

    async def close(self) -> None:
        await self.r.aclose()
