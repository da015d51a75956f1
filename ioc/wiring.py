"""Builds the core and its adapters from configuration (composition root)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

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
        self.notify = build_notify(config, catalog, self.store)  # people: alerts/notify (None: no notify.yaml)
        self._notify_wake = asyncio.Event()
        self._notify_task: asyncio.Task | None = None

    def authenticator(self, runtime) -> Any:
        """The principals of this data dir + IOC_*_TOKEN (ioc.auth), one per process: the web app and
        the operator API share it (pass it to create_app(auth=...))."""
        if getattr(self, "_auth", None) is None:
            from ioc.auth.setup import embedded_authenticator

            self._auth = embedded_authenticator(self.config, getattr(runtime, "metrics", None))
        return self._auth

    def router(self, runtime, auth: Any = None) -> Any:
        from ioc.alerts_api import build_alerts_router, install_token_redaction
        from ioc.cap_config import cap_settings_from_env

        install_token_redaction()
        return build_alerts_router(
            JournaledActions(self.engine, runtime, notify=self.wake_notifiers),
            auth if auth is not None else self.authenticator(runtime),
            on_update=lambda a: runtime.publish_updates([a]),
            deliveries=self.notify.deliveries_for if self.notify is not None else None,
            cap_settings=cap_settings_from_env(self.engine.catalog),  # a bad IOC_CAP_* stops the start (exit 2)
        )

    def wake_notifiers(self) -> None:
        """An action outside the batches put a notification in the outbox (a test alert): send it now."""
        self._wake.set()
        self._notify_wake.set()

    def attach(self, runtime) -> None:
        """Let the runtime's restore reset the engine and replay journaled operator actions."""
        runtime.engine_initial_state = self.initial_state
        runtime.apply_op = lambda op: apply_op(self.engine, op)

    def start(self, runtime) -> None:
        runtime.on_alerts.append(lambda alerts: self._wake.set())
        if self.notifier is not None:
            self._wake.set()  # deliver what a previous run queued but did not send
            self._task = asyncio.create_task(self._deliver(), name="ioc-notifier")
        self._test_task = asyncio.create_task(  # test alerts end by themselves (also those of a previous run)
            expire_test_alerts(JournaledActions(self.engine, runtime, notify=self.wake_notifiers), runtime.publish_updates),
            name="ioc-test-alerts")
        if self.notify is not None:
            self.notify.metrics = getattr(runtime, "metrics", None)
            runtime.on_alerts.append(lambda alerts: self._notify_wake.set())
            self._notify_task = asyncio.create_task(self.notify.run(self._notify_wake), name="ioc-notify")

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
        if getattr(self, "_test_task", None) is not None:
            self._test_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._test_task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.notifier is not None:
            await self.notifier.aclose()
        if self._notify_task is not None:
            self._notify_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notify_task
            await self.notify.aclose()

    def close(self) -> None:
        if self.notify is not None:
            self.notify.close()
        self.store.close()
        if getattr(self, "_auth", None) is not None:
            self._auth.close()


