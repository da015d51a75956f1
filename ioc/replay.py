"""`ioc replay`: recorded JSONL through the embedded pipeline, in event time.

No sleeping and no wall clock: the output depends only on the input bytes,
so two runs write byte-identical files.  At the end every indicator is
written once more at its feed's final watermark (the largest valid event
time), so the last record per key is the final value.

Bad input never stops a replay (see sensors.replay for the limits): every
refused line is reported on stderr as `FILE:LINE: reason: detail`.  Exit
status (shared with `ioc backtest`, see exit_help):

- 0: every file was read to its end (refused lines do not change it);
- 1: a file could not be read to its end (a truncated or corrupt .gz, an
  I/O error): what was read before is processed and its output written in
  full, then one line `ioc replay: FILE: truncated or corrupt gzip after
  line N: ...` and exit 1;
- 2: nothing was run: an input file is missing, a directory, unreadable or
  not gzip although named .gz (one line each, `ioc replay: cannot read FILE:
  reason`), or the --emit file cannot be written.  All inputs are checked
  before anything is processed, so no partial output is written.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from pathlib import Path
from typing import IO, Iterator, Sequence

from ioc import events as _events
from ioc.catalog import Catalog
from ioc.errors import Rejection
from ioc.events import Event, encode_event
from ioc.records import encode
from ioc.timeutil import format_ts
from sensors.replay import MAX_DEPTH, MAX_LINE_BYTES, UNREADABLE, ReplayBatch, check_readable, iter_batches

BATCH_LINES = 4096
EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE = 0, 1, 2

_EVENT_BYTES = getattr(_events, "MAX_EVENT_BYTES", MAX_LINE_BYTES)
_EXIT_HELP = f"""\
Bad lines are reported on stderr as FILE:LINE: reason: detail and skipped:
bad_json, not_an_object, unknown_kind, missing_field, wrong_type,
invalid_value, negative_value, out_of_range, bad_timestamp,
future_timestamp, too_late, too_large (an event over {_EVENT_BYTES:,} bytes;
a line over {MAX_LINE_BYTES:,} bytes is skipped without being held in memory),
too_deep (JSON nested over {MAX_DEPTH} levels).  Event times must lie in the
years 2000..2099; an event more than 24 h ahead of its feed's watermark is
future_timestamp and does not move the watermark.

exit status:
  0  every file read to its end (bad lines do not change it)
  1  a file could not be read to its end (truncated or corrupt .gz, I/O
     error): the lines before are processed and their output written, then
     one line "ioc {{prog}}: FILE: ... after line N: reason"
  2  nothing run: an input is missing, a directory, unreadable or not gzip
     ("ioc {{prog}}: cannot read FILE: reason"), or the output cannot be
     written ("ioc {{prog}}: cannot write OUT: reason")
