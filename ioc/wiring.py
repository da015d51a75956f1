"""Builds the core and its adapters from configuration (composition root)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from ioc.catalog import Catalog
from ioc.config import Config
from streams.pipeline import Pipeline

log = logging.getLogger("ioc.wiring")


def build_pipeline(catalog: Catalog, engine=None) -> Pipeline:
    return Pipeline(catalog, engine)


def build_rules(rules_dir: Path | None):
    """The built-in pack, with the rules of `rules_dir` (if any) replacing those of the same name."""
    from alerts.rules import builtin_rules, load_rules, with_overrides

    rules = builtin_rules()
    if rules_dir is not None:
        rules = with_overrides(rules, load_rules(rules_dir))
    return rules


def build_replay_engine(catalog: Catalog, rules_dir: Path | None):
    """An in-memory alert engine for replays and backtests (no store, no notifier)."""
    from alerts.engine import AlertEngine

    return AlertEngine(build_rules(rules_dir), catalog)


class Alerting:
    """The alert engine with its adapters: SQLite store, webhook notifier, operator API."""

    def __init__(self, config: Config, catalog: Catalog) -> None:
        from alerts.engine import AlertEngine
        from alerts.store_sqlite import SqliteAlertStore

        self.config = config
        self.store = SqliteAlertStore(Path(config.data_dir))
        self.engine = AlertEngine(build_rules(config.rules_dir), catalog, store=self.store)
        self.notifier = None
        if config.webhook_url:
            from alerts.notify_webhook import AsyncWebhookNotifier

            self.notifier = AsyncWebhookNotifier(config.webhook_url.reveal(), catalog=catalog)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def router(self, runtime) -> Any:
        from ioc.alerts_api import build_alerts_router, install_token_redaction

        install_token_redaction()
        return build_alerts_router(
            self.engine, self.config.tokens(), on_update=lambda a: runtime.publish_updates([a])
        )

    def start(self, runtime) -> None:
        runtime.on_alerts.append(lambda alerts: self._wake.set())
        runtime.on_checkpoint.append(self.engine.checkpoint)
        if self.notifier is not None:
            self._wake.set()  # deliver what a previous run queued but did not send
            self._task = asyncio.create_task(self._deliver(), name="ioc-notifier")

    async def _deliver(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.notifier.dispatch(self.store)
            except Exception:  # the outbox keeps undelivered entries for the next round
                log.exception("webhook delivery round failed")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.notifier is not None:
            await self.notifier.aclose()

    def close(self) -> None:
        self.store.close()


def build_alerting(config: Config, catalog: Catalog) -> Alerting:
    return Alerting(config, catalog)
