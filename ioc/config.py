"""Typed configuration, read once from flags and environment.

Secrets (tokens, webhook URLs with credentials) are wrapped so that no repr,
log line or traceback shows them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ioc.errors import UserError


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("ioc-data")
    demo: bool = False
    speed: float = 1.0
    seed: int = 42
    catalog_path: Path | None = None
    rules_dir: Path | None = None
    viewer_token: Secret | None = None
    operator_token: Secret | None = None
    # access control (ioc/auth): more env-token principals, the /metrics token, the ingest rate limit
    admin_token: Secret | None = None
    ingest_token: Secret | None = None
    metrics_token: Secret | None = None
    ingest_rate_per_s: float = 100.0  # requests/s per ingest principal (0: no limit)
    ingest_burst: float = 1000.0
    webhook_url: Secret | None = None
    checkpoint_interval_s: float = 5.0
    journal_fsync: bool = False
    # live input more than this far ahead of "now" (the wall clock; in the demo its simulated
    # clock) is refused as future_timestamp and never moves a watermark
    future_skew_s: float = 300.0
    # ids missing from the catalog kept per feed; past it their events are refused (unknown_entity_limit)
    max_unknown_entities: int = 1000
    extra: dict = field(default_factory=dict)

    def env_tokens(self) -> dict[str, str]:
        """role → token of the IOC_<ROLE>_TOKEN principals (ioc.auth)."""
        pairs = (("viewer", self.viewer_token), ("operator", self.operator_token), ("admin", self.admin_token),
                 ("ingest", self.ingest_token))
        return {role: secret.reveal() for role, secret in pairs if secret}


class ConfigError(UserError):
    """A setting that cannot be used; the message names it."""


def _env_path(name: str, problem_of) -> Path | None:
    """An IOC_* path, checked now (a bad one names the variable, before anything starts)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    path = Path(raw)
    problem = problem_of(path)
    if problem:
        raise ConfigError(f"{name}={raw}: {problem}; fix the path or unset {name}")
    return path


def input_paths(catalog_path: Path | None = None, rules_dir: Path | None = None) -> tuple[Path | None, Path | None]:
    """The catalog and rules of every command: the flags, else IOC_CATALOG / IOC_RULES_DIR, else the
    built-ins (None)."""
    from ioc.cli_types import file_problem, rules_problem

    if catalog_path is None:
        catalog_path = _env_path("IOC_CATALOG", file_problem)
    if rules_dir is None:
        rules_dir = _env_path("IOC_RULES_DIR", rules_problem)
    return catalog_path, rules_dir


def _env_float(name: str, minimum: float, maximum: float) -> float | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if not (minimum <= value <= maximum):  # also refuses NaN
        raise ConfigError(f"{name}={raw!r}: expected a number between {minimum:g} and {maximum:g}")
    return value


def unknown_entity_cap() -> int | None:
    """IOC_MAX_UNKNOWN_ENTITIES, for `ioc run` and for replays (which must admit what the live run did)."""
    v = _env_float("IOC_MAX_UNKNOWN_ENTITIES", 0, 10_000_000)
    return None if v is None else int(v)


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def _env_secret(name: str) -> Secret | None:
    value = os.environ.get(name)
    return Secret(value) if value else None


def build_config(**flags) -> Config:
    """Flags win over environment (IOC_*); the demo's tokens are principals in its data dir (ioc.auth)."""
    values = {k: v for k, v in flags.items() if v is not None}
    if "data_dir" not in values:
        from ioc.cli_types import writable_dir_problem

        data_dir = _env_path("IOC_DATA_DIR", writable_dir_problem)
        if data_dir is not None:
            values["data_dir"] = data_dir
    catalog_path, rules_dir = input_paths(values.get("catalog_path"), values.get("rules_dir"))
    for key, path in (("catalog_path", catalog_path), ("rules_dir", rules_dir)):
        if path is not None:
            values[key] = path
    viewer = _env_secret("IOC_VIEWER_TOKEN")
    operator = _env_secret("IOC_OPERATOR_TOKEN")
    values.setdefault("viewer_token", viewer)
    values.setdefault("operator_token", operator)
    values.setdefault("admin_token", _env_secret("IOC_ADMIN_TOKEN"))
    values.setdefault("ingest_token", _env_secret("IOC_INGEST_TOKEN"))
    values.setdefault("metrics_token", _env_secret("IOC_METRICS_TOKEN"))
    values.setdefault("webhook_url", _env_secret("IOC_WEBHOOK_URL"))
    for key, env_name, lo, hi in (("future_skew_s", "IOC_FUTURE_SKEW_S", 0.0, 86400.0),
                                  ("checkpoint_interval_s", "IOC_CHECKPOINT_INTERVAL_S", 0.05, 86400.0),
                                  ("ingest_rate_per_s", "IOC_INGEST_RATE_PER_S", 0.0, 1e6),
                                  ("ingest_burst", "IOC_INGEST_BURST", 1.0, 1e7)):
        if key not in values:
            v = _env_float(env_name, lo, hi)
            if v is not None:
                values[key] = v
    if "max_unknown_entities" not in values:
        cap = unknown_entity_cap()
        if cap is not None:
            values["max_unknown_entities"] = cap
    if "journal_fsync" not in values:
        fsync = _env_bool("IOC_JOURNAL_FSYNC")
        if fsync is not None:
            values["journal_fsync"] = fsync
    for key in ("data_dir", "catalog_path", "rules_dir"):
        if key in values and values[key] is not None:
            values[key] = Path(values[key])
    return Config(**values)
