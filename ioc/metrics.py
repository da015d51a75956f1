"""Every Prometheus metric of the monitor, declared in one place against an
injectable registry (a fresh one per test, like prometheus/client_python's
own tests).  Label sets are bounded: feeds, reasons and rules are fixed
vocabularies, and per-entity gauges exist only for ids in the catalog.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ioc.records import Alert, Indicator

_RATE_NAMES = {
    "dossier_online_rate",
    "dossier_digitization_rate",
    "dossier_online_payment_rate",
    "dossier_on_time_rate",
}
_COUNT_NAMES = {"dossier_received", "dossier_processed", "dossier_overdue_open", "dossier_open"}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_ingested = Counter(
            "ioc_events_ingested", "Events accepted into the pipeline, by feed.", ["feed"], registry=r
        )
        self.events_rejected = Counter(
            "ioc_events_rejected",
            "Events refused at the boundary (and dead-lettered), by feed and reason.",
            ["feed", "reason"],
            registry=r,
        )
        self.processing_lag = Histogram(
            "ioc_processing_lag_seconds",
            "Wall-clock time from receiving a batch to publishing its outputs.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.batch_size = Histogram(
            "ioc_batch_events",
            "Events per processed batch.",
            buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384),
            registry=r,
        )
        self.watermark = Gauge(
            "ioc_watermark_timestamp_seconds", "Event-time watermark of each feed (epoch s).", ["feed"], registry=r
        )
        self.ws_clients = Gauge("ioc_ws_clients", "Connected WebSocket clients.", registry=r)
        self.ws_messages_sent = Counter(
            "ioc_ws_messages_sent", "WebSocket messages sent, by message type.", ["type"], registry=r
        )
        self.ws_records_coalesced = Counter(
            "ioc_ws_records_coalesced",
            "Records replaced in a slow client's queue by a newer value of the same key.",
            registry=r,
        )
        self.ws_resyncs = Counter(
            "ioc_ws_resyncs", "Clients sent a full snapshot because their queue overflowed.", registry=r
        )
        self.alert_transitions = Counter(
            "ioc_alert_transitions", "Alert transitions, by rule and state.", ["rule", "state"], registry=r
        )
        self.test_alerts = Counter(  # the operator's test alerts (alerts/test_alert.py): never in the above
            "ioc_test_alerts", "Operator test alert transitions (firing, resolved), kept out of ioc_alert_transitions.",
            ["transition"], registry=r,
        )
        self.notifications = Counter(
            "ioc_notifications",
            "Notification delivery attempts to people (alerts/notify), by channel and outcome (sent, retrying, failed).",
            ["channel", "outcome"],
            registry=r,
        )
        self.checkpoints = Counter("ioc_checkpoints", "State checkpoints written.", registry=r)
        self.checkpoint_seconds = Gauge(
            "ioc_checkpoint_duration_seconds", "Duration of the last checkpoint write.", registry=r
        )
        # durability and recovery (embedded runtime)
        self.checkpoint_failures = Counter(
            "ioc_checkpoint_failures",
            "Checkpoints that could not be captured or written (retried with backoff; health is degraded).",
            registry=r,
        )
        self.restore_quarantined = Counter(
            "ioc_restore_quarantined",
            "Items a restore could not decode or apply, moved to DATA_DIR/quarantine.jsonl, by what "
            "(checkpoint, journal_line, journal_entry, journal_op).",
            ["what"],
            registry=r,
        )
        self.restore_seconds = Gauge(
            "ioc_restore_duration_seconds", "Duration of the last restore (checkpoint + journal tail).", registry=r
        )
        self.restored_entries = Gauge(
            "ioc_restore_journal_entries", "Journal entries re-processed by the last restore.", registry=r
        )
        self.batch_failures = Counter(
            "ioc_batch_failures",
            "Batches whose processing raised: answered with internal_error, never journaled, state rebuilt.",
            ["source"],
            registry=r,
        )
        self.events_duplicate = Counter(
            "ioc_events_duplicate", "Events seen again with the same value (changed nothing), by feed.", ["feed"],
            registry=r,
        )
        self.events_corrected = Counter(
            "ioc_events_corrected", "Events that replaced an earlier value of the same key, by feed.", ["feed"],
            registry=r,
        )
        self.readings_quarantined = Counter(
            "ioc_readings_quarantined",
            "Readings accepted but held out of the sums as physically implausible, by feed and reason.",
            ["feed", "reason"], registry=r,
        )
        # access control (ioc/auth): reasons are a fixed vocabulary, principals an admin-managed set
        self.auth_failures = Counter(
            "ioc_auth_failures",
            "Requests and sign-ins refused by access control, by reason "
            "(missing, malformed, unknown, revoked, session, forbidden, metrics, origin).",
            ["reason"],
            registry=r,
        )
        self.ingest_rate_limited = Counter(
            "ioc_ingest_rate_limited", "Ingest requests refused with 429 by the per-principal rate limit.",
            ["principal"], registry=r,
        )
        # indicator gauges (catalog entities only → bounded): rates as ratios 0–1, rain in millimetres (the thresholds' unit)
        self.rain_mm = Gauge(
            "ioc_rain_mm", "Rain depth over a window, by station, in millimetres (the unit of every rain threshold).", ["window", "station"],
            registry=r,
        )
        self.dossier_ratio = Gauge(
            "ioc_dossier_ratio", "Decision 766 rates as a ratio 0–1, by indicator (dossier_on_time_rate, ...) and unit.",
            ["indicator", "unit", "window"], registry=r,
        )
        self.dossiers = Gauge(
            "ioc_dossiers", "Dossiers by indicator (dossier_received, dossier_processed, dossier_open, "
            "dossier_overdue_open) and unit.", ["indicator", "unit", "window"], registry=r,
        )
        self.unit_score = Gauge("ioc_unit_score", "Decision 766 style score (0–100), by unit.", ["unit"], registry=r)
        # one metric per statistic: summing or averaging any of them over sites stays meaningful
        self.queue_waiting = Gauge("ioc_queue_waiting", "People waiting now at a one-stop-shop site.", ["site"], registry=r)
        self.queue_waiting_avg = Gauge(
            "ioc_queue_waiting_avg_15m", "People waiting at a site, averaged over the last 15 minutes.", ["site"], registry=r
        )
        self.queue_waiting_max = Gauge(
            "ioc_queue_waiting_max_15m", "Most people waiting at a site in the last 15 minutes.", ["site"], registry=r
        )
        self.queue_wait_est = Gauge(
            "ioc_queue_wait_estimate_seconds", "Estimated waiting time at a site.", ["site"], registry=r
        )
        # stream-core queue indicator (streams/cameras.py) -> its gauge
        self._queue_gauges = {
            "queue_waiting": self.queue_waiting,
            "queue_waiting_avg": self.queue_waiting_avg,
            "queue_waiting_max": self.queue_waiting_max,
            "queue_wait_est_s": self.queue_wait_est,
        }

    def observe_indicators(self, records: list[Indicator], known: "KnownIds") -> None:
        """Mirror indicator records into gauges (only catalog entities)."""
        for rec in records:
            value = rec.value
            if not isinstance(value, (int, float)) or rec.unknown:
                continue
            name = rec.name
            if name == "rain_mm" and rec.entity in known.stations:
                self.rain_mm.labels(rec.window, rec.entity).set(value)
            elif name in _RATE_NAMES and rec.entity in known.units:
                self.dossier_ratio.labels(name, rec.entity, rec.window).set(value)
            elif name in _COUNT_NAMES and rec.entity in known.units:
                self.dossiers.labels(name, rec.entity, rec.window).set(value)
            elif name == "unit_score" and rec.entity in known.units:
                self.unit_score.labels(rec.entity).set(value)
            elif name in self._queue_gauges and rec.entity in known.sites:
                self._queue_gauges[name].labels(rec.entity).set(value)

    def observe_alerts(self, alerts: list[Alert]) -> None:
        for a in alerts:
            self.alert_transitions.labels(a.rule, a.state).inc()


class KnownIds:
    """The catalog's ids, the only entities allowed as metric labels."""

    def __init__(self, stations: set[str], units: set[str], sites: set[str]) -> None:
        self.stations = stations
        self.units = units
        self.sites = sites