"""


def exit_help(prog: str) -> str:
    """The epilog of `ioc replay --help` / `ioc backtest --help`: limits and exit status."""
    return _EXIT_HELP.replace("{prog}", prog)


def core_rejections_at_lines(rejections: list[Rejection], events: Sequence[Event],
                             positions: Sequence[int]) -> list[Rejection]:
    """The core's rejections (future-dated, too late) with the line number of their event.

    Matched by the event's wire bytes; identical events refused more than
    once get their lines in order (the n-th refusal of a given event is its
    n-th occurrence not yet matched), so each line is reported once.
    """
    if not rejections:
        return []
    wanted = {r.raw for r in rejections}
    lines: dict[bytes, deque[int]] = {}
    for ev, pos in zip(events, positions):
        raw = encode_event(ev)
        if raw in wanted:
            lines.setdefault(raw, deque()).append(pos)
    out = []
    for r in rejections:
        queue = lines.get(r.raw)
        pos = queue.popleft() if queue else r.position
        out.append(Rejection(r.reason, r.detail, r.feed, r.raw, pos))
    return out


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class InputFiles:
    """The reader behind `ioc replay` and `ioc backtest`: file checks, bad lines to stderr, exit status."""

    def __init__(self, files: list[Path], prog: str, stderr: IO[str] | None = None) -> None:
        self.files = files
        self.prog = prog
        self.stderr = stderr if stderr is not None else sys.stderr  # at call time: tests swap sys.stderr
        self.errors: list[str] = []
        self.unopened = False

    def check(self) -> bool:
        """Every input opens; else one line per bad file on stderr and False."""
        ok = True
        for f in self.files:
            problem = check_readable(f)
            if problem:
                print(f"ioc {self.prog}: {problem}", file=self.stderr)
                ok = False
        return ok

    def batches(self, batch_size: int = BATCH_LINES) -> Iterator[ReplayBatch]:
        """Batches without the file-level `unreadable` rejections (those become `errors`)."""
        for b in iter_batches(self.files, batch_size):
            if b.error is not None:
                self.errors.append(b.error)
                self.unopened |= not b.opened
                b.rejections = [r for r in b.rejections if str(r.reason) != str(UNREADABLE)]
            yield b

    def finish(self) -> int:
        """Print the file errors (last, so the final line explains the exit status); the exit status."""
        for e in self.errors:
            print(f"ioc {self.prog}: {e}", file=self.stderr)
        if self.unopened:
            return EXIT_UNREADABLE
        return EXIT_PARTIAL if self.errors else EXIT_OK


def replay(files: list[Path], catalog: Catalog, emit: Path | None = None, rules_dir: Path | None = None,
           stderr: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    from ioc.wiring import build_pipeline, build_replay_engine

    stderr = stderr if stderr is not None else sys.stderr  # at call time, not import time
    stdout = stdout if stdout is not None else sys.stdout

    inputs = InputFiles(files, "replay", stderr)
    if not inputs.check():
        return EXIT_UNREADABLE
    pipeline = build_pipeline(catalog, build_replay_engine(catalog, rules_dir))
    try:
        out = open(emit, "wb") if emit else None
    except OSError as exc:
        print(f"ioc replay: cannot write {emit}: {_why(exc)}", file=stderr)
        return EXIT_UNREADABLE
    reasons: Counter[str] = Counter()
    read = accepted = indicators = 0
    alerts: Counter[str] = Counter()
    try:
        for batch in inputs.batches(BATCH_LINES):
            events = batch.events
            read += len(events) + len(batch.rejections)
            result = pipeline.process(events)
            late = core_rejections_at_lines(result.rejections, events, batch.positions)
            for r in sorted([*batch.rejections, *late], key=lambda r: r.position):
                reasons[str(r.reason)] += 1
                print(f"{batch.source}:{r.position}: {r.reason}: {r.detail}", file=stderr)
            accepted += result.accepted
            indicators += len(result.indicators)
            for a in result.alerts:
                alerts[a.state] += 1
            if out:
                out.write(b"".join(encode(rec) + b"\n" for rec in result.records))
        final = pipeline.flush()
        if out:
            out.write(b"".join(encode(rec) + b"\n" for rec in final))
            out.close()
    except OSError as exc:  # the output (a full disk...): the inputs' errors never raise
        print(f"ioc replay: cannot write {emit}: {_why(exc)}", file=stderr)
        return EXIT_UNREADABLE
    finally:
        if out:
            out.close()
    if not emit:
        print(f"events read: {read}, accepted: {accepted}, rejected: {sum(reasons.values())}", file=stdout)
        for reason, n in sorted(reasons.items()):
            print(f"  rejected {reason}: {n}", file=stdout)
        print(f"indicator records: {indicators}, final indicators: {len(final)}", file=stdout)
        print("alert transitions: " + (", ".join(f"{k} {v}" for k, v in sorted(alerts.items())) or "none"), file=stdout)
        for feed, wm in sorted(pipeline.watermarks.items()):
            print(f"watermark {feed}: {format_ts(wm)}", file=stdout)
        if inputs.errors:
            print(f"files not read to the end: {len(inputs.errors)}", file=stdout)
    return inputs.finish()
