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


def build_pipeline(catalog: Catalog, engine=None, max_unknown_entities: int | None = None) -> Pipeline:
    """The core; the unknown-entity cap from the argument, else IOC_MAX_UNKNOWN_ENTITIES, else 1,000."""
    from ioc.config import unknown_entity_cap

    cap = max_unknown_entities if max_unknown_entities is not None else unknown_entity_cap()
    return Pipeline(catalog, engine) if cap is None else Pipeline(catalog, engine, max_unknown_entities=cap)


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
        rules = build_rules(config.rules_dir)
        self.store = SqliteAlertStore(Path(config.data_dir))
        self.engine = AlertEngine(rules, catalog, store=self.store)
        # the state of an engine that has seen nothing: where a journal replay starts without a checkpoint
        self.initial_state = AlertEngine(rules, catalog).get_state()
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
            JournaledActions(self.engine, runtime), self.config.tokens(), on_update=lambda a: runtime.publish_updates([a])
        )

    def attach(self, runtime) -> None:
        """Let the runtime's restore reset the engine and replay journaled operator actions."""
        runtime.engine_initial_state = self.initial_state
        runtime.apply_op = lambda op: apply_op(self.engine, op)

    def start(self, runtime) -> None:
        runtime.on_alerts.append(lambda alerts: self._wake.set())
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


class JournaledActions:
    """The operator API's view of the engine (event sourcing).

    An acknowledgement or silence is checked first (an action that would be
    refused is answered with its error and never journaled), then written to
    the journal, in order with the batches, and flushed, then applied: a
    restart replays checkpoint + journal and re-derives exactly the same
    alerts, acknowledgements included.  Reads go straight to the engine.
    """

    def __init__(self, engine, runtime) -> None:
        self._engine = engine
        self._runtime = runtime

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def acknowledge(self, alert_id: str, by: str, comment: str | None = None, at: float | None = None):
        if self._engine.check_acknowledge(alert_id):  # raises NotFound / NotActive; False: already acknowledged
            op = {"op": "ack", "id": alert_id, "by": by, "comment": comment, "at": at}
            self._runtime.journal_op(op)
        return self._engine.acknowledge(alert_id, by, comment, at)

    def add_silence(self, matchers, ends_at, *, starts_at=None, by="", comment="", created_at=None):
        self._engine.check_silence(matchers, ends_at, starts_at)  # ValueError → 422, nothing journaled
        op = {"op": "silence_add", "matchers": matchers, "ends_at": ends_at, "starts_at": starts_at,
              "by": by, "comment": comment, "created_at": created_at}
        self._runtime.journal_op(op)
        return self._engine.add_silence(matchers, ends_at, starts_at=starts_at, by=by, comment=comment,
                                        created_at=created_at)

    def remove_silence(self, silence_id: str) -> bool:
        if not any(s.id == silence_id for s in self._engine.silences()):
            return False
        self._runtime.journal_op({"op": "silence_remove", "id": silence_id})
        return self._engine.remove_silence(silence_id)


def apply_op(engine, op: dict) -> None:
    """Replay one journaled operator action.

    One that no longer applies (the alert is gone, the silence is refused by this version)
    is skipped with a log line; anything else raises, and the restore quarantines the op.
    """
    if not isinstance(op, dict) or "op" not in op:
        raise ValueError(f"not an operator action: {op!r}"[:200])
    try:
        if op["op"] == "ack":
            engine.acknowledge(op["id"], op["by"], op.get("comment"), op.get("at"))
        elif op["op"] == "silence_add":
            engine.add_silence(op["matchers"], op["ends_at"], starts_at=op.get("starts_at"), by=op.get("by", ""),
                               comment=op.get("comment", ""), created_at=op.get("created_at"))
        elif op["op"] == "silence_remove":
            engine.remove_silence(op["id"])
        else:
            raise TypeError(f"unknown operator action {op['op']!r}"[:200])
    except (KeyError, ValueError) as exc:  # NotFound is a KeyError, NotActive a ValueError
        log.info("journaled operator action %s no longer applies: %s", op.get("op"), exc)


def build_alerting(config: Config, catalog: Catalog) -> Alerting:
    return Alerting(config, catalog)
