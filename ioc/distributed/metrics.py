"""Prometheus metrics of a Faust worker (its own registry and /metrics port).

Labels are bounded: feeds, reasons, the configured topics and partitions.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.events = Counter(
            "ioc_worker_events", "Input events processed by this worker (rate() = events/s), by feed.", ["feed"], registry=r
        )
        self.rejected = Counter(
            "ioc_worker_events_rejected", "Input events refused, by feed and reason.", ["feed", "reason"], registry=r
        )
        self.skipped = Counter(
            "ioc_worker_events_redelivered_skipped",
            "Re-delivered events at or below a partition's checkpoint offset, skipped (already in its state).",
            ["topic"],
            registry=r,
        )
        self.lag = Gauge(
            "ioc_worker_consumer_lag", "Messages behind the partition's high watermark.", ["topic", "partition"], registry=r
        )
        self.assigned = Gauge("ioc_worker_assigned_partitions", "Input partitions owned by this worker.", registry=r)
        self.rebalances = Counter("ioc_worker_rebalances", "Partition assignments received (rebalances).", registry=r)
        self.recovery_seconds = Gauge(
            "ioc_worker_recovery_seconds",
            "Seconds the last assignment took to load its partitions' checkpoints and state.",
            registry=r,
        )
        self.recovery_hist = Histogram(
            "ioc_worker_partition_recovery_seconds",
            "Seconds to load one partition's checkpoint.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
            registry=r,
        )
        self.checkpoints = Counter("ioc_worker_checkpoints", "Partition checkpoints written.", registry=r)
        self.checkpoint_seconds = Gauge("ioc_worker_checkpoint_duration_seconds", "Duration of the last checkpoint.", registry=r)
        self.checkpoint_bytes = Gauge("ioc_worker_checkpoint_bytes", "Size of the last checkpoint's state.", registry=r)
        self.batch_size = Histogram(
            "ioc_worker_batch_events",
            "Events per processed batch (per partition).",
            buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "ioc_worker_batch_seconds",
            "Wall-clock seconds to process and publish one batch.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.records = Counter("ioc_worker_records_published", "Output records published, by type.", ["type"], registry=r)
        self.fenced = Counter(
            "ioc_worker_fenced", "Writes refused because another worker owns the partition now.", registry=r
        )
        self.watermark = Gauge(
            "ioc_worker_watermark_timestamp_seconds", "Event-time watermark per feed and partition.", ["feed", "partition"], registry=r
        )
