"""A small trend history in the data dir (`DATA_DIR/history.sqlite`), for the wall's trend views.

What the stream core does not keep long enough (docs/architecture.md §4: dossiers keep only the
current day/month/year counters, cameras one hour) is summarised here, in event time:

- ``dossier_day(unit, day, received, processed, on_time_rate)``: the latest ``dossier_received``,
  ``dossier_processed`` and ``dossier_on_time_rate`` of window ``day`` emitted for that unit and
  day (``period``), so roll-ups to districts and the province are the processor's own;
- ``camera_minute(camera, site, minute, waiting)``: the last two days of camera readings (keyed by
  camera and minute, so a re-delivery or a correction replaces, never adds), from which
- ``queue_hour(site, hour, waiting_mean, minutes)`` is recomputed for every hour a batch touched:
  the mean over the hour's minutes of the site's total waiting (sum over its cameras).

Rain needs no history: the rain processor's 72 h bucket ring is read directly (ioc.trends).

Writes go through one writer thread (never on the event loop); reads first wait for the writes
submitted before them, so an answer includes everything processed before the request.  Size is
bounded: rows older than `RETAIN_DAYS` (queue and dossier) or `MINUTES_KEPT_S` (camera minutes)
before the newest event time seen are deleted.  Rows carry a `source`: ``live`` (the pipeline)
or ``demo`` (the demo's backfill of earlier simulated days, ioc.demo_history).  The recorder is
fed from journaled segments, live and on restore, so a crash between the journal flush and the
history write is repaired by the restart's journal replay (upserts are idempotent).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ioc.events import CameraEvent
from ioc.records import Indicator

log = logging.getLogger("ioc.history")

RETAIN_DAYS = 62  # dossier days and queue hours kept (a month of trends, twice)
MINUTES_KEPT_S = 2 * 86400.0  # camera minutes kept: late camera data is refused after 1 h anyway
DAY_S = 86400.0
HOUR_S = 3600.0
DOSSIER_COLUMNS = {"dossier_received": "received", "dossier_processed": "processed",
                   "dossier_on_time_rate": "on_time_rate"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dossier_day (
    unit TEXT NOT NULL, day TEXT NOT NULL, received INTEGER, processed INTEGER, on_time_rate REAL,
    source TEXT NOT NULL DEFAULT 'live', PRIMARY KEY (unit, day));
CREATE TABLE IF NOT EXISTS camera_minute (
    camera TEXT NOT NULL, minute INTEGER NOT NULL, site TEXT NOT NULL, waiting INTEGER NOT NULL,
    PRIMARY KEY (camera, minute));
CREATE INDEX IF NOT EXISTS camera_minute_site ON camera_minute (site, minute);
CREATE TABLE IF NOT EXISTS queue_hour (
    site TEXT NOT NULL, hour INTEGER NOT NULL, waiting_mean REAL NOT NULL, minutes INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT 'live', PRIMARY KEY (site, hour));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class HistoryStore:
    """The SQLite file and its writer thread.  `record(...)` queues; `read(fn)` runs after the queue."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "history.sqlite"
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a summary: the journal replay repairs a lost tail
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()  # one connection: the writer and readers take turns
        self._q: queue.Queue[Callable[[sqlite3.Connection], None] | threading.Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ioc-history", daemon=True)
        self._thread.start()
        self.newest_t = self._newest()

    def _newest(self) -> float:
        row = self._db.execute("SELECT MAX(hour) FROM queue_hour").fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            if isinstance(job, threading.Event):
                job.set()
                continue
            try:
                with self._lock:
                    self._db.execute("BEGIN")
                    try:
                        job(self._db)
                        self._db.execute("COMMIT")
                    except BaseException:
                        self._db.execute("ROLLBACK")
                        raise
            except Exception:  # noqa: BLE001 - a summary write must never stop the stream
                log.exception("history write failed")

    def submit(self, job: Callable[[sqlite3.Connection], None]) -> None:
        self._q.put(job)

    def sync(self, timeout_s: float = 10.0) -> None:
        """Wait until every write submitted before this call is committed."""
        done = threading.Event()
        self._q.put(done)
        done.wait(timeout_s)

    def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """fn(connection) after the pending writes (call it in a thread: it blocks)."""
        self.sync()
        with self._lock:
            return fn(self._db)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)
        with self._lock:
            self._db.close()

    # -- reads ----------------------------------------------------------
    def dossier_days(self, unit: str, first_day: str, last_day: str) -> dict[str, tuple]:
        """day label → (received, processed, on_time_rate, source), days in [first_day, last_day]."""
        rows = self.read(lambda db: db.execute(
            "SELECT day, received, processed, on_time_rate, source FROM dossier_day "
            "WHERE unit = ? AND day >= ? AND day <= ?", (unit, first_day, last_day)).fetchall())
        return {r[0]: tuple(r[1:]) for r in rows}

    def queue_hours(self, site: str, since_s: float, until_s: float) -> dict[int, tuple[float, int, str]]:
        """hour start (epoch s) → (waiting_mean, minutes, source), hours in [since_s, until_s)."""
        rows = self.read(lambda db: db.execute(
            "SELECT hour, waiting_mean, minutes, source FROM queue_hour WHERE site = ? AND hour >= ? AND hour < ?",
            (site, int(since_s), int(until_s))).fetchall())
        return {int(r[0]): (float(r[1]), int(r[2]), r[3]) for r in rows}

    def meta(self, key: str) -> str | None:
        row = self.read(lambda db: db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone())
        return row[0] if row else None


