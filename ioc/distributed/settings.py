"""Settings of the distributed runtime, from flags and environment (read once).

Flags win over IOC_* environment variables.  The Faust app (streams.app) is
configured only through the environment, because `faust -A streams.app
worker` imports it as a module; `ioc worker` exports its flags first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_KAFKA = "kafka://127.0.0.1:9092"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"

ENV = {
    "kafka_url": "IOC_KAFKA_URL",
    "redis_url": "IOC_REDIS_URL",
    "redis_prefix": "IOC_REDIS_PREFIX",
    "app_id": "IOC_APP_ID",
    "partitions": "IOC_PARTITIONS",
    "catalog_path": "IOC_CATALOG",
    "rules_dir": "IOC_RULES_DIR",
    "metrics_port": "IOC_METRICS_PORT",
    "batch_size": "IOC_BATCH_SIZE",
    "batch_within_s": "IOC_BATCH_WITHIN_S",
    "checkpoint_interval_s": "IOC_CHECKPOINT_INTERVAL_S",
    "checkpoint_batches": "IOC_CHECKPOINT_BATCHES",
    "kafka_output": "IOC_KAFKA_OUTPUT",
    "live_clock": "IOC_LIVE_CLOCK",
    "cut_every": "IOC_CUT_EVERY",
    "require_redis_aof": "IOC_REQUIRE_REDIS_AOF",
    "kafka_idempotence": "IOC_KAFKA_IDEMPOTENCE",
    "idle_partition_s": "IOC_IDLE_PARTITION_S",
}


@dataclass(frozen=True)
class DistSettings:
    kafka_url: str = DEFAULT_KAFKA
    redis_url: str = DEFAULT_REDIS
    redis_prefix: str = "ioc"
    app_id: str = "ioc-monitor"
    partitions: int = 4
    catalog_path: Path | None = None
    rules_dir: Path | None = None
    metrics_port: int = 9108  # 0 = no metrics endpoint
    batch_size: int = 2000
    batch_within_s: float = 0.2
    checkpoint_interval_s: float = 2.0
    checkpoint_batches: int = 50
    kafka_output: bool = True  # also publish records to ioc.indicators / ioc.alerts
    live_clock: bool = True  # pass the wall clock as `now` (future-dated check)
    cut_every: int = 0  # > 0: the core's batches also end where input offset // cut_every changes
    require_redis_aof: bool = False  # refuse to start when Redis runs without appendonly (docs/scaling.md)
    kafka_idempotence: bool = False  # idempotent output producer: needs a broker with InitProducerId (Apache Kafka)
    idle_partition_s: float = 10.0  # a partition silent this long gets the feed's watermark (0 = off; docs/scaling.md)

    def to_env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for field, var in ENV.items():
            v = getattr(self, field)
            if v is None:
                continue
            out[var] = ("1" if v else "0") if isinstance(v, bool) else str(v)
        return out


def _conv(field: str, raw: str):
    default = getattr(DistSettings, field, None)
    if field in ("catalog_path", "rules_dir"):
        return Path(raw) if raw else None
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_settings(**flags) -> DistSettings:
    """Flags (None = not given) over environment over defaults."""
    values = {}
    for field, var in ENV.items():
        if flags.get(field) is not None:
            values[field] = flags[field]
        elif os.environ.get(var):
            values[field] = _conv(field, os.environ[var])
    s = DistSettings(**values)
    if s.catalog_path is not None:
        s = replace(s, catalog_path=Path(s.catalog_path))
    if s.rules_dir is not None:
        s = replace(s, rules_dir=Path(s.rules_dir))
    return s


def bootstrap_servers(url: str) -> str:
    """'kafka://h1:9092;h2:9092', 'tcp://h:9092' or 'h:9092' → 'h1:9092,h2:9092' for aiokafka."""
    hosts = []
    for part in url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        part = part.rstrip("/")
        if part:
            hosts.append(part)
    return ",".join(hosts)


def faust_broker(url: str) -> str:
    """The same list as Faust wants it: 'kafka://h1:9092;kafka://h2:9092'."""
    return ";".join(f"kafka://{h}" for h in bootstrap_servers(url).split(","))
