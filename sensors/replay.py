"""JSONL replay: recorded event files → batches of (events, rejections).

Lines are decoded with ioc.events.parse_lines; a bad line becomes a
Rejection whose `position` is its 1-based line number in its file (blank
lines are skipped but counted).  Files ending in `.gz` are read through
gzip.  Nothing here sleeps or reads the clock: replay runs as fast as the
consumer takes batches, in file order (event-time handling is the core's).

The reader never raises on bad input, whatever the bytes:

- a line longer than ``MAX_LINE_BYTES`` (1 MiB) is refused as ``too_large``
  without being held in memory (the file is read in blocks; the rest of an
  oversized line is skipped);
- a line nested deeper than ``MAX_DEPTH`` (32 levels of objects/arrays) is
  refused as ``too_deep`` before it is decoded;
- any exception while decoding a line becomes a rejection of that line;
- an event whose time is outside ``T_MIN``..``T_MAX`` (years 2000..2099) is
  refused as ``bad_timestamp``, an integer count beyond ``MAX_COUNT`` as
  ``invalid_value`` (the stricter per-field ranges are ioc.events');
- a file that cannot be opened, or whose reading fails part way (a
  truncated or corrupt .gz, an I/O error), ends that file with a batch whose
  `error` says what happened and after which line (`ReplayBatch.error`).
  That batch also carries one Rejection with reason ``unreadable`` (position:
  the first line not read, 0 if the file could not be opened), so a consumer
  that only looks at rejections still reports it.  A truncated gzip's
  trailing partial line is dropped, not decoded.  The next file is read
  normally.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from ioc.errors import Reason, Rejection
from ioc.events import CameraEvent, DossierEvent, Event, parse_event, parse_lines

from .sink import Sink

MAX_LINE_BYTES = 1 << 20  # a longer line is refused as too_large
MAX_DEPTH = 32  # objects/arrays nested deeper are refused as too_deep
T_MIN = 946684800.0  # 2000-01-01T00:00:00Z (the window ioc.events documents)
T_MAX = 4102444800.0  # 2100-01-01T00:00:00Z (exclusive)
MAX_COUNT = 2**53  # integer fields (waiting, counters_open) above this are refused
BLOCK_BYTES = 1 << 20  # read size


def _reason(value: str) -> Reason:
    """The Reason member for `value`, or the plain string while ioc.errors lacks it.

    Every consumer uses str(reason) (metrics labels, dead letters, output),
    so a plain string behaves the same as an enum member.
    """
    try:
        return Reason(value)
    except ValueError:
        return value  # type: ignore[return-value]


TOO_LARGE = _reason("too_large")
TOO_DEEP = _reason("too_deep")
OUT_OF_RANGE = _reason("out_of_range")
UNREADABLE = _reason("unreadable")


@dataclass
class ReplayBatch:
    source: str  # the file path, for dead letters (`Rejection.to_dead_letter(source)`)
    first_line: int  # 1-based line number of the batch's first line
    lines: int = 0  # lines read in this batch (blank ones included)
    events: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # 1-based line number of each event
    # Set on the last batch of a file that could not be opened or read to its
    # end: one line saying what happened (the reading stopped there).
    error: str | None = None
    opened: bool = True  # False: the file could not be opened at all


@dataclass
class ReplayStats:
    files: int = 0
    lines: int = 0
    events: int = 0
    rejections: int = 0
    errors: list[str] = field(default_factory=list)


class FileProblem(Exception):
    """A file that cannot be read; str() is one line naming the file and why."""


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _open(path: Path) -> BinaryIO:
    """Open for reading, checking what can be checked before any line is read."""
    if path.is_dir():
        raise FileProblem(f"cannot read {path}: is a directory")
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {_os_reason(exc)}") from None
    if path.suffix != ".gz":
        return raw
    try:
        magic = raw.read(2)
    except OSError as exc:
        raw.close()
        raise FileProblem(f"cannot read {path}: {_os_reason(exc)}") from None
    raw.close()
    if magic and magic != b"\x1f\x8b":
        raise FileProblem(f"cannot read {path}: not a gzip file")
    try:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {_os_reason(exc)}") from None


def check_readable(path: str | Path) -> str | None:
    """None if `path` opens for reading (a .gz: with a gzip header), else one line why not."""
    try:
        f = _open(Path(path))
    except FileProblem as exc:
        return str(exc)
    f.close()
    return None


class _TooLarge:
    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class _ReadFailed:
    __slots__ = ("exc", "partial")

    def __init__(self, exc: BaseException, partial: bool) -> None:
        self.exc = exc
        self.partial = partial


def _iter_lines(f: BinaryIO, limit: int, block: int) -> Iterator[bytes | _TooLarge | _ReadFailed]:
    """Lines without their b"\\n"; an oversized line as _TooLarge, a read failure as a last _ReadFailed.

    Memory is bounded by `block` + `limit`: an oversized line is counted and
    skipped, never assembled.
    """
    tail = b""
    skipping = 0  # > 0: inside an oversized line, this many bytes so far
    while True:
        try:
            data = f.read1(block)  # read1: what a truncated .gz decoded before its end is kept
        except Exception as exc:  # OSError/BadGzipFile, EOFError (truncated), zlib.error (corrupt)
            yield _ReadFailed(exc, bool(tail or skipping))
            return
        if not data:
            break
        parts = data.split(b"\n")
        last = parts.pop()
        if parts:
            first = parts[0]
            if skipping:
                parts[0] = _TooLarge(skipping + len(first))  # type: ignore[call-overload]
                skipping = 0
            elif tail:
                parts[0] = tail + first
            tail = b""
            for p in parts:
                if type(p) is bytes and len(p) > limit:
                    yield _TooLarge(len(p))
                else:
                    yield p
        if skipping:
            skipping += len(last)
        else:
            if tail:
                last = tail + last
            if len(last) > limit:
                skipping, tail = len(last), b""
            else:
                tail = last
    if skipping:
        yield _TooLarge(skipping)
    elif tail:
        yield tail


_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = np.zeros(256, dtype=np.int32)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def nesting_depth(line: bytes) -> int:
    """Deepest object/array nesting of a JSON text (brackets inside strings ignored)."""
    brackets = _STRING_RE.sub(b"", line).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return int(np.cumsum(_STEP[np.frombuffer(brackets, dtype=np.uint8)]).max())


def _precheck(line: bytes | _TooLarge, position: int) -> Rejection | None:
    """Refusals decided before decoding: size and nesting."""
    if type(line) is _TooLarge:
        return Rejection(TOO_LARGE, f"line of {line.size} bytes is longer than the {MAX_LINE_BYTES}-byte limit",
                         "unknown", b"", position)
    if line.count(b"{") + line.count(b"[") > MAX_DEPTH:  # cheap test first: most lines have one `{`
        depth = nesting_depth(line)
        if depth > MAX_DEPTH:
            return Rejection(TOO_DEEP, f"nested {depth} levels deep; at most {MAX_DEPTH} are accepted",
                             _guess_feed(line), _kept(line), position)
    return None


def _kept(raw: bytes) -> bytes:
    """The raw bytes a rejection keeps (dead letters): all of a normal line, the start of a huge one."""
    return raw if len(raw) <= 65536 else raw[:4096]


def _guess_feed(raw: bytes) -> str:
    m = re.search(rb'"kind"\s*:\s*"(rain|dossier|camera)"', raw[:4096])
    return m.group(1).decode() if m else "unknown"


def _decode_one(line: bytes, position: int) -> Event | Rejection:
    try:
        return parse_event(line, position)
    except RecursionError:
        return Rejection(TOO_DEEP, "nested too deep to decode", _guess_feed(line), _kept(line), position)
    except Exception as exc:  # parse_event is meant never to raise; the reader must not either
        return Rejection(Reason.INVALID_VALUE, f"cannot decode: {type(exc).__name__}: {exc}"[:500], _guess_feed(line),
                         _kept(line), position)


def _decode(lines: list[bytes], numbers: list[int]) -> tuple[list[Event], list[int], list[Rejection]]:
    """Decode non-blank lines; (events, their line numbers, rejections)."""
    try:
        events, rejections = parse_lines(lines, start=0)
    except Exception:
        pairs = [(_decode_one(line, n), n) for line, n in zip(lines, numbers)]
        evs = [(e, n) for e, n in pairs if not isinstance(e, Rejection)]
        return [e for e, _ in evs], [n for _, n in evs], [r for r, _ in pairs if isinstance(r, Rejection)]
    if not rejections:
        return events, list(numbers), []
    refused = {r.position for r in rejections}
    positions = [numbers[i] for i in range(len(lines)) if i not in refused]
    fixed = [Rejection(r.reason, r.detail, r.feed, r.raw, numbers[r.position]) for r in rejections]
    return events, positions, fixed


def check_event(event: Event) -> tuple[Reason, str] | None:
    """Range checks the core relies on (representable times, int64-safe counts); None if fine."""
    t = event.t
    if not (T_MIN <= t < T_MAX):  # NaN fails too
        return Reason.BAD_TIMESTAMP, f"timestamp {event.ts.isoformat()} is outside the years 2000..2099"
    if type(event) is DossierEvent:
        if event.due_t is not None and not (T_MIN <= event.due_t < T_MAX):
            return Reason.BAD_TIMESTAMP, f"due {event.due.isoformat()} is outside the years 2000..2099"  # type: ignore[union-attr]
    elif type(event) is CameraEvent:
        for name in ("waiting", "counters_open"):
            v = getattr(event, name)
            if v > MAX_COUNT:
                return Reason.INVALID_VALUE, f"{name} {v} is larger than {MAX_COUNT}"
    return None


def _checked(events: list[Event], positions: list[int], lines: list[bytes], numbers: list[int]):
    if not any(check_event(ev) for ev in events):
        return events, positions, []
    source_lines = dict(zip(numbers, lines))
    bad: list[Rejection] = []
    keep_e: list[Event] = []
    keep_p: list[int] = []
    for ev, pos in zip(events, positions):
        problem = check_event(ev)
        if problem is None:
            keep_e.append(ev)
            keep_p.append(pos)
        else:
            feed = type(ev).__struct_config__.tag
            bad.append(Rejection(problem[0], problem[1], feed, _kept(source_lines.get(pos, b"")), pos))  # type: ignore[arg-type]
    return keep_e, keep_p, bad


def _file_batches(path: Path, batch_size: int) -> Iterator[ReplayBatch]:
    source = str(path)
    try:
        f = _open(path)
    except FileProblem as exc:
        yield ReplayBatch(source, 1, 0, rejections=[Rejection(UNREADABLE, str(exc), "unknown", b"", 0)],
                          error=str(exc), opened=False)
        return
    with f:
        lines = _iter_lines(f, MAX_LINE_BYTES, BLOCK_BYTES)
        line_no = 1
        while True:
            chunk = list(itertools.islice(lines, batch_size))
            failure = chunk.pop() if chunk and type(chunk[-1]) is _ReadFailed else None
            if not chunk and failure is None:
                break
            rejections: list[Rejection] = []
            todo: list[bytes] = []
            numbers: list[int] = []
            for i, raw in enumerate(chunk):
                n = line_no + i
                refused = _precheck(raw, n)
                if refused is not None:
                    rejections.append(refused)
                    continue
                raw = raw.strip()  # type: ignore[union-attr]
                if raw:
                    todo.append(raw)  # type: ignore[arg-type]
                    numbers.append(n)
            events: list[Event] = []
            positions: list[int] = []
            if todo:
                events, positions, bad = _decode(todo, numbers)
                rejections.extend(bad)
                events, positions, bad = _checked(events, positions, todo, numbers)
                rejections.extend(bad)
                rejections.sort(key=lambda r: r.position)
            batch = ReplayBatch(source, line_no, len(chunk), events, rejections, positions)
            line_no += len(chunk)
            if failure is not None:
                done = line_no - 1
                what = "truncated or corrupt gzip" if path.suffix == ".gz" else "read error"
                msg = f"{source}: {what} after line {done}: {_os_reason(failure.exc)}"
                if failure.partial:
                    msg += f" (the partial line {line_no} is dropped)"
                batch.error = msg
                batch.rejections.append(Rejection(UNREADABLE, msg, "unknown", b"", line_no))
                yield batch
                return
            yield batch


def iter_batches(paths: Iterable[str | Path], batch_size: int = 4096) -> Iterator[ReplayBatch]:
    """Batches of at most `batch_size` lines per file, files in the given order; never raises on bad input."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for p in paths:
        yield from _file_batches(Path(p), batch_size)


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
        if b.error:
            stats.errors.append(b.error)
        if b.events or b.rejections:
            sink(b.events, b.rejections)
        await asyncio.sleep(0)
    return stats
