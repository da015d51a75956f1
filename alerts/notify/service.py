"""The notification service (I/O): outbox → groups → deliveries → channels, with retries.

    service = NotifyService(ConfigSource(path, unit_ids), alert_store, data_dir, catalog, metrics)
    task = asyncio.create_task(service.run(wake))     # wake.set() after each batch

`step()` (in a thread: it is SQLite work) reads the alert outbox after its
cursor, folds the rows into groups, runs the due timers and writes cursor,
groups and new deliveries in one transaction (alerts/notify/deliveries.py);
`send_due()` sends due deliveries, marks each sent / retrying (exponential
backoff per channel, a provider's retry-after honoured and applied to the
whole channel) / failed with the reason, and counts
`ioc_notifications_total{channel,outcome}`.  The configuration file is checked
for changes at every round (about once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Callable

from alerts.notify.channels import build_channels
from alerts.notify.channels.base import Outgoing, SendResult
from alerts.notify.config import ConfigSource, NotifyConfig
from alerts.notify.deliveries import DeliveryStore
from alerts.notify.planner import Planner

log = logging.getLogger("alerts.notify")
ROUND_MAX_S = 1.0  # the longest sleep between rounds: reloads and timers are seen within it
KEEP_DELIVERIES_S = 90 * 86400.0  # sent and failed deliveries are kept this long (the alerts' history shows them)
PRUNE_EVERY_S = 3600.0


class NotifyService:
    def __init__(self, source: ConfigSource, alert_store, data_dir: str | Path, catalog=None, metrics=None,
                 clock: Callable[[], float] = time.time, client=None) -> None:
        self.source = source
        self.alert_store = alert_store
        self.store = DeliveryStore(data_dir)
        self.planner = Planner(catalog.ancestors if catalog is not None else None)
        self.metrics = metrics
        self.clock = clock
        import httpx

        self._client = client or httpx.AsyncClient()  # one connection pool for every HTTP channel
        self.groups = self.store.load_groups()
        self._config: NotifyConfig | None = None
        self.channels: dict = {}
        self._paused: dict[str, float] = {}  # channel → wall clock until which its provider asked us to wait
        self._pruned_at = 0.0

    # ------------------------------------------------------------ planning
    def _acknowledged(self, ids: list[str]) -> dict[str, dict]:
        out = {}
        for aid in ids:
            a = self.alert_store.get_alert(aid)
            if a is not None and a.acknowledged:
                out[aid] = dict(a.acknowledged)
        return out

    def config(self) -> NotifyConfig:
        cfg = self.source.current()
        if cfg is not self._config:
            self._config = cfg
            self.channels = build_channels(cfg.channels, self._client)
        return cfg

    def step(self, now: float | None = None) -> int:
        """Fold new outbox rows and due timers into deliveries; returns how many deliveries were added."""
        now = self.clock() if now is None else now
        cfg = self.config()
        cursor = self.store.cursor()
        rows = self.alert_store.outbox_since(cursor, 500)
        changed = {}
        for seq, item in rows:
            record = item.get("alert")
            if isinstance(record, dict):
                for g in self.planner.ingest(cfg, self.groups, record, now):
                    changed[(g.route, g.key)] = g
            cursor = seq
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.store.prune(now - KEEP_DELIVERIES_S)
        timed, new = self.planner.tick(cfg, self.groups, now, self._acknowledged)
        for g in timed:
            changed[(g.route, g.key)] = g
        if not rows and not changed and not new:
            return 0
        return self.store.advance(cursor if rows else None, list(changed.values()), new, now)

    def next_wake_s(self, now: float) -> float:
        times = [t for g in self.groups.values() for t in (g.flush_at, g.escalate_at, g.repeat_at) if t is not None]
        due = self.store.next_due_at()
        if due is not None:
            times.append(due)
        if not times:
            return ROUND_MAX_S
        return max(0.0, min(ROUND_MAX_S, min(times) - now))

    # ------------------------------------------------------------ sending
    def _count(self, channel: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(channel, outcome).inc()

    async def send_due(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        cfg = self._config or self.config()
        sent = 0
        for d in self.store.due(now):
            ch = d["channel"]
            paused = self._paused.get(ch, 0.0)
            if paused > now:
                self.store.defer(d["key"], paused)
                continue
            channel = self.channels.get(ch)
            if channel is None:
                self.store.mark_failed(d["key"], f"channel {ch} is not configured")
                self._count(ch, "failed")
                continue
            msg = Outgoing(d["key"], d["address"], d["subject"], d["text"], d["short"], d["payload"])
            try:
                res = await channel.send(msg)
            except Exception as exc:  # an adapter bug must not stop the others; the delivery is retried
                log.exception("channel %s raised", ch)
                res = SendResult(False, True, f"{type(exc).__name__}")
            now = self.clock()
            if res.ok:
                self.store.mark_sent(d["key"], now, res.provider_id)
                self._count(ch, "sent")
                sent += 1
                continue
            attempts = d["attempts"] + 1
            if not res.retryable or attempts >= cfg.retry.max_attempts:
                log.warning("notification %s over %s failed after %d attempt(s): %s", d["recipient"], ch, attempts,
                            res.error)
                self.store.mark_failed(d["key"], res.error)
                self._count(ch, "failed")
                continue
            wait = min(cfg.retry.backoff_s * 2 ** (attempts - 1), cfg.retry.backoff_max_s)
            if res.retry_after_s is not None:
                wait = max(wait, min(res.retry_after_s, cfg.retry.backoff_max_s))
                self._paused[ch] = now + wait
            self.store.mark_retry(d["key"], now + wait, res.error)
            self._count(ch, "retrying")
        return sent

    # ------------------------------------------------------------ loop
    async def run(self, wake: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.to_thread(self.step)
                await self.send_due()
            except Exception:
                log.exception("notification round failed; retrying")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.05, self.next_wake_s(self.clock())))
            wake.clear()

    def deliveries_for(self, alert_id: str) -> list[dict]:
        return self.store.for_alert(alert_id)

    async def aclose(self) -> None:
        await self._client.aclose()

    def close(self) -> None:
        self.store.close()
