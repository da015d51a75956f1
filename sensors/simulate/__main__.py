"""Write simulated events as JSONL: `python -m sensors.simulate --hours 24 --out demo.jsonl`.

Events are written in 5-minute arrival steps; within a step, feed by feed in
arrival order (late rain readings appear where they arrive).
"""

from __future__ import annotations

import argparse
import sys
import time

from ioc.catalog import demo_catalog, load_catalog
from ioc.events import encode_event
from ioc.timeutil import parse_ts

from . import demo_simulators

STEP_S = 300.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sensors.simulate", description=__doc__)
    ap.add_argument("--start", help="ISO 8601 start with offset (default: now)")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--storm-at", help="ISO 8601 start of the demo storm (default: start + 30 min)")
    ap.add_argument("--catalog", help="catalog YAML (default: the demo catalog)")
    ap.add_argument("--feeds", default="rain,dossier,camera", help="comma-separated subset")
    ap.add_argument("--out", help="output file (default: stdout)")
    args = ap.parse_args(argv)
    catalog = load_catalog(args.catalog) if args.catalog else demo_catalog()
    start = parse_ts(args.start) if args.start else float(int(time.time()))
    storm_at = parse_ts(args.storm_at) if args.storm_at else None
    until = start + args.hours * 3600.0
    feeds = set(args.feeds.split(","))
    sims = [s for s in demo_simulators(catalog, args.seed, start, storm_at=storm_at) if s.feed in feeds]
    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    n = 0
    try:
        t = start
        while t < until:
            t = min(until, t + STEP_S)
            for sim in sims:
                events = sim.advance(t)
                if events:
                    out.write(b"\n".join(encode_event(e) for e in events) + b"\n")
                    n += len(events)
    finally:
        if args.out:
            out.close()
    print(f"wrote {n} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
