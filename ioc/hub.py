"""Fan-out of output records to WebSocket clients (docs/architecture.md §6), without I/O.

The hub keeps the latest record per key (for snapshots) and a short history
of published batches (for resume).  Each client has a bounded pending map
with latest-value-wins coalescing per key, so a slow wall display never
delays the others and never grows memory without bound: past the bound it is
marked for a full snapshot instead.  Records are encoded once per publish,
not once per client.  The asyncio adapter lives in ioc.api.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ioc.records import Alert, Indicator, Record, encode

PROTOCOL = 1
TOPICS = ("rain", "dossiers", "cameras", "alerts")
RESOLVED_KEPT = 200  # resolved alerts kept in snapshots so walls show recent history

Key = tuple


def topic_of(record: Record) -> str:
    if isinstance(record, Alert):
        return "alerts"
    name = record.name
    if name.startswith("rain"):
        return "rain"
    if name.startswith("queue"):
        return "cameras"
    return "dossiers"


def key_of(record: Record) -> Key:
    if isinstance(record, Alert):
        return ("alert", record.id or f"{record.rule}|{record.entity}")
    return ("indicator", record.name, record.window, record.entity)


@dataclass(frozen=True)
class Subscription:
    """What a client wants: topics, and optionally the entities of some units."""

    topics: frozenset[str] = frozenset(TOPICS)
    entities: frozenset[str] | None = None  # None = every entity

    def wants(self, topic: str, entity: str) -> bool:
        if topic not in self.topics:
            return False
        return self.entities is None or entity in self.entities


@dataclass
class _Item:
    key: Key
    topic: str
    entity: str
    raw: bytes


@dataclass(eq=False)
class ClientQueue:
    sub: Subscription
    max_pending: int
    pending: dict[Key, bytes] = field(default_factory=dict)
    seq: int = 0  # hub seq of the newest record queued or sent
    needs_snapshot: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    idle: bool = True  # nothing queued since the last heartbeat tick
    heartbeat_due: bool = False

    def offer(self, seq: int, items: list[_Item]) -> int:
        """Queue the items this client wants; returns how many replaced an older value."""
        replaced = 0
        sub = self.sub
        for it in items:
            if sub.wants(it.topic, it.entity):
                if it.key in self.pending:
                    replaced += 1
                    del self.pending[it.key]  # re-insert so order follows the newest value
                self.pending[it.key] = it.raw
        if len(self.pending) > self.max_pending:
            self.pending.clear()
            self.needs_snapshot = True
        self.seq = seq
        if self.pending or self.needs_snapshot:
            self.idle = False
            self.wakeup.set()
        return replaced

    def take(self) -> tuple[int, list[bytes]]:
        records = list(self.pending.values())
        self.pending.clear()
        self.wakeup.clear()
        return self.seq, records


class Hub:
    def __init__(
        self,
        history_batches: int = 2048,
        max_pending: int = 50_000,
        on_coalesced: Callable[[int], None] | None = None,
        fresh_indicators: Callable[[], Iterable[Indicator]] | None = None,
    ) -> None:
        """`fresh_indicators`, when given, supplies every current indicator at the
        watermark for snapshots (a value that has not changed for hours still
        gets today's ts); it is called at most once per published seq."""
        self.seq = 0
        self._fresh = fresh_indicators
        self._fresh_cache: tuple[int, list[_Item]] | None = None
        self._text_cache: dict = {}
        self.latest: dict[Key, _Item] = {}
        self._resolved: deque[Key] = deque()
        self.history: deque[tuple[int, list[_Item]]] = deque(maxlen=history_batches)
        self.clients: set[ClientQueue] = set()
        self.max_pending = max_pending
        self._on_coalesced = on_coalesced

    # -- producer side -------------------------------------------------
    def publish(self, records: Iterable[Record]) -> int:
        items = []
        for rec in records:
            key = key_of(rec)
            item = _Item(key, topic_of(rec), rec.entity, encode(rec))
            items.append(item)
            self.latest[key] = item
            if isinstance(rec, Alert) and rec.state == "resolved":
                self._resolved.append(key)
        while len(self._resolved) > RESOLVED_KEPT:
            self.latest.pop(self._resolved.popleft(), None)
        if not items:
            return self.seq
        self.seq += 1
        self.history.append((self.seq, items))
        replaced = 0
        for client in self.clients:
            replaced += client.offer(self.seq, items)
        if replaced and self._on_coalesced:
            self._on_coalesced(replaced)
        return self.seq

    # -- consumer side -------------------------------------------------
    def connect(self, sub: Subscription) -> ClientQueue:
        client = ClientQueue(sub=sub, max_pending=self.max_pending, seq=self.seq)
        self.clients.add(client)
        return client

    def disconnect(self, client: ClientQueue) -> None:
        self.clients.discard(client)

    def snapshot_message(self, client: ClientQueue) -> bytes:
        """Full state for the client's subscription; resets its queue."""
        client.pending.clear()
        client.needs_snapshot = False
        client.wakeup.clear()
        client.seq = self.seq
        sub = client.sub
        raws = [it.raw for it in self._snapshot_items() if sub.wants(it.topic, it.entity)]
        return _message(b'{"type":"snapshot","protocol":%d,"seq":%d,"records":[' % (PROTOCOL, self.seq), raws)

    def _snapshot_items(self) -> list[_Item]:
        if self._fresh is None:
            return list(self.latest.values())
        if self._fresh_cache is None or self._fresh_cache[0] != self.seq:
            items = [_Item(key_of(r), topic_of(r), r.entity, encode(r)) for r in self._fresh()]
            self._fresh_cache = (self.seq, items)
        alerts = [it for it in self.latest.values() if it.key[0] == "alert"]
        return [*self._fresh_cache[1], *alerts]

    def resume(self, client: ClientQueue, since: int) -> bytes | None:
        """Missed deltas after `since` as one coalesced delta, or None if history no longer covers it."""
        if since > self.seq:
            return None
        if since == self.seq:
            return _message(b'{"type":"delta","seq":%d,"records":[' % self.seq, [])
        if not self.history or self.history[0][0] > since + 1:
            return None
        merged: dict[Key, bytes] = {}
        sub = client.sub
        for seq, items in self.history:
            if seq <= since:
                continue
            for it in items:
                if sub.wants(it.topic, it.entity):
                    merged.pop(it.key, None)
                    merged[it.key] = it.raw
        client.pending.clear()
        client.seq = self.seq
        return _message(b'{"type":"delta","seq":%d,"records":[' % self.seq, list(merged.values()))

    @staticmethod
    def delta_message(seq: int, raws: list[bytes]) -> bytes:
        return _message(b'{"type":"delta","seq":%d,"records":[' % seq, raws)

    def delta_text(self, seq: int, raws: list[bytes]) -> str:
        """The delta as text, built once for all clients that have the same records queued
        (the common case: every client keeping up gets exactly the last publish)."""
        key = (seq, tuple(map(id, raws)))
        cache = self._text_cache
        if cache.get("seq") != seq:
            cache.clear()
            cache["seq"] = seq
        text = cache.get(key)
        if text is None:
            text = cache[key] = self.delta_message(seq, raws).decode()
        return text

    def snapshot_records(self) -> tuple[list[bytes], list[bytes]]:
        """(indicators, alerts) encoded, for /api/snapshot."""
        ind, al = [], []
        for it in self._snapshot_items():
            (al if it.key[0] == "alert" else ind).append(it.raw)
        return ind, al


def _message(head: bytes, raws: list[bytes]) -> bytes:
    return head + b",".join(raws) + b"]}"
