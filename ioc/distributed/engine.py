"""The alert engine of each partition's pipeline.

Each input partition gets its own engine instance over the partition's
catalog slice: its rules see exactly the entities whose indicators the
partition computes.  The engine's state travels in the partition checkpoint
(Pipeline.get_state()/set_state()).  Alerts leave the worker as records;
Redis dedupes them by stable id and transition (ioc.distributed.redis_store),
so the engine needs no durable store of its own here.

Built by ioc.wiring.build_replay_engine (the in-memory engine for replays)
when that returns one; otherwise directly from alerts.engine with the
built-in rule pack, overridden by --rules.  `IOC_ENGINE_FACTORY=module:fn`
(fn(catalog, rules_dir) → engine) plugs in another engine; `none` disables
alerting.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any, Callable

from ioc.catalog import Catalog

log = logging.getLogger("ioc.worker")


def _default(catalog: Catalog, rules_dir: Path | None):
    try:
        from ioc.wiring import build_replay_engine

        engine = build_replay_engine(catalog, rules_dir)
        if engine is not None:
            return _without_area_rules(engine, catalog)
    except ImportError:  # pragma: no cover
        pass
    from alerts.engine import AlertEngine
    from alerts.rules import builtin_rules, load_rules, with_overrides

    rules = builtin_rules()
    if rules_dir is not None:
        rules = with_overrides(rules, load_rules(rules_dir))
    return _without_area_rules(AlertEngine(rules, catalog), catalog)


def _without_area_rules(engine, catalog: Catalog):
    """A partition's engine sees only its slice of the gauges (rain is keyed by station), while a Decision 18
    level is an area's, from all the province's gauges (alerts/risk): the `risk` rules would be wrong here,
    so the distributed workers do not evaluate them (docs/scaling.md)."""
    from alerts.engine import AlertEngine

    kept = [r for r in engine.rules if r.kind != "risk"]
    if len(kept) == len(engine.rules):
        return engine
    log.info("Decision 18 area rules %s are not evaluated by partitioned workers",
             ", ".join(r.name for r in engine.rules if r.kind == "risk"))
    return AlertEngine(kept, catalog)


def engine_factory(rules_dir: Path | None) -> Callable[[Catalog], Any] | None:
    """catalog → engine for one partition, or None for no alerting."""
    spec = os.environ.get("IOC_ENGINE_FACTORY", "").strip()
    if spec.lower() == "none":
        return None
    if spec:
        mod, _, name = spec.partition(":")
        fn = getattr(importlib.import_module(mod), name)
    else:
        fn = _default
    return lambda catalog: fn(catalog, rules_dir)
