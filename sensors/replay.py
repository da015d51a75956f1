"""JSONL replay: recorded event files → batches of (events, rejections).

Lines are decoded with ioc.events.parse_lines; a bad line becomes a
Rejection whose `position` is its 1-based line number in its file (blank
lines are skipped but counted).  Files ending in `.gz` are read through
gzip.  Nothing here sleeps or reads the clock: replay runs as fast as the
consumer takes batches, in file order (event-time handling is the core's).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from ioc.errors import Rejection
from ioc.events import Event, parse_lines

from .sink import Sink


@dataclass
class ReplayBatch:
    source: str  # the file path, for dead letters (`Rejection.to_dead_letter(source)`)
    first_line: int  # 1-based line number of the batch's first line
    lines: int = 0  # lines read in this batch (blank ones included)
    events: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # 1-based line number of each event


@dataclass
class ReplayStats:
    files: int = 0
    lines: int = 0
    events: int = 0
    rejections: int = 0


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_batches(paths: Iterable[str | Path], batch_size: int = 4096) -> Iterator[ReplayBatch]:
    """Batches of at most `batch_size` lines per file, files in the given order."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for p in paths:
        path = Path(p)
        with _open(path) as f:
            line_no = 1
            while True:
                chunk = list(itertools.islice(f, batch_size))
                if not chunk:
                    break
                events, rejections = parse_lines(chunk, start=line_no)
                refused = {r.position for r in rejections}
                positions = [line_no + i for i, raw in enumerate(chunk) if raw.strip() and line_no + i not in refused]
                yield ReplayBatch(str(path), line_no, len(chunk), events, rejections, positions)
                line_no += len(chunk)


def read_jsonl_batches(
    paths: Iterable[str | Path], batch_size: int = 4096
) -> Iterator[tuple[list[Event], list[Rejection]]]:
    """(events, rejections) per batch; rejection positions are 1-based line numbers."""
    for b in iter_batches(paths, batch_size):
        yield b.events, b.rejections


async def replay_to_sink(paths: Iterable[str | Path], sink: Sink, batch_size: int = 4096) -> ReplayStats:
    """Feed files to `sink` batch by batch, yielding to the event loop between batches."""
    stats = ReplayStats()
    seen: set[str] = set()
    for b in iter_batches(paths, batch_size):
        if b.source not in seen:
            seen.add(b.source)
            stats.files += 1
        stats.lines += b.lines
        stats.events += len(b.events)
        stats.rejections += len(b.rejections)
        if b.events or b.rejections:
            sink(b.events, b.rejections)
        await asyncio.sleep(0)
    return stats
