"""Journal of validated, accepted input with its batch boundaries; atomic
checkpoints; the quarantine; the data-dir lock.

What is journaled (README, "Guarantees"):

- one **batch entry** per processed batch (one segment of the pipeline):
  a header line ``#{"batch": N, "now": T, "sim": {...}}`` followed by the N
  events the pipeline accepted or corrected, one JSON line each.  Refused
  input (bad JSON, out of range, future-dated, too late, duplicates) is never
  journaled.  ``now`` is the live clock the batch was admitted against, so a
  replay admits exactly the same events.
- one **op entry** per operator action: ``#{"op": {...}}``, in order with
  the batches.

The runtime appends an entry *after* processing the batch and flushes it
(fsync when configured) *before* anything leaves the process (hub, alert
store and notifier outbox, the HTTP answer).  A checkpoint records the state
with the journal position it covers; a restart loads it and re-processes the
tail entry by entry, with the same boundaries as the live run.

Why the boundaries are journaled rather than made irrelevant: the pipeline
already cuts every batch at each 5-minute step of the watermark, but the
alert engine stamps a transition with the watermark at the end of the batch
(segment) that caused it, and an alert's id is derived from that `started`
time.  Re-batching the tail (as a fixed-size reader would) moves batch ends,
so alerts would come back with another `started`, another id, no
acknowledgement, and another notification key.  Replaying the recorded
boundaries reproduces every batch-dependent output by construction, at the
cost of one header line per batch.

Framing: the header's count makes each entry self-delimiting, so a write
torn by a crash (fewer than N complete lines at the end of the last segment)
is recognised and cut off when the journal is opened; that batch was never
answered.  The segments of one submission are one group (every entry but
the last carries ``"more": true``): a group torn by a crash is cut off
whole, so a submission is durable all or nothing.  Older journals (bare event lines after optional ``#{"sim":..}``
lines) are still read, one group per meta line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import msgspec

from ioc.events import Event, encode_event, parse_lines

log = logging.getLogger("ioc.journal")

_SEGMENT_FMT = "journal-{:08d}.jsonl"
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


@dataclass
class _Frame:
    kind: str  # batch | op | legacy | bad
    start: int  # byte offset of the entry in its segment
    end: int
    head: dict | None = None
    lines: list[bytes] = field(default_factory=list)
    problem: str = ""  # why the entry is damaged (bad header, short entry)


def _frames(data: bytes, pos: int) -> Iterator[_Frame]:
    """Complete entries of one segment from byte `pos`; stops silently at a torn tail."""
    n = len(data)
    find = data.find
    while pos < n:
        nl = find(b"\n", pos)
        if nl < 0:
            return  # torn last line
        start, line, pos = pos, data[pos:nl], nl + 1
        head: Any = None
        if line.startswith(b"#"):
            try:
                head = _dec.decode(line[1:])
            except (msgspec.DecodeError, RecursionError) as exc:
                yield _Frame("bad", start, pos, None, [line], f"undecodable entry header: {exc}")
                continue
            if not isinstance(head, dict):
                yield _Frame("bad", start, pos, None, [line], "entry header is not an object")
                continue
        if isinstance(head, dict) and "batch" in head:
            count = head.get("batch")
            if type(count) is not int or count < 0:
                yield _Frame("bad", start, pos, None, [line], f"bad entry count {count!r}")
                continue
            lines: list[bytes] = []
            problem = ""
            while len(lines) < count:
                nl = find(b"\n", pos)
                if nl < 0:
                    return  # torn entry: never answered, never applied
                if data.startswith(b"#", pos):  # the next entry starts early: this one is damaged
                    problem = f"short entry: {len(lines)} of {count} lines"
                    break
                lines.append(data[pos:nl])
                pos = nl + 1
            yield _Frame("batch", start, pos, head, lines, problem)
        elif isinstance(head, dict) and "op" in head:
            yield _Frame("op", start, pos, head)
        else:
            # legacy: an optional meta line, then bare event lines up to the next '#' line
            lines = [] if head is not None else [line]
            end = pos
            while pos < n and not data.startswith(b"#", pos):
                nl = find(b"\n", pos)
                if nl < 0:
                    break  # torn last line: the group ends before it
                lines.append(data[pos:nl])
                pos = end = nl + 1
            yield _Frame("legacy", start, end, head, lines)


def _groups(frames: Iterator[_Frame]) -> Iterator[list[_Frame]]:
    """Frames grouped by submission; an unfinished group at the end (torn) is dropped."""
    group: list[_Frame] = []
    for fr in frames:
        group.append(fr)
        if not (fr.kind == "batch" and fr.head and fr.head.get("more") is True):
            yield group
            group = []


@dataclass
class JournalEntry:
    """One journaled batch or operator action, as it was written."""

    segment: int
    offset: int
    kind: str  # batch | op | legacy | bad
    events: list[Event] = field(default_factory=list)
    now: float | None = None
    meta: dict | None = None  # {"sim": ...} and/or {"op": ...}
    damaged: list[tuple[bytes, str]] = field(default_factory=list)  # (raw line, reason) not applied

    @property
    def position(self) -> tuple[int, int]:
        return self.segment, self.offset


class Journal:
    def __init__(self, directory: Path, fsync: bool = False) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        segments = self.segments()
        self.segment = segments[-1] if segments else 0
        self.torn_bytes = self._repair_tail()
        self._fh = open(self._path(self.segment), "ab")

    def _path(self, segment: int) -> Path:
        return self.dir / _SEGMENT_FMT.format(segment)

    def segments(self) -> list[int]:
        out = []
        for p in self.dir.glob("journal-*.jsonl"):
            try:
                out.append(int(p.stem.split("-")[1]))
            except ValueError:
                continue
        return sorted(out)

    def _repair_tail(self) -> int:
        """Cut a torn last entry (or group) off the last segment, so new entries never append to half a line."""
        path = self._path(self.segment)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0
        good = 0
        for group in _groups(_frames(data, 0)):
            good = group[-1].end
        if good < len(data):
            log.warning("%s: cutting a torn entry of %d bytes at offset %d (written during a crash, never "
                        "answered)", path, len(data) - good, good)
            with open(path, "r+b") as fh:
                fh.truncate(good)
        return len(data) - good

    # -- writing -------------------------------------------------------
    def append_batch(self, events: list[Event], now: float | None = None, sim: dict | None = None,
                     more: bool = False) -> None:
        """One processed batch (its accepted events) as one entry; call flush() before acting on it.

        more=True: another entry of the same submission follows (the group is durable as a whole).
        """
        head: dict[str, Any] = {"batch": len(events), "now": now}
        if sim is not None:
            head["sim"] = sim
        if more:
            head["more"] = True
        self._fh.write(b"#" + _enc.encode(head) + b"\n" + b"".join(encode_event(ev) + b"\n" for ev in events))

    def append_op(self, op: dict) -> None:
        """An operator action, durable when this returns."""
        self._fh.write(b"#" + _enc.encode({"op": op}) + b"\n")
        self.flush()

    def append(self, events: list[Event], meta: dict | None = None, now: float | None = None) -> None:
        """append_batch / append_op + flush (meta {"op": ...} is an op, {"sim": ...} travels with the batch)."""
        if meta and "op" in meta and not events:
            self.append_op(meta["op"])
            return
        if not events and not meta:
            return
        self.append_batch(events, now, (meta or {}).get("sim"))
        self.flush()

    def flush(self) -> None:
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def truncate_to(self, segment: int, offset: int) -> None:
        """Drop what was written after (segment, offset) of the current segment (a failed write)."""
        if segment != self.segment:
            return
        with contextlib.suppress(Exception):
            self._fh.close()
        with open(self._path(segment), "r+b") as fh:
            fh.truncate(offset)
        self._fh = open(self._path(segment), "ab")

    def position(self) -> tuple[int, int]:
        self._fh.flush()
        return self.segment, self._fh.tell()

    def rotate(self) -> tuple[int, int]:
        """Start a new segment; returns its (segment, 0) position."""
        self.flush()
        self._fh.close()
        self.segment += 1
        self._fh = open(self._path(self.segment), "ab")
        return self.segment, 0

    def prune_before(self, segment: int) -> None:
        for s in self.segments():
            if s < segment:
                self._path(s).unlink(missing_ok=True)

    # -- reading -------------------------------------------------------
    def read_from(self, segment: int, offset: int) -> Iterator[JournalEntry]:
        """Every entry journaled at or after (segment, offset), exactly as written (no re-batching)."""
        self._fh.flush()
        for s in self.segments():
            if s < segment:
                continue
            try:
                data = self._path(s).read_bytes()
            except FileNotFoundError:
                continue
            for group in _groups(_frames(data, offset if s == segment else 0)):
                for fr in group:
                    yield self._entry(s, fr)

    @staticmethod
    def _entry(segment: int, fr: _Frame) -> JournalEntry:
        e = JournalEntry(segment, fr.start, fr.kind)
        if fr.kind == "bad":
            e.damaged = [(fr.lines[0], fr.problem)]
            return e
        head = fr.head or {}
        if fr.kind == "op":
            e.meta = {"op": head["op"]}
            return e
        if fr.kind == "batch":
            now = head.get("now")
            e.now = float(now) if isinstance(now, (int, float)) and not isinstance(now, bool) else None
        if head.get("sim") is not None:
            e.meta = {"sim": head["sim"]}
        try:
            events, rejections = parse_lines(fr.lines)
        except RecursionError:  # pathological nesting: fall back to one line at a time
            events, rejections = [], []
            for line in fr.lines:
                try:
                    ev, rej = parse_lines([line])
                except RecursionError:
                    e.damaged.append((line, "nesting too deep"))
                    continue
                events += ev
                rejections += rej
        e.events = events
        e.damaged += [(r.raw, f"{r.reason}: {r.detail}") for r in rejections]
        if fr.problem:
            e.damaged.append((b"", fr.problem))
        return e

    def close(self) -> None:
        self._fh.close()


# ---------------------------------------------------------------------- checkpoints
class Checkpoint(msgspec.Struct):
    version: int
    journal_segment: int
    journal_offset: int
    pipeline: dict[str, Any]
    extra: dict[str, Any] = {}


def previous_path(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def write_checkpoint(path: Path, cp: Checkpoint | bytes) -> None:
    """Atomic, two generations: the current checkpoint becomes `.prev`, then the new one is renamed in.

    A crash between the two renames leaves `.prev`, which the reader falls back to; so does a
    current checkpoint that cannot be decoded.
    """
    data = cp if isinstance(cp, bytes) else msgspec.msgpack.encode(cp)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        os.replace(path, previous_path(path))
    os.replace(tmp, path)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint at `path`, None if there is none; raises if it cannot be decoded."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.msgpack.decode(data, type=Checkpoint)


# ---------------------------------------------------------------------- quarantine
class Quarantine:
    """What a restore could not decode or apply: DATA_DIR/quarantine.jsonl (+ moved files).

    One JSON line per item: when, what (journal_line, journal_entry, journal_op, checkpoint),
    why, where (segment/offset or file) and the raw text, so an operator can inspect it and,
    if it was good data, re-ingest it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "quarantine.jsonl"
        self.dir = Path(data_dir) / "quarantine"

    def put(self, what: str, reason: str, raw: bytes | str = b"", **where: Any) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        entry = {"at": time.time(), "what": what, "reason": reason[:2000], **where, "raw": text[:100_000]}
        try:
            with open(self.path, "ab") as fh:
                fh.write(_enc.encode(entry) + b"\n")
        except OSError:
            log.exception("cannot write %s", self.path)

    def move_file(self, path: Path, what: str, reason: str) -> Path | None:
        """Move a bad file (a checkpoint) aside so the next start does not read it again."""
        self.dir.mkdir(parents=True, exist_ok=True)
        dest = self.dir / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
        try:
            os.replace(path, dest)
        except OSError:
            dest = None
        self.put(what, reason, file=str(path), moved_to=str(dest) if dest else None)
        return dest


# ---------------------------------------------------------------------- data-dir lock
class DataDirLocked(RuntimeError):
    def __init__(self, data_dir: Path, pid: str) -> None:
        self.data_dir, self.pid = data_dir, pid
        super().__init__(f"data dir {data_dir} is in use by another ioc process (pid {pid or 'unknown'}); "
                         "stop it or choose another --data-dir")


class DataDirLock:
    """An exclusive OS lock (flock) on DATA_DIR/lock, held for the process lifetime.

    The kernel releases it when the process dies, however it dies (SIGKILL included), so a
    stale lock file never blocks a restart; the file holds the holder's pid for the message.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "lock"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                pid = os.pread(fd, 64, 0).decode(errors="replace").strip()
            finally:
                os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataDirLocked(self.data_dir.resolve(), pid) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


# ---------------------------------------------------------------------- dead letters
class DeadLetters:
    """Rejected input as JSONL in the data dir: reason, detail, raw line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")

    def write(self, rejections, source: str) -> None:
        if not rejections:
            return
        enc = msgspec.json.encode
        self._fh.write(b"".join(enc(r.to_dead_letter(source)) + b"\n" for r in rejections))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
