"""Durable notification state (adapter): `DATA_DIR/notify.sqlite3`.

- `cursor`: the last alert-outbox row turned into groups (the outbox of
  alerts/store_sqlite.py stays the input: one row per alert transition);
- `groups`: each notification group with its timers (wall-clock epoch s);
- `deliveries`: one row per delivery key `recipient|channel|incident|transition`
  (PRIMARY KEY: enqueueing a key twice is a no-op) with its status
  (`pending`, `retrying`, `sent`, `failed`), attempts, last error and times;
- `delivery_alerts`: which alerts each delivery speaks of, for the alert's history.

`advance()` writes the cursor, the changed groups and the new deliveries in
one transaction (WAL, synchronous=FULL), so a SIGKILL at any point leaves
either the whole step or none of it: a replayed outbox row folds into the same
group state and derives the same keys, which are ignored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from alerts.notify.grouping import Group

PENDING, RETRYING, SENT, FAILED = "pending", "retrying", "sent", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1), outbox_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (route TEXT NOT NULL, gkey TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (route, gkey));
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, recipient TEXT NOT NULL, channel TEXT NOT NULL,
    address TEXT NOT NULL, incident TEXT NOT NULL, transition TEXT NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, text TEXT NOT NULL, short TEXT NOT NULL, payload TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    created_at REAL NOT NULL, sent_at REAL, last_error TEXT, provider_id TEXT);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
CREATE TABLE IF NOT EXISTS delivery_alerts (alert_id TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (alert_id, key));
"""


@dataclass(frozen=True)
class NewDelivery:
    key: str
    recipient: str
    channel: str
    address: str
    incident: str
    transition: str
    kind: str
    subject: str
    text: str
    short: str
    payload: dict
    alert_ids: tuple[str, ...]
    next_at: float


class DeliveryStore:
    FILENAME = "notify.sqlite3"

    def __init__(self, data_dir: str | Path) -> None:
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / self.FILENAME
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def cursor(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT outbox_seq FROM cursor WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def load_groups(self) -> dict[tuple[str, str], Group]:
        with self._lock:
            rows = self._db.execute("SELECT route, gkey, body FROM groups").fetchall()
        return {(r, k): Group.from_dict(json.loads(b)) for r, k, b in rows}

    def advance(self, cursor: int | None, groups: list[Group], new: list[NewDelivery], now: float) -> int:
        """One transaction: cursor, changed groups (done ones deleted), deliveries; returns how many were new."""
        added = 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if cursor is not None:
                    db.execute("INSERT OR REPLACE INTO cursor (id, outbox_seq) VALUES (1, ?)", (cursor,))
                for g in groups:
                    if g.done and g.escalate_at is None:
                        db.execute("DELETE FROM groups WHERE route = ? AND gkey = ?", (g.route, g.key))
                    else:
                        db.execute("INSERT OR REPLACE INTO groups (route, gkey, body) VALUES (?, ?, ?)",
                                   (g.route, g.key, json.dumps(g.to_dict(), ensure_ascii=False)))
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM deliveries").fetchone()[0]
                for d in new:
                    seq += 1
                    cur = db.execute(
                        "INSERT OR IGNORE INTO deliveries (key, seq, recipient, channel, address, incident, transition,"
                        " kind, subject, text, short, payload, status, next_at, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (d.key, seq, d.recipient, d.channel, d.address, d.incident, d.transition, d.kind, d.subject,
                         d.text, d.short, json.dumps(d.payload, ensure_ascii=False), PENDING, d.next_at, now))
                    if cur.rowcount:
                        added += 1
                        for aid in d.alert_ids:
                            db.execute("INSERT OR IGNORE INTO delivery_alerts (alert_id, key) VALUES (?, ?)",
                                       (aid, d.key))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return added

    def due(self, now: float, limit: int = 50) -> list[dict]:
        cols = ("key", "recipient", "channel", "address", "subject", "text", "short", "payload", "attempts", "kind")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(cols)} FROM deliveries WHERE status IN (?, ?) AND next_at <= ?"
                " ORDER BY next_at, seq LIMIT ?", (PENDING, RETRYING, now, limit)).fetchall()
        out = [dict(zip(cols, r)) for r in rows]
        for d in out:
            d["payload"] = json.loads(d["payload"])
        return out

    def next_due_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_at) FROM deliveries WHERE status IN (?, ?)",
                                   (PENDING, RETRYING)).fetchone()
        return row[0] if row and row[0] is not None else None

    def mark_sent(self, key: str, at: float, provider_id: str = "") -> None:
        with self._lock:
            self._db.execute("UPDATE deliveries SET status = ?, sent_at = ?, attempts = attempts + 1, last_error = NULL,"
                             " provider_id = ? WHERE key = ?", (SENT, at, provider_id[:200], key))

    def mark_retry(self, key: str, next_at: float, error: str) -> None:
        with self._lock:
            self._db.execute("UPDATE deliveries SET status = ?, next_at = ?, attempts = attempts + 1, last_error = ?"
                             " WHERE key = ?", (RETRYING, next_at, error[:500], key))

    def mark_failed(self, key: str, error: str) -> None:
        with self._lock:
            self._db.execute("UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ? WHERE key = ?",
                             (FAILED, error[:500], key))

    def defer(self, key: str, next_at: float) -> None:
        """Hold a delivery without counting an attempt (a channel's rate limit, quiet hours)."""
        with self._lock:
            self._db.execute("UPDATE deliveries SET next_at = ? WHERE key = ?", (next_at, key))

    def for_alert(self, alert_id: str) -> list[dict]:
        """The deliveries that spoke of an alert, oldest first (for its history)."""
        cols = ("key", "recipient", "channel", "incident", "transition", "kind", "status", "attempts", "next_at",
                "created_at", "sent_at", "last_error")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join('d.' + c for c in cols)} FROM delivery_alerts a JOIN deliveries d ON d.key = a.key"
                " WHERE a.alert_id = ? ORDER BY d.seq", (alert_id,)).fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def all(self) -> list[dict]:
        cols = ("key", "recipient", "channel", "address", "kind", "status", "attempts", "last_error", "text")
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(cols)} FROM deliveries ORDER BY seq").fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute("SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status")
            return {(c, s): n for c, s, n in rows.fetchall()}

    def prune(self, before: float) -> int:
        """Forget sent and failed deliveries created before `before` (epoch s); pending ones stay."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                keys = [k for (k,) in db.execute("SELECT key FROM deliveries WHERE status IN (?, ?) AND created_at < ?",
                                                 (SENT, FAILED, before))]
                db.executemany("DELETE FROM delivery_alerts WHERE key = ?", [(k,) for k in keys])
                db.executemany("DELETE FROM deliveries WHERE key = ?", [(k,) for k in keys])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return len(keys)

    def close(self) -> None:
        with self._lock:
            self._db.close()
