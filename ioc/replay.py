"""`ioc replay`: recorded JSONL through the embedded pipeline, in event time.

No sleeping and no wall clock: the output depends only on the input bytes,
so two runs write byte-identical files.  At the end every indicator is
written once more at its feed's final watermark (the largest valid event
time), so the last record per key is the final value.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import IO

from ioc.catalog import Catalog
from ioc.records import encode
from ioc.timeutil import format_ts
from sensors.replay import iter_batches

BATCH_LINES = 4096


def replay(files: list[Path], catalog: Catalog, emit: Path | None = None, rules_dir: Path | None = None,
           stderr: IO[str] = sys.stderr, stdout: IO[str] = sys.stdout) -> int:
    from ioc.wiring import build_pipeline, build_replay_engine
    from streams.pipeline import reject_positions

    pipeline = build_pipeline(catalog, build_replay_engine(catalog, rules_dir))
    out = open(emit, "wb") if emit else None
    reasons: Counter[str] = Counter()
    read = accepted = indicators = 0
    alerts: Counter[str] = Counter()
    try:
        for batch in iter_batches(files, BATCH_LINES):
            events = batch.events
            read += len(events) + len(batch.rejections)
            result = pipeline.process(events)
            late = reject_positions(result.rejections, events, batch.positions)
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
    return 0
