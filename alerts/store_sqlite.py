"""SQLite alert store for the embedded mode (one file in the data dir).

WAL journal + synchronous=FULL: a committed batch survives SIGKILL (and power
loss).  One connection guarded by a lock, usable from the pipeline thread and
API threads.  See alerts/store.py for the interface and guarantees.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgspec

from ioc.records import Alert
from ioc.timeutil import parse_ts

from alerts.lifecycle import Commit, alert_from_builtins
from alerts.store import OUTBOX_DELIVERED, OUTBOX_FAILED, OUTBOX_PENDING

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, active INTEGER NOT NULL, ts_epoch REAL NOT NULL, record TEXT NOT NULL, meta TEXT);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts(active, ts_epoch);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, transition TEXT NOT NULL, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_alert ON audit(alert_id, seq);
-- a journal replay after a crash re-derives the same transitions: record each once
CREATE UNIQUE INDEX IF NOT EXISTS audit_once ON audit(alert_id, transition, entry);
CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, alert_id TEXT NOT NULL,
    body TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,
    delivered_at REAL, last_error TEXT);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_at, seq);
CREATE TABLE IF NOT EXISTS engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
"""

_enc = msgspec.json.Encoder()


def _dumps(x: Any) -> str:
    return _enc.encode(x).decode()


class SqliteAlertStore:
    FILENAME = "alerts.sqlite3"

    def __init__(self, path: str | Path, *, recent_resolved: int = 500) -> None:
        path = Path(path)
        if path.is_dir() or path.suffix == "":
            path.mkdir(parents=True, exist_ok=True)
            path = path / self.FILENAME
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.recent_resolved = recent_resolved
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # ---------------------------------------------------------------- engine side
    def load(self) -> dict[str, Any]:
        with self._lock:
            db = self._db
            active = [(alert_from_builtins(json.loads(r)), json.loads(m) if m else {})
                      for r, m in db.execute("SELECT record, meta FROM alerts WHERE active = 1 ORDER BY ts_epoch, id")]
            resolved = [alert_from_builtins(json.loads(r)) for (r,) in db.execute(
                "SELECT record FROM alerts WHERE active = 0 ORDER BY ts_epoch DESC, id DESC LIMIT ?",
                (self.recent_resolved,))]
            resolved.reverse()
            silences = [json.loads(b) for (b,) in db.execute("SELECT body FROM silences ORDER BY id")]
            row = db.execute("SELECT body FROM engine_state WHERE id = 1").fetchone()
            return {"active": active, "resolved": resolved, "silences": silences,
                    "state": json.loads(row[0]) if row else None}

    def commit(self, c: Commit) -> None:
        if not c:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for e in c.audit:
                    db.execute("INSERT OR IGNORE INTO audit (alert_id, transition, entry) VALUES (?, ?, ?)",
                               (e["id"], e["transition"], _dumps(e)))
                for aid, (record, active, meta) in c.upserts.items():
                    db.execute("INSERT INTO alerts (id, active, ts_epoch, record, meta) VALUES (?, ?, ?, ?, ?) "
                               "ON CONFLICT(id) DO UPDATE SET active = excluded.active, ts_epoch = excluded.ts_epoch, "
                               "record = excluded.record, meta = excluded.meta",
                               (aid, 1 if active else 0, parse_ts(record["ts"]), _dumps(record), _dumps(meta)))
                for s in c.silences_put:
                    db.execute("INSERT OR REPLACE INTO silences (id, body) VALUES (?, ?)", (s["id"], _dumps(s)))
                for sid in c.silences_deleted:
                    db.execute("DELETE FROM silences WHERE id = ?", (sid,))
                for n in c.outbox:  # a key already enqueued (replayed batch) is ignored: never sent twice
                    db.execute("INSERT OR IGNORE INTO outbox (key, kind, alert_id, body, status) VALUES (?, ?, ?, ?, ?)",
                               (n["key"], n["kind"], n["alert_id"], _dumps(n), OUTBOX_PENDING))
                if c.engine_state is not None:
                    db.execute("INSERT OR REPLACE INTO engine_state (id, body) VALUES (1, ?)", (_dumps(c.engine_state),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # ---------------------------------------------------------------- queries
    def get_alert(self, alert_id: str) -> Alert | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return alert_from_builtins(json.loads(row[0])) if row else None

    def list_alerts(self, state: str | None = None, limit: int = 500) -> list[Alert]:
        q, args = "SELECT record FROM alerts", []
        if state == "resolved":
            q += " WHERE active = 0"
        elif state in ("firing", "active"):
            q += " WHERE active = 1"
        q += " ORDER BY ts_epoch DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(q, (*args, limit)).fetchall()
        return [alert_from_builtins(json.loads(r)) for (r,) in rows]

    def history(self, alert_id: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT seq, entry FROM audit WHERE alert_id = ? ORDER BY seq", (alert_id,)).fetchall()
        return [{"seq": seq, **json.loads(e)} for seq, e in rows]

    def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT seq, entry FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after_seq, limit)).fetchall()
        return [{"seq": seq, **json.loads(e)} for seq, e in rows]

    # ---------------------------------------------------------------- outbox
    def outbox_pending(self, now: float, limit: int = 100) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body, attempts FROM outbox WHERE status = ? AND next_at <= ? ORDER BY seq LIMIT ?",
                (OUTBOX_PENDING, now, limit)).fetchall()
        return [{**json.loads(b), "attempts": a} for b, a in rows]

    def outbox_delivered(self, key: str, at: float) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET status = ?, delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                             "WHERE key = ?", (OUTBOX_DELIVERED, at, key))

    def outbox_retry(self, key: str, attempts: int, next_at: float, error: str) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE key = ? AND status = ?",
                             (attempts, next_at, error[:500], key, OUTBOX_PENDING))

    def outbox_failed(self, key: str, attempts: int, error: str) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET status = ?, attempts = ?, last_error = ? WHERE key = ?",
                             (OUTBOX_FAILED, attempts, error[:500], key))

    def outbox_status(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT status, attempts, next_at, delivered_at, last_error FROM outbox WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        return dict(zip(("status", "attempts", "next_at", "delivered_at", "last_error"), row))

    def outbox_since(self, after_seq: int, limit: int = 500) -> list[tuple[int, dict]]:
        """Outbox rows after `after_seq`, oldest first, whatever their webhook status (alerts/notify reads
        them with its own cursor)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after_seq, limit)).fetchall()
        return [(seq, json.loads(b)) for seq, b in rows]

    def outbox_all(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT key, status, attempts FROM outbox ORDER BY seq").fetchall()
        return [dict(zip(("key", "status", "attempts"), r)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
