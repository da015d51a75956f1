"""Principals in DATA_DIR/principals.sqlite3 (the embedded mode).

WAL with synchronous=FULL: an add/revoke/rotate that returned survives a
SIGKILL (and power loss); writes are rare, so the cost does not matter.
`ioc users` in another process writes the same file while `ioc run` serves
from it (busy timeout), and bumps `revision`, which the server polls.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from ioc.auth.principal import Principal
from ioc.auth.store import DuplicatePrincipal, PrincipalRecord, SessionRecord, UnknownPrincipal

FILE_NAME = "principals.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, feeds TEXT, entities TEXT,
  generation INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_by_name ON tokens(name);
CREATE TABLE IF NOT EXISTS sessions (hash TEXT PRIMARY KEY, name TEXT NOT NULL, generation INTEGER NOT NULL,
  expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('revision', 0);
"""


def _scope(value: frozenset[str] | None) -> str | None:
    return None if value is None else json.dumps(sorted(value))


def _unscope(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(json.loads(text))


class SqlitePrincipalStore:
    def __init__(self, data_dir: Path | str) -> None:
        d = Path(data_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / FILE_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def _write(self, fn) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
            self._db.execute("COMMIT")

    def add(self, principal: Principal, token_hash: str, at: float) -> None:
        def run(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT revoked_at, generation FROM principals WHERE name = ?", (principal.name,)).fetchone()
            if row is not None and row[0] is None:
                raise DuplicatePrincipal(f"a principal named {principal.name!r} already exists")
            generation = 0 if row is None else row[1] + 1
            db.execute("DELETE FROM tokens WHERE name = ?", (principal.name,))
            db.execute("INSERT OR REPLACE INTO principals(name, role, feeds, entities, generation, created_at, revoked_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                       (principal.name, principal.role, _scope(principal.feeds), _scope(principal.entities), generation, at))
            db.execute("INSERT INTO tokens(hash, name, created_at) VALUES (?, ?, ?)", (token_hash, principal.name, at))

        self._write(run)

    def _active(self, db: sqlite3.Connection, name: str) -> None:
        row = db.execute("SELECT revoked_at FROM principals WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] is not None:
            raise UnknownPrincipal(f"no active principal named {name!r}")

    def revoke(self, name: str, at: float) -> None:
        def run(db: sqlite3.Connection) -> None:
            self._active(db, name)
            db.execute("UPDATE principals SET revoked_at = ?, generation = generation + 1 WHERE name = ?", (at, name))
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))

        self._write(run)

    def rotate(self, name: str, token_hash: str, at: float) -> None:
        def run(db: sqlite3.Connection) -> None:
            self._active(db, name)
            db.execute("UPDATE principals SET generation = generation + 1 WHERE name = ?", (name,))
            db.execute("DELETE FROM tokens WHERE name = ?", (name,))
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))
            db.execute("INSERT INTO tokens(hash, name, created_at) VALUES (?, ?, ?)", (token_hash, name, at))

        self._write(run)

    def records(self) -> list[PrincipalRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, role, feeds, entities, generation, created_at, revoked_at FROM principals ORDER BY name"
            ).fetchall()
            hashes: dict[str, list[str]] = {}
            for h, name in self._db.execute("SELECT hash, name FROM tokens"):
                hashes.setdefault(name, []).append(h)
        return [PrincipalRecord(Principal(n, role, _unscope(f), _unscope(e)), gen, created, revoked,
                                tuple(hashes.get(n, ())))
                for n, role, f, e, gen, created, revoked in rows]

    def revision(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    def add_session(self, session_hash: str, session: SessionRecord, now: float) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            self._db.execute("INSERT OR REPLACE INTO sessions(hash, name, generation, expires_at) VALUES (?, ?, ?, ?)",
                             (session_hash, session.name, session.generation, session.expires_at))

    def end_session(self, session_hash: str) -> None:
        """Sign-out: the session stops working; the revision moves so caches and open sockets re-check."""
        self._write(lambda db: db.execute("DELETE FROM sessions WHERE hash = ?", (session_hash,)))

    def session(self, session_hash: str) -> SessionRecord | None:
        with self._lock:
            row = self._db.execute("SELECT name, generation, expires_at FROM sessions WHERE hash = ?",
                                   (session_hash,)).fetchone()
        return None if row is None else SessionRecord(row[0], int(row[1]), float(row[2]))

    def close(self) -> None:
        with self._lock:
            self._db.close()
