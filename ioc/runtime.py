"""The embedded runtime: feeds → in-process bus → pipeline → hub, in one
asyncio process, with a journal and periodic checkpoints in the data dir.

Processing is one task consuming the bus, so the pure core never needs a
lock; HTTP ingest awaits its own batch to get a per-event `BatchReport`.

The order of one batch (README, "Guarantees"):

1. refuse what the live clock refuses (more than `Config.future_skew_s`
   ahead of "now": the wall clock, or the demo's simulated clock);
2. cut the batch at the pipeline's 5-minute steps and process each segment;
3. append each segment's ACCEPTED and CORRECTED events to the journal as one
   entry (with the "now" it was admitted against), flush it (fsync when
   configured);
4. only then: the alert store commit (transitions, audit, webhook outbox),
   the hub (walls), the metrics, the HTTP answer.

So nothing refused is journaled, nothing leaves the process before it is
durable, and a restart replays exactly the journaled segments (see
ioc/journal.py for why the boundaries are journaled).

Failures are contained per batch: a segment whose processing raises is
never journaled; its events (and those after it in the batch) are answered
`internal_error`; the in-memory state, which the failed segment may have
half-changed, is rebuilt from the checkpoint + journal (exactly the state
before the failure) and health is `degraded` until the next checkpoint.
A restore never fails: what cannot be decoded or applied is quarantined
(DATA_DIR/quarantine.jsonl), counted and logged, and start-up continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import msgspec

from ioc.catalog import Catalog
from ioc.config import Config
from ioc.errors import Reason, Rejection
from ioc.events import Event, encode_event, feed_of
from ioc.hub import Hub
from ioc.journal import (
    Checkpoint,
    DataDirLock,
    DeadLetters,
    Journal,
    JournalEntry,
    Quarantine,
    previous_path,
    read_checkpoint,
    write_checkpoint,
)
from ioc.metrics import KnownIds, Metrics
from ioc.records import Alert, Indicator
from ioc.timeutil import format_ts
from streams.pipeline import Pipeline, reject_positions

log = logging.getLogger("ioc.runtime")

CHECKPOINT_VERSION = 1
MAX_RESTORE_PASSES = 25  # one more pass per journaled entry that fails to re-process
CHECKPOINT_BACKOFF_MAX_S = 60.0

# ProcessResult.outcome values (streams.core.Outcome), kept here so the runtime also runs
# against a pipeline that has no outcome array yet.
ACCEPTED, DUPLICATE, CORRECTED, REJECTED = 0, 1, 2, 3
INTERNAL_ERROR = getattr(Reason, "INTERNAL_ERROR", "internal_error")


async def cancel_and_wait(tasks: list[asyncio.Task]) -> None:
    """Cancel background tasks and wait until each has finished (whatever it raised)."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


def safe_ts(epoch_s: float | None) -> str:
    """format_ts that never raises (a poisoned watermark must not break /healthz or a message)."""
    if epoch_s is None:
        return "none"
    try:
        return format_ts(epoch_s)
    except (OverflowError, ValueError, OSError, TypeError):
        return f"{epoch_s!r} (epoch s)"


@dataclass
class BatchReport:
    """What became of a submitted batch, by position in the submitted body.

    `rejections`: refused events (parse, validation, future-dated, too late, caps,
    internal_error), each with its `.position`; `duplicates` / `corrected`: positions of
    events recognised as a re-delivery (changed nothing) / a correction (replaced an
    earlier value).  Every other position was accepted.

    Iterating it (and len()) walks the rejections, as the former list[Rejection] answer did.
    """

    rejections: list[Rejection]
    duplicates: list[int] = field(default_factory=list)
    corrected: list[int] = field(default_factory=list)

    def __iter__(self):
        return iter(self.rejections)

    def __len__(self) -> int:
        return len(self.rejections)


