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
``P:ckpt:<topic>:<p>``  hash  epoch, offset, state (msgpack), written_at
``P:epoch:<topic>:<p>`` int   fencing token, INCR'd by each new owner
``P:watermarks``        hash  ``<feed>:<p>`` → watermark (epoch s)
``P:cuts:<topic>:<p>``  zset  input offsets where the core's batches ended since
                              the checkpoint: a replay cuts its batches at the
                              same offsets, so it reproduces the same outputs

Every write made on behalf of a partition runs in one Lua script that first
checks the partition's fencing epoch, so a worker that lost the partition
(a zombie after a rebalance) can no longer publish or checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import msgspec
import redis.asyncio as aioredis

from ioc.records import Alert, Indicator, Record, encode

SEEN_TTL_S = 90 * 86400  # dedupe memory per alert id (refreshed on every transition)

# KEYS: epoch, latest, seq, watermarks, cuts   ARGV: epoch, channel, seen_prefix, ttl, n_ind, n_alert, n_wm,
#   then n_ind × (field, raw), n_alert × (id, raw, transition), n_wm × (field, value), n_cuts, cut offsets
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
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
_FILL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = 0
for i = 2, #ARGV, 2 do n = n + redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) end
return n
"""

# KEYS: epoch, ckpt, cuts   ARGV: epoch, offset, state, written_at
_CHECKPOINT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'offset', ARGV[2], 'state', ARGV[3], 'written_at', ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
return 1
"""


def record_field(rec: Record) -> str:
    """Hash field of a record: its key in the snapshot (same as ioc.hub.key_of)."""
    if isinstance(rec, Alert):
        return "alert|" + (rec.id or f"{rec.rule}|{rec.entity}")
    return f"indicator|{rec.name}|{rec.window}|{rec.entity}"


def alert_id(rec: Alert) -> str:
    return rec.id or f"{rec.rule}|{rec.entity}"


def transition_of(rec: Alert) -> str:
    """What makes an alert record a notification: its state in one incident."""
    return f"{rec.state}|{rec.started or ''}"


@dataclass
class Checkpoint:
    offset: int  # last input offset whose effects are in `state` and published
    state: dict[str, Any]
    epoch: int
    written_at: float


class Fenced(Exception):
    """This worker no longer owns the partition (another claimed a newer epoch)."""


class RedisStore:
    def __init__(self, url: str, prefix: str = "ioc") -> None:
        self.url = url
        self.prefix = prefix
        self.r = aioredis.Redis.from_url(url)
        self._publish = self.r.register_script(_PUBLISH)
        self._fill = self.r.register_script(_FILL)
        self._checkpoint = self.r.register_script(_CHECKPOINT)

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
        return int(await self.r.incr(self.epoch_key(topic, partition)))

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
        if int(ok) < 0:
            raise Fenced(f"{topic}[{partition}] epoch {epoch} is no longer current")

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
        if isinstance(res, int) and res < 0:
            raise Fenced(f"{topic}[{partition}] epoch {epoch} is no longer current")
        new_idx = res[1] if isinstance(res, list) else []
        return [alerts[int(j) - 1] for j in new_idx]

    async def fill_missing(self, topic: str, partition: int, epoch: int, records: Sequence[Record]) -> int:
        if not records:
            return 0
        args: list[Any] = [epoch]
        for rec in records:
            args += [record_field(rec), encode(rec)]
        n = await self._fill(keys=[self.epoch_key(topic, partition), self.latest_key], args=args)
        if int(n) < 0:
            raise Fenced(f"{topic}[{partition}] epoch {epoch} is no longer current")
        return int(n)

    async def overwrite(self, topic: str, partition: int, epoch: int, indicators: Sequence[Indicator]) -> None:
        """Publish indicator records unconditionally (a recovered partition's restored state)."""
        if indicators:
            await self.publish(topic, partition, epoch, indicators, [])

    async def unseen_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Alert records not published yet (checked before producing them to Kafka)."""
        if not alerts:
            return []
        pipe = self.r.pipeline(transaction=False)
        for a in alerts:
            pipe.sismember(f"{self.prefix}:alerts:seen:{alert_id(a)}", transition_of(a))
        seen = await pipe.execute()
        return [a for a, s in zip(alerts, seen) if not s]

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