class JournaledActions:
    """The operator API's view of the engine (event sourcing).

    An acknowledgement, comment, assignment or silence is checked first (an action that would be
    refused is answered with its error and never journaled), then written to
    the journal, in order with the batches, and flushed, then applied: a
    restart replays checkpoint + journal and re-derives exactly the same
    alerts, with every action and the name of who took it.  Reads go straight
    to the engine.
    """

    def __init__(self, engine, runtime, notify: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._runtime = runtime
        self._notify = notify  # wakes the notifiers after an action that notifies (the test alert)

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def acknowledge(self, alert_id: str, by: str, comment: str | None = None, at: float | None = None):
        # raises NotFound / NotActive / ThreadFull; False: already acknowledged and nothing to add
        if self._engine.check_acknowledge(alert_id, comment):
            op = {"op": "ack", "id": alert_id, "by": by, "comment": comment, "at": at}
            self._runtime.journal_op(op)
        return self._engine.acknowledge(alert_id, by, comment, at)

    def comment(self, alert_id: str, by: str, text: str, at: float):
        self._engine.check_comment(alert_id)
        self._runtime.journal_op({"op": "comment", "id": alert_id, "by": by, "text": text, "at": at})
        return self._engine.comment(alert_id, by, text, at)

    def assign(self, alert_id: str, to: str, by: str, at: float):
        if self._engine.check_assign(alert_id, to):
            self._runtime.journal_op({"op": "assign", "id": alert_id, "to": to, "by": by, "at": at})
        return self._engine.assign(alert_id, to, by, at)

    def unassign(self, alert_id: str, by: str, at: float):
        if self._engine.check_assign(alert_id, None):
            self._runtime.journal_op({"op": "unassign", "id": alert_id, "by": by, "at": at})
        return self._engine.unassign(alert_id, by, at)

    def add_silence(self, matchers, ends_at, *, starts_at=None, by="", comment="", created_at=None):
        self._engine.check_silence(matchers, ends_at, starts_at)  # ValueError → 422, nothing journaled
        op = {"op": "silence_add", "matchers": matchers, "ends_at": ends_at, "starts_at": starts_at,
              "by": by, "comment": comment, "created_at": created_at}
        self._runtime.journal_op(op)
        return self._engine.add_silence(matchers, ends_at, starts_at=starts_at, by=by, comment=comment,
                                        created_at=created_at)

    def set_risk_level(self, unit: str, *, rule: str = "rain_risk_level", level=None, raise_by=None,
                       reason: str = "", by: str, at: float):
        self._engine.check_risk_level(unit, rule, level, raise_by, reason)  # NotFound / ValueError: not journaled
        self._runtime.journal_op({"op": "risk_level", "unit": unit, "rule": rule, "level": level,
                                  "raise_by": raise_by, "reason": reason, "by": by, "at": at})
        return self._engine.set_risk_level(unit, rule=rule, level=level, raise_by=raise_by, reason=reason, by=by,
                                           at=at)

    def send_test_alert(self, by: str, at: float, *, unit: str | None = None, ttl_s: float):
        """The operator's test alert (alerts/test_alert.py), journaled like any action; while one is
        active it is answered as it is and nothing is journaled."""
        cur = self._engine.active_test_alert()
        if cur is not None:
            return cur, False
        self._runtime.journal_op({"op": "test_alert", "by": by, "at": at, "unit": unit, "ttl_s": ttl_s})
        a = self._engine.send_test_alert(by, at, unit=unit, ttl_s=ttl_s)
        self._after_test("firing")
        return a, True

    def resolve_test_alert(self, alert_id: str, at: float, by: str = ""):
        self._engine.check_resolve_test_alert(alert_id)  # NotFound / NotActive / ValueError: not journaled
        self._runtime.journal_op({"op": "test_alert_resolve", "id": alert_id, "by": by, "at": at})
        a = self._engine.resolve_test_alert(alert_id, at)
        self._after_test("resolved")
        return a

    def _after_test(self, transition: str) -> None:
        """Wake the notifiers (its message goes out now, not with the next batch) and count it."""
        if self._notify is not None:
            self._notify()
        metrics = getattr(self._runtime, "metrics", None)
        if metrics is not None and hasattr(metrics, "test_alerts"):
            metrics.test_alerts.labels(transition).inc()

    def remove_silence(self, silence_id: str, by: str = "", at: float | None = None) -> bool:
        if not any(s.id == silence_id for s in self._engine.silences()):
            return False
        self._runtime.journal_op({"op": "silence_remove", "id": silence_id, "by": by, "at": at})
        return self._engine.remove_silence(silence_id, by, at)


TEST_EXPIRY_POLL_S = 1.0


async def expire_test_alerts(actions: JournaledActions, publish, clock=time.time) -> None:
    """End the active test alert once its time is up (alerts/test_alert.py), as a journaled action at
    exactly `expires_at`, so a restart replays the same end and one past its time ends at start-up."""
    from alerts import test_alert

    while True:
        try:
            a = actions.active_test_alert()
            if a is not None:
                from ioc.timeutil import parse_ts

                ends = test_alert.expires_at(a, parse_ts(a.started or a.ts))
                if ends <= clock():
                    publish([actions.resolve_test_alert(a.id, ends, by="")])
        except Exception:  # noqa: BLE001 - tried again at the next poll
            log.exception("ending the test alert failed")
        await asyncio.sleep(TEST_EXPIRY_POLL_S)


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
        elif op["op"] == "comment":
            engine.comment(op["id"], op["by"], op["text"], op["at"])
        elif op["op"] == "assign":
            engine.assign(op["id"], op["to"], op["by"], op["at"])
        elif op["op"] == "unassign":
            engine.unassign(op["id"], op["by"], op["at"])
        elif op["op"] == "risk_level":  # an operator's Decision 18 level (alerts/risk)
            engine.set_risk_level(op["unit"], rule=op["rule"], level=op.get("level"), raise_by=op.get("raise_by"),
                                  reason=op.get("reason", ""), by=op["by"], at=op["at"])
        elif op["op"] == "test_alert":  # the operator's test alert (alerts/test_alert.py)
            engine.send_test_alert(op["by"], op["at"], unit=op.get("unit"), ttl_s=op["ttl_s"])
        elif op["op"] == "test_alert_resolve":
            engine.resolve_test_alert(op["id"], op["at"])
        elif op["op"] == "silence_remove":  # journals before issue 17 carry no by/at
            engine.remove_silence(op["id"], op.get("by", ""), op.get("at"))
        else:
            raise TypeError(f"unknown operator action {op['op']!r}"[:200])
    except (KeyError, ValueError) as exc:  # NotFound is a KeyError, NotActive a ValueError
        log.info("journaled operator action %s no longer applies: %s", op.get("op"), exc)


def build_notify(config: Config, catalog: Catalog, store):
    """The notification service of the IOC_NOTIFY_CONFIG file (alerts/notify), or None.

    A file that cannot be used stops the start with its error (NotifyConfigError names file and entry)."""
    from alerts.notify.config import ConfigSource, config_path

    path = config_path()
    if path is None:
        return None
    from alerts.notify.service import NotifyService

    return NotifyService(ConfigSource(path, set(catalog.units)), store, Path(config.data_dir), catalog)


def build_alerting(config: Config, catalog: Catalog) -> Alerting:
    return Alerting(config, catalog)
