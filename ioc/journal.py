"""Write-ahead journal of accepted input and atomic checkpoints.

Every batch is appended (and flushed) before it is processed, and a
checkpoint records the processors' state together with the journal position
it covers.  A restart loads the checkpoint and re-processes the journal tail,
so a crash loses no accepted event and counts none twice.  Segments older
than the last checkpoint are deleted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import msgspec

from ioc.events import Event, encode_event, parse_lines

_SEGMENT_FMT = "journal-{:08d}.jsonl"


class Journal:
    def __init__(self, directory: Path, fsync: bool = False) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        segments = self.segments()
        self.segment = segments[-1] if segments else 0
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

    def append(self, events: list[Event], meta: dict | None = None) -> None:
        """Append a batch; `meta` (e.g. a simulator's progress) is written as a '#' line before it."""
        if not events and not meta:
            return
        head = b"#" + msgspec.json.encode(meta) + b"\n" if meta else b""
        self._fh.write(head + b"".join(encode_event(ev) + b"\n" for ev in events))
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def position(self) -> tuple[int, int]:
        return self.segment, self._fh.tell()

    def rotate(self) -> tuple[int, int]:
        """Start a new segment; returns its (segment, 0) position."""
        self._fh.close()
        self.segment += 1
        self._fh = open(self._path(self.segment), "ab")
        return self.segment, 0

    def prune_before(self, segment: int) -> None:
        for s in self.segments():
            if s < segment:
                self._path(s).unlink(missing_ok=True)

    def read_from(
        self, segment: int, offset: int, batch_size: int = 4096
    ) -> Iterator[tuple[list[Event], dict | None]]:
        """(events, meta) journaled at or after (segment, offset), in batches."""
        for s in self.segments():
            if s < segment:
                continue
            with open(self._path(s), "rb") as fh:
                if s == segment:
                    fh.seek(offset)
                lines: list[bytes] = []
                meta: dict | None = None
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # torn write at a crash: the batch was never processed
                    if line.startswith(b"#"):
                        if lines or meta:
                            yield parse_lines(lines)[0], meta
                            lines = []
                        meta = msgspec.json.decode(line[1:])
                        continue
                    lines.append(line)
                    if len(lines) >= batch_size:
                        yield parse_lines(lines)[0], meta
                        lines, meta = [], None
                if lines or meta:
                    yield parse_lines(lines)[0], meta

    def close(self) -> None:
        self._fh.close()


class Checkpoint(msgspec.Struct):
    version: int
    journal_segment: int
    journal_offset: int
    pipeline: dict[str, Any]
    extra: dict[str, Any] = {}


def write_checkpoint(path: Path, cp: Checkpoint | bytes) -> None:
    """Atomic: write a temporary file, fsync it, rename it over the old checkpoint."""
    data = cp if isinstance(cp, bytes) else msgspec.msgpack.encode(cp)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> Checkpoint | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.msgpack.decode(data, type=Checkpoint)


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
