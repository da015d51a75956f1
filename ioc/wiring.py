"""Builds the core and its adapters from configuration (composition root)."""

from __future__ import annotations

from pathlib import Path

from ioc.catalog import Catalog
from ioc.config import Config
from streams.pipeline import Pipeline


def build_pipeline(catalog: Catalog, engine=None) -> Pipeline:
    return Pipeline(catalog, engine)


def build_replay_engine(catalog: Catalog, rules_dir: Path | None):
    """An in-memory alert engine for replays and backtests (no store, no notifier)."""
    return None


def build_alerting(config: Config, catalog: Catalog):
    return None