class WorkerMetrics:
    """A Faust worker's metrics (its own registry and /metrics port); labels: feeds, reasons, topics, partitions."""

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
        self.ticks = Counter(
            "ioc_worker_watermark_ticks",
            "Watermark ticks produced into idle partitions (their gauges silent, the feed's time moving on), by feed.",
            ["feed"],
            registry=r,
        )
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
        self.dependency_up = Gauge(
            "ioc_worker_dependency_up",
            "1 while the dependency answers, 0 during an outage (calls are retried with backoff).",
            ["dependency"],
            registry=r,
        )
        self.dependency_outages = Counter(
            "ioc_worker_dependency_outages", "Outages of a dependency seen by this worker.", ["dependency"], registry=r
        )
        self.retries = Counter(
            "ioc_worker_dependency_retries", "Calls retried because a dependency was unavailable.", ["dependency"], registry=r
        )
        self.state_lost = Counter(
            "ioc_worker_redis_state_lost",
            "Times Redis had lost a partition's keys (restart without persistence, FLUSHALL) and the owner re-wrote them.",
            registry=r,
        )
        self.rewinds = Counter(
            "ioc_worker_rewinds",
            "Seeks back to the checkpoint because Kafka delivered past it (Redis behind the committed offset).",
            ["topic"],
            registry=r,
        )
        self.offset_gaps = Counter(
            "ioc_worker_offset_gaps", "Offsets missing from the log (retention) that a rewind could not re-read.", ["topic"], registry=r
        )
        self.redis_aof = Gauge(
            "ioc_worker_redis_aof_enabled", "1 when Redis runs with appendonly yes, 0 when not, -1 when unknown.", registry=r
        )
        self.redis_aof.set(-1)