def _upsert_dossiers(db: sqlite3.Connection, values: dict[tuple[str, str], dict[str, Any]], source: str) -> None:
    for (unit, day), cols in values.items():
        db.execute("INSERT INTO dossier_day (unit, day, source) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   (unit, day, source))
        for col, v in cols.items():  # col comes from DOSSIER_COLUMNS only
            db.execute(f"UPDATE dossier_day SET {col} = ?, source = ? WHERE unit = ? AND day = ?",
                       (v, source, unit, day))


def _camera_job(minutes: list[tuple[str, int, str, int]], touched: set[tuple[str, int]], newest_s: float):
    def job(db: sqlite3.Connection) -> None:
        db.executemany("INSERT OR REPLACE INTO camera_minute (camera, minute, site, waiting) VALUES (?, ?, ?, ?)",
                       minutes)
        for site, hour in sorted(touched):
            row = db.execute(
                "SELECT AVG(total), COUNT(*) FROM (SELECT SUM(waiting) AS total FROM camera_minute "
                "WHERE site = ? AND minute >= ? AND minute < ? GROUP BY minute)",
                (site, hour // 60, (hour + int(HOUR_S)) // 60)).fetchone()
            if row and row[1]:
                db.execute("INSERT OR REPLACE INTO queue_hour (site, hour, waiting_mean, minutes, source) "
                           "VALUES (?, ?, ?, ?, 'live')", (site, hour, round(float(row[0]), 3), int(row[1])))
        db.execute("DELETE FROM camera_minute WHERE minute < ?", (int((newest_s - MINUTES_KEPT_S) // 60),))
        db.execute("DELETE FROM queue_hour WHERE hour < ?", (int(newest_s - RETAIN_DAYS * DAY_S),))
    return job


def _prune_days(db: sqlite3.Connection, oldest_day: str) -> None:
    db.execute("DELETE FROM dossier_day WHERE day < ?", (oldest_day,))


class HistoryRecorder:
    """Turns journaled segments (their records and accepted/corrected events) into history rows.

    Pure bookkeeping on the event loop (a pass over the segment's records and camera events);
    the SQLite work is handed to the store's writer thread."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    def __call__(self, records: Iterable[Any], events: Sequence[Any]) -> None:
        dossiers: dict[tuple[str, str], dict[str, Any]] = {}
        newest_day: str | None = None
        for r in records:
            if type(r) is Indicator and r.window == "day" and r.period and r.name in DOSSIER_COLUMNS:
                dossiers.setdefault((r.entity, r.period), {})[DOSSIER_COLUMNS[r.name]] = r.value
                if newest_day is None or r.period > newest_day:
                    newest_day = r.period
        minutes: list[tuple[str, int, str, int]] = []
        touched: set[tuple[str, int]] = set()
        newest = self.store.newest_t
        for ev in events:
            if type(ev) is CameraEvent:
                minute = int(ev.t // 60)
                minutes.append((ev.camera, minute, ev.site, int(ev.waiting)))
                touched.add((ev.site, int(ev.t // HOUR_S * HOUR_S)))
                if ev.t > newest:
                    newest = ev.t
        if dossiers:
            self.store.submit(lambda db: _upsert_dossiers(db, dossiers, "live"))
            if newest_day is not None:
                from datetime import date, timedelta

                oldest = (date.fromisoformat(newest_day) - timedelta(days=RETAIN_DAYS)).isoformat()
                self.store.submit(lambda db: _prune_days(db, oldest))
        if minutes:
            self.store.newest_t = newest
            self.store.submit(_camera_job(minutes, touched, newest))


def write_demo_rows(store: HistoryStore, key: str, dossier_rows: list[list], queue_rows: list[list]) -> None:
    """The demo's backfill (ioc.demo_history): rows for days before the live simulation, marked 'demo'.

    Never overwrites a live row; `key` (seed and start) is remembered so a restart does not redo it."""
    def job(db: sqlite3.Connection) -> None:
        db.executemany("INSERT OR IGNORE INTO dossier_day (unit, day, received, processed, on_time_rate, source) "
                       "VALUES (?, ?, ?, ?, ?, 'demo')", dossier_rows)
        db.executemany("INSERT OR IGNORE INTO queue_hour (site, hour, waiting_mean, minutes, source) "
                       "VALUES (?, ?, ?, ?, 'demo')", queue_rows)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('demo_backfill', ?)", (key,))
    store.submit(job)