class AppBackend(Protocol):
    """What the web app (ioc.api) needs from a runtime, embedded or distributed."""

    hub: Hub
    metrics: Metrics
    catalog: Catalog
    started: bool

    def watermarks(self) -> dict[str, float]: ...

    def snapshot(self) -> tuple[list[bytes], list[bytes]]: ...

    async def submit(
        self, events: list[Event], rejections: Sequence[Rejection] = (), source: str = "http",
        positions: list[int] | None = None, wait: bool = False, meta: dict | None = None,
    ) -> BatchReport: ...

    # optional: def health(self) -> dict  ({"status": ok|starting|degraded, "degraded": [reason, ...]})


@dataclass
class Submission:
    events: list[Event]
    rejections: list[Rejection]
    source: str
    positions: list[int] | None = None
    future: asyncio.Future | None = None
    received: float = field(default_factory=time.perf_counter)
    meta: dict | None = None


class _PoisonEntry(Exception):
    def __init__(self, entry: JournalEntry, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.entry, self.exc = entry, exc


class Runtime:
    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        pipeline: Pipeline,
        metrics: Metrics | None = None,
        hub: Hub | None = None,
        clock: Callable[[], float] = time.time,
        lock: DataDirLock | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.pipeline = pipeline
        self.metrics = metrics or Metrics()
        self.hub = hub or Hub(on_coalesced=self.metrics.ws_records_coalesced.inc, fresh_indicators=pipeline.flush)
        self.clock = clock
        self.known = KnownIds(set(catalog.stations), set(catalog.units), set(catalog.sites))
        data = Path(config.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.data_dir = data
        # one process per data dir: taken before anything in it is opened for writing
        self._own_lock = lock is None  # a lock passed in is released by its owner (ioc run: at exit)
        self.lock = lock if lock is not None else DataDirLock(data)
        self.journal = Journal(data / "journal", fsync=config.journal_fsync)
        self.dead_letters = DeadLetters(data / "dead-letter.jsonl")
        self.quarantine = Quarantine(data)
        self.checkpoint_path = data / "checkpoint.msgpack"
        self.queue: asyncio.Queue[Submission] = asyncio.Queue(maxsize=1024)
        self.tasks: list[asyncio.Task] = []
        self.feeds: list[Any] = []  # objects with async run(runtime) / state for checkpoints
        self.sim_state: dict[str, Any] = {}
        # the live "now" future-dated events are refused against: the wall clock; the demo
        # replaces it with its simulated clock.  Journaled with each batch, so a replay admits alike.
        self.live_now: Callable[[], float | None] = clock
        self.on_alerts: list[Callable[[list[Alert]], None]] = []
        from ioc.history import HistoryRecorder, HistoryStore

        self.history = HistoryStore(data)  # trend summaries (ioc.history), fed from journaled segments
        self.on_processed: list[Callable[[Any, list[Event]], None]] = [HistoryRecorder(self.history)]
        self.engine_initial_state: dict | None = None  # set by the alerting adapter
        self.apply_op: Callable[[dict], None] = lambda op: None
        self.restored_events = 0
        self.restored_entries = 0
        self.quarantined = 0
        self.restore_seconds = 0.0
        self._blank_state = pipeline.get_state()  # a pipeline that has seen nothing (before any restore)
        self._skip: set[tuple[int, int]] = set()  # journal entries that failed to re-process (quarantined)
        self._quarantined_at: set[tuple[str, int, int, int]] = set()
        self._last_cp_segment: int | None = None  # journal segment of the checkpoint on disk
        self._degraded: dict[str, str] = {}  # topic → reason
        self._pending_puts: set[asyncio.Future] = set()
        self._write: asyncio.Future | None = None  # checkpoint write in flight
        self.started = False

    # -- health --------------------------------------------------------
    def health(self) -> dict:
        status = "degraded" if self._degraded else ("ok" if self.started else "starting")
        out: dict[str, Any] = {"status": status}
        if self._degraded:
            out["degraded"] = [f"{k}: {v}" for k, v in sorted(self._degraded.items())]
        if self.quarantined:
            out["quarantined"] = self.quarantined
        demo = getattr(self, "demo", None)  # set by ioc.demo.DemoFeed: walls show "demo ×N" above speed 1
        if demo:
            out["demo"] = dict(demo)
        return out

    def _degrade(self, topic: str, reason: str) -> None:
        self._degraded[topic] = reason[:500]

    # -- lifecycle -----------------------------------------------------
    @property
    def _engine(self):
        return self.pipeline.engine

    def _reset_state(self) -> None:
        """The state of a runtime that has processed nothing."""
        self.pipeline.set_state(self._blank_state)
        engine = self._engine
        if self.engine_initial_state is not None and engine is not None and hasattr(engine, "set_state"):
            engine.set_state(self.engine_initial_state)
        self.sim_state = {}

    def restore(self) -> None:
        """Checkpoint + journal tail → the state at the moment the process died; never fails.

        A checkpoint that cannot be read or applied is quarantined and the previous one (or a
        full journal replay) is used; a journal line that cannot be decoded is quarantined and
        the rest of its entry applied; an entry whose re-processing raises is quarantined and
        the restore starts over without it (its half-applied effects must not stay).
        """
        t0 = time.perf_counter()
        engine = self._engine
        deferring = engine is not None and hasattr(engine, "take_deferred")
        if deferring:
            engine.defer_commits = True
        try:
            for attempt in range(MAX_RESTORE_PASSES):
                try:
                    self._restore_pass(last=attempt == MAX_RESTORE_PASSES - 1)
                    break
                except _PoisonEntry as p:
                    e = p.entry
                    self._skip.add(e.position)
                    log.error("journal entry at segment %d offset %d cannot be re-processed (%s): quarantined; "
                              "restoring again without it", e.segment, e.offset, p)
                    self._quarantine("journal_entry", f"re-processing raised {p}",
                                     b"".join(encode_event(ev) + b"\n" for ev in e.events), e.segment, e.offset)
                    if deferring:
                        engine.take_deferred()  # the failed pass's commits: re-derived by the next pass
        finally:
            if deferring:
                self._write_commit(engine.take_deferred())
                engine.defer_commits = False
        self.restore_seconds = time.perf_counter() - t0
        self.metrics.restore_seconds.set(self.restore_seconds)
        self.metrics.restored_entries.set(self.restored_entries)
        self._publish_snapshot()
        if self.quarantined:
            self._degrade("restore", f"{self.quarantined} item(s) could not be restored and were quarantined "
                                     f"in {self.quarantine.path}")
        for feed, wm in self.pipeline.watermarks.items():
            self.metrics.watermark.labels(feed).set(wm)

    def _restore_pass(self, last: bool) -> None:
        self._reset_state()
        self.restored_events = self.restored_entries = 0
        segment, offset = self._load_checkpoint()
        engine = self._engine
        for n, entry in enumerate(self.journal.read_from(segment, offset)):
            if entry.position in self._skip:
                continue
            for raw, why in entry.damaged:
                self._quarantine("journal_line" if entry.kind != "bad" else "journal_entry", why, raw,
                                 entry.segment, entry.offset)
            meta = entry.meta or {}
            if "sim" in meta and isinstance(meta["sim"], dict):
                self.sim_state = dict(meta["sim"])
            if "op" in meta:
                try:
                    self.apply_op(meta["op"])
                except Exception as exc:  # noqa: BLE001 - a bad op must not stop the restore
                    self._quarantine("journal_op", f"{type(exc).__name__}: {exc}", msgspec.json.encode(meta["op"]),
                                     entry.segment, entry.offset)
            if entry.events:
                self.restored_entries += 1
                try:
                    self._replay_segment(entry.events, entry.now)
                except Exception as exc:  # noqa: BLE001
                    if last:  # out of passes: keep what we have rather than loop forever
                        self._quarantine("journal_entry", f"re-processing raised {type(exc).__name__}: {exc}",
                                         b"".join(encode_event(ev) + b"\n" for ev in entry.events),
                                         entry.segment, entry.offset)
                        self._degrade("restore", "restore ran out of passes; state may be incomplete")
                        continue
                    raise _PoisonEntry(entry, exc) from exc
                self.restored_events += len(entry.events)
            if engine is not None and n % 256 == 255 and hasattr(engine, "take_deferred"):
                self._write_commit(engine.take_deferred())

    def _load_checkpoint(self) -> tuple[int, int]:
        """Apply the newest usable checkpoint; returns the journal position to replay from."""
        first = min(self.journal.segments(), default=0)
        for path in (self.checkpoint_path, previous_path(self.checkpoint_path)):
            try:
                cp = read_checkpoint(path)
            except Exception as exc:  # noqa: BLE001 - truncated, corrupt, wrong schema
                self._quarantine_file(path, f"cannot decode: {type(exc).__name__}: {exc}")
                continue
            if cp is None:
                continue
            if cp.version != CHECKPOINT_VERSION:
                self._quarantine_file(path, f"checkpoint version {cp.version} is not supported")
                continue
            if cp.journal_segment < first and first > 0:
                # its journal tail starts before what is left on disk: usable, but say so
                log.warning("%s covers journal segment %d but the oldest left is %d", path, cp.journal_segment, first)
            try:
                self.pipeline.set_state(cp.pipeline)
            except Exception as exc:  # noqa: BLE001
                self._reset_state()
                self._quarantine_file(path, f"cannot apply: {type(exc).__name__}: {exc}")
                continue
            self.sim_state = dict(cp.extra.get("sim", {}) or {})
            self._last_cp_segment = cp.journal_segment
            if path != self.checkpoint_path:
                log.warning("restored from the previous checkpoint %s", path)
            return cp.journal_segment, cp.journal_offset
        self._last_cp_segment = None
        if first > 0:
            msg = (f"no usable checkpoint and the journal starts at segment {first}: replaying what is left; "
                   "state older than that is lost")
            log.error(msg)
            self._degrade("restore", msg)
        return first, 0

    def _replay_segment(self, events: list[Event], now: float | None) -> None:
        seg = getattr(self.pipeline, "process_segment", None)
        result = seg(events, now) if seg is not None else self.pipeline.process(events, now)
        counts: dict[str, int] = {}
        for ev in events:
            f = feed_of(ev)
            counts[f] = counts.get(f, 0) + 1
        for f, n in counts.items():
            self.metrics.events_ingested.labels(f).inc(n)
        if result.alerts:
            self.metrics.observe_alerts(result.alerts)
        self._processed(result, events)

    def _processed(self, result, kept: list[Event]) -> None:
        """The on_processed callbacks (trend history) for one journaled segment, live or replayed."""
        for cb in self.on_processed:
            try:
                cb(result.records, kept)
            except Exception as exc:  # noqa: BLE001 - a summary must never stop the stream
                log.exception("an on_processed callback failed")
                self._degrade("history", f"{type(exc).__name__}: {exc}")

    def _quarantine(self, what: str, reason: str, raw: bytes, segment: int, offset: int) -> None:
        key = (what, segment, offset, hash(raw))
        if key in self._quarantined_at:
            return  # the same item seen again by a later restore pass
        self._quarantined_at.add(key)
        self.quarantined += 1
        self.metrics.restore_quarantined.labels(what).inc()
        log.error("quarantined %s at journal segment %d offset %d: %s", what, segment, offset, reason)
        self.quarantine.put(what, reason, raw, segment=segment, offset=offset)

    def _quarantine_file(self, path: Path, reason: str) -> None:
        self.quarantined += 1
        self.metrics.restore_quarantined.labels("checkpoint").inc()
        log.error("checkpoint %s quarantined: %s", path, reason)
        self.quarantine.move_file(path, "checkpoint", reason)

    def _publish_snapshot(self) -> None:
        try:
            self.hub.publish([*self.pipeline.flush(), *self._active_alerts()])
        except Exception as exc:  # noqa: BLE001 - serve anyway; the walls get the next deltas
            log.exception("publishing the restored state failed")
            self._degrade("publish", f"{type(exc).__name__}: {exc}")

    def _active_alerts(self) -> list[Alert]:
        engine = self.pipeline.engine
        return list(engine.active()) if engine is not None and hasattr(engine, "active") else []

    async def start(self) -> None:
        self.restore()
        self.tasks.append(asyncio.create_task(self._consume(), name="ioc-bus"))
        self.tasks.append(asyncio.create_task(self._checkpoint_loop(), name="ioc-checkpoint"))
        for feed in self.feeds:
            self.tasks.append(asyncio.create_task(feed.run(self), name=f"ioc-feed-{type(feed).__name__}"))
        self.started = True

    async def stop(self) -> None:
        await cancel_and_wait(self.tasks)
        self.tasks.clear()
        if self._write is not None:
            with contextlib.suppress(Exception):
                await self._write
        # drain what was accepted but not yet processed
        while not self.queue.empty():
            self._handle(self.queue.get_nowait())
        try:
            self.checkpoint()
        except Exception:  # noqa: BLE001 - the journal still holds everything
            self.metrics.checkpoint_failures.inc()
            log.exception("final checkpoint failed; the next start replays the journal")
        self.journal.close()
        self.dead_letters.close()
        self.history.close()
        if self._own_lock:
            self.lock.release()

    # -- input ---------------------------------------------------------
    async def submit(
        self,
        events: list[Event],
        rejections: Sequence[Rejection] = (),
        source: str = "http",
        positions: list[int] | None = None,
        wait: bool = False,
        meta: dict | None = None,
    ) -> BatchReport:
        """Queue a batch; with wait=True, the BatchReport once it is processed and durable."""
        fut = asyncio.get_running_loop().create_future() if wait else None
        await self.queue.put(Submission(list(events), list(rejections), source, positions, fut, meta=meta))
        if fut is None:
            return BatchReport(list(rejections), [], [])
        return await fut

    def sink(self, source: str) -> Callable[[list[Event], list[Rejection]], None]:
        """A synchronous sink for feed adapters: queues the batch (waits if the bus is full, never drops)."""

        def deliver(events: list[Event], rejections: list[Rejection]) -> None:
            sub = Submission(list(events), list(rejections), source)
            try:
                self.queue.put_nowait(sub)
            except asyncio.QueueFull:
                self._pending_puts.add(t := asyncio.ensure_future(self.queue.put(sub)))
                t.add_done_callback(self._pending_puts.discard)

        return deliver

    # -- processing ----------------------------------------------------
    async def _consume(self) -> None:
        while True:
            sub = await self.queue.get()
            try:
                report = self._handle(sub)
            except Exception as exc:  # noqa: BLE001 - _handle contains its own failures; this is a last guard
                log.exception("batch from %s failed", sub.source)
                self._degrade("processing", f"{type(exc).__name__}: {exc}")
                report = BatchReport([*sub.rejections, *self._internal_errors(sub.events, sub.positions, 0, exc)])
            if sub.future is not None and not sub.future.done():
                sub.future.set_result(report)

    def _now(self) -> float | None:
        try:
            now = self.live_now()
        except Exception:  # noqa: BLE001
            log.exception("live clock failed; using the wall clock")
            now = self.clock()
        return float(now) if now is not None else None

    def _refuse_future(self, events: list[Event], positions: list[int], now: float | None, source: str):
        """Events more than future_skew_s ahead of the live clock: refused before the pipeline sees them."""
        if now is None or not events:
            return events, positions, []
        limit = now + self.config.future_skew_s
        if max(ev.t for ev in events) <= limit:
            return events, positions, []
        keep_e, keep_p, refused = [], [], []
        skew = self.config.future_skew_s
        for ev, pos in zip(events, positions):
            if ev.t > limit:
                refused.append(Rejection(
                    Reason.FUTURE_TIMESTAMP,
                    f"timestamp {safe_ts(ev.t)} is more than {skew:g} s ahead of the clock ({safe_ts(now)})",
                    feed_of(ev), encode_event(ev), pos))
            else:
                keep_e.append(ev)
                keep_p.append(pos)
        return keep_e, keep_p, refused

    def _internal_errors(self, events, positions, start: int, exc: BaseException) -> list[Rejection]:
        positions = positions if positions is not None else list(range(len(events)))
        detail = (f"the server failed processing this batch ({type(exc).__name__}); nothing of it was kept: "
                  "retry it, or report it if it keeps failing")
        out = []
        for ev, pos in zip(events[start:], positions[start:]):
            try:
                raw = encode_event(ev)
            except Exception:  # noqa: BLE001
                raw = b""
            out.append(Rejection(INTERNAL_ERROR, detail, feed_of(ev), raw, pos))
        return out

    def _handle(self, sub: Submission) -> BatchReport:
        source = sub.source
        report = BatchReport(list(sub.rejections), [], [])
        self._reject(sub.rejections, source)
        events = sub.events
        positions = list(sub.positions) if sub.positions is not None else list(range(len(events)))
        if len(positions) != len(events):
            positions = list(range(len(events)))
        now = self._now()
        events, positions, future = self._refuse_future(events, positions, now, source)
        if future:
            self._reject(future, source)
            report.rejections.extend(future)
        sim = sub.meta.get("sim") if sub.meta else None
        engine = self._engine
        deferring = engine is not None and hasattr(engine, "take_deferred")
        done: list[tuple[Any, list[Event]]] = []  # (result, journaled events) per processed segment
        commits = []
        failed: BaseException | None = None
        sim_journaled = False
        entries: list[tuple[list[Event], dict | None]] = []  # journal entries of this submission
        offset = 0
        if events:
            if deferring:
                engine.defer_commits = True
            try:
                segments = self.pipeline.segments(events) if hasattr(self.pipeline, "segments") else [events]
                for seg in segments:
                    seg = list(seg)
                    seg_pos = positions[offset:offset + len(seg)]
                    try:
                        result = self._process(seg, now)
                    except Exception as exc:  # noqa: BLE001 - contained: never journaled
                        failed = exc
                        report.rejections.extend(self._internal_errors(events, positions, offset, exc))
                        if deferring:
                            engine.take_deferred()
                        break
                    kept = self._classify(seg, seg_pos, result, report, source)
                    last = offset + len(seg) == len(events)
                    # a segment with nothing accepted (all duplicates / refused) changed nothing: no entry
                    if kept or (last and sim is not None):
                        entries.append((kept, sim if last else None))
                        sim_journaled = sim_journaled or (last and sim is not None)
                    if deferring:
                        commits.append(engine.take_deferred())
                    done.append((result, kept))
                    offset += len(seg)
            except Exception as exc:  # noqa: BLE001 - segmentation or classification failed
                failed = exc
                report.rejections.extend(self._internal_errors(events, positions, offset, exc))
                if deferring:
                    engine.take_deferred()
            finally:
                if deferring:
                    engine.defer_commits = False
        if sim is not None:
            self.sim_state = dict(sim)
            if not sim_journaled:  # the simulator's progress travels alone
                entries.append(([], sim))
        if entries:
            start = self.journal.position()
            try:  # one group per submission: durable all or nothing
                for i, (kept, meta) in enumerate(entries):
                    self.journal.append_batch(kept, now, meta, more=i < len(entries) - 1)
                self.journal.flush()  # durable before anything leaves the process
            except Exception as exc:  # noqa: BLE001 - the state holds what the journal may not: rebuild it
                log.exception("journal write failed")
                self._degrade("journal", f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    self.journal.truncate_to(*start)  # no half group for later entries to follow
                failed = exc
                commits, done = [], []
                report = BatchReport([*sub.rejections, *future, *self._internal_errors(events, positions, 0, exc)])
        if commits:
            merged = commits[0]
            for c in commits[1:]:
                merged.merge(c)
            self._write_commit(merged)
        for result, kept in done:
            self._emit(result, kept)
        if failed is not None:
            self._recover(failed, source)
        self.metrics.processing_lag.observe(time.perf_counter() - sub.received)
        return report

    def _process(self, events: list[Event], now: float | None):
        seg = getattr(self.pipeline, "process_segment", None)
        return seg(events, now) if seg is not None else self.pipeline.process(events, now)

    def _classify(self, seg: list[Event], seg_pos: list[int], result, report: BatchReport, source: str) -> list[Event]:
        """Fill the report from one segment's result; returns the events to journal (accepted + corrected)."""
        outcome = getattr(result, "outcome", None)
        rejections = result.rejections
        m = self.metrics
        if outcome is not None and len(outcome) == len(seg):
            codes = outcome.tolist() if hasattr(outcome, "tolist") else list(outcome)
            if rejections:
                rejections = [
                    Rejection(r.reason, r.detail, r.feed, r.raw, seg_pos[r.position])
                    if 0 <= r.position < len(seg_pos) else r
                    for r in rejections
                ]
            kept = []
            for ev, pos, code in zip(seg, seg_pos, codes):
                if code == ACCEPTED:
                    kept.append(ev)
                elif code == CORRECTED:
                    kept.append(ev)
                    report.corrected.append(pos)
                    m.events_corrected.labels(feed_of(ev)).inc()
                elif code == DUPLICATE:
                    report.duplicates.append(pos)
                    m.events_duplicate.labels(feed_of(ev)).inc()
        elif rejections:
            rejections = reject_positions(rejections, seg, seg_pos)
            refused = {r.raw for r in rejections}
            kept = [ev for ev in seg if encode_event(ev) not in refused]
        else:
            kept = seg
        for q in getattr(result, "quarantined", ()):
            m.readings_quarantined.labels(q.feed, q.reason).inc()
        if rejections:
            self._reject(rejections, source)
            report.rejections.extend(rejections)
        return kept

    def _emit(self, result, kept: list[Event]) -> None:
        """Metrics, alert callbacks and the hub for one journaled segment (after the flush)."""
        try:
            m = self.metrics
            counts: dict[str, int] = {}
            for ev in kept:
                f = feed_of(ev)
                counts[f] = counts.get(f, 0) + 1
            for f, n in counts.items():
                m.events_ingested.labels(f).inc(n)
            m.batch_size.observe(len(kept))
            for feed, wm in self.pipeline.watermarks.items():
                m.watermark.labels(feed).set(wm)
            m.observe_indicators(result.indicators, self.known)
            if result.alerts:
                m.observe_alerts(result.alerts)
                for cb in self.on_alerts:
                    cb(result.alerts)
            self.hub.publish(result.records)
        except Exception as exc:  # noqa: BLE001 - the batch is durable; only its fan-out failed
            log.exception("publishing a processed batch failed")
            self._degrade("publish", f"{type(exc).__name__}: {exc}")
        self._processed(result, kept)

    def _write_commit(self, commit) -> None:
        engine = self._engine
        if commit and engine is not None and hasattr(engine, "write_commit"):
            try:
                engine.write_commit(commit)
            except Exception as exc:  # noqa: BLE001 - the journal has it; a restart re-derives it
                log.exception("alert store commit failed")
                self._degrade("alert store", f"{type(exc).__name__}: {exc}")

    def _recover(self, exc: BaseException, source: str) -> None:
        """A segment raised mid-way: rebuild the state from checkpoint + journal (the state before it)."""
        self.metrics.batch_failures.labels(source).inc()
        log.error("a batch from %s failed (%s: %s); nothing of it was journaled; rebuilding the state from "
                  "the checkpoint and the journal", source, type(exc).__name__, exc, exc_info=exc)
        self._degrade("processing", f"a batch from {source} failed ({type(exc).__name__}: {exc}); "
                                    "state rebuilt from the journal")
        t0 = time.perf_counter()
        try:
            self.restore()
        except Exception:  # noqa: BLE001 - restore never raises by design; belt and braces
            log.exception("rebuilding the state failed")
        log.warning("state rebuilt in %.2f s", time.perf_counter() - t0)

    def _reject(self, rejections: Sequence[Rejection], source: str) -> None:
        if not rejections:
            return
        for r in rejections:
            self.metrics.events_rejected.labels(r.feed, str(r.reason)).inc()
        try:
            self.dead_letters.write(rejections, source)
        except Exception as exc:  # noqa: BLE001 - counted in the metric; the batch goes on
            log.exception("writing dead letters failed")
            self._degrade("dead letters", f"{type(exc).__name__}: {exc}")

    def journal_op(self, op: dict) -> None:
        """An operator action, journaled (and flushed) in order with the batches before it is applied."""
        self.journal.append_op(op)

    def publish_updates(self, alerts: list[Alert]) -> None:
        """Lifecycle updates made outside the bus (acks) go to the walls too."""
        if alerts:
            self.hub.publish(alerts)

    # -- checkpoints ---------------------------------------------------
    def _capture(self) -> tuple[bytes, int]:
        """State + journal position, taken between batches so they agree; encoded at once.

        Encoded before the journal rotates: a state that cannot be encoded leaves the journal as it was.
        """
        state = self.pipeline.get_state()
        segment = self.journal.segment + 1
        cp = Checkpoint(
            version=CHECKPOINT_VERSION,
            journal_segment=segment,
            journal_offset=0,
            pipeline=state,
            extra={"sim": self.sim_state},
        )
        data = msgspec.msgpack.encode(cp)
        self.journal.rotate()
        return data, segment

    def checkpoint(self) -> None:
        t0 = time.perf_counter()
        data, segment = self._capture()
        write_checkpoint(self.checkpoint_path, data)
        self._checkpointed(segment, t0)

    async def checkpoint_async(self) -> None:
        """The write and fsync run in a thread: a slow disk must not stall every WebSocket client."""
        t0 = time.perf_counter()
        data, segment = self._capture()
        # shielded: if this task is cancelled, the write still completes and stop() waits for it,
        # so an older checkpoint can never land after the final one
        self._write = asyncio.ensure_future(asyncio.to_thread(write_checkpoint, self.checkpoint_path, data))
        await asyncio.shield(self._write)
        self._checkpointed(segment, t0)

    def _checkpointed(self, segment: int, t0: float) -> None:
        # two checkpoint generations are kept: segments since the *previous* one stay, so a
        # current checkpoint that cannot be read later falls back to the previous one + journal
        if self._last_cp_segment is not None:
            self.journal.prune_before(self._last_cp_segment)
        self._last_cp_segment = segment
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_seconds.set(time.perf_counter() - t0)
        for topic in ("checkpoint", "processing"):
            self._degraded.pop(topic, None)

    async def _checkpoint_loop(self) -> None:
        """Every checkpoint_interval_s; a failure is counted, logged, shown in /healthz and retried
        with backoff: this loop only ends when the runtime stops."""
        failures = 0
        delay = self.config.checkpoint_interval_s
        while True:
            await asyncio.sleep(delay)
            try:
                # the capture runs between batches: the consumer task and this one share the loop
                await self.checkpoint_async()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                failures += 1
                delay = min(self.config.checkpoint_interval_s * 2 ** min(failures, 10), CHECKPOINT_BACKOFF_MAX_S)
                self.metrics.checkpoint_failures.inc()
                log.error("checkpoint failed (%d in a row), retrying in %.0f s: %s: %s", failures, delay,
                          type(exc).__name__, exc, exc_info=exc)
                self._degrade("checkpoint", f"failing since {failures} attempt(s): {type(exc).__name__}: {exc}")
            else:
                failures = 0
                delay = self.config.checkpoint_interval_s

    # -- reads ---------------------------------------------------------
    def watermarks(self) -> dict[str, float]:
        return self.pipeline.watermarks

    def snapshot(self) -> tuple[list[bytes], list[bytes]]:
        return self.hub.snapshot_records()


def indicators_only(records) -> list[Indicator]:
    return [r for r in records if isinstance(r, Indicator)]


__all__ = ["Runtime", "BatchReport", "AppBackend", "Submission", "cancel_and_wait", "safe_ts"]
