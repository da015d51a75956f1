"""python -m benchmarks NAME [args] | all [--json OUT.json] — runs benchmarks and prints a table."""

from __future__ import annotations

import importlib
import json
import sys
import time

from benchmarks.common import machine, table

BENCHMARKS = {
    "pipeline": "benchmarks.pipeline",
    "memory": "benchmarks.memory",
    "fanout": "benchmarks.fanout",
    "restart": "benchmarks.restart",
    "faust": "benchmarks.faust_worker",
    "restart_distributed": "benchmarks.restart_distributed",
    "anomaly": "benchmarks.anomaly",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS), "or all")
        return 0
    name, rest = argv[0], argv[1:]
    out_json = None
    if "--json" in rest:
        i = rest.index("--json")
        out_json = rest[i + 1]
        rest = rest[:i] + rest[i + 2 :]
    names = list(BENCHMARKS) if name == "all" else [name]
    results = []
    failed: list[str] = []
    t0 = time.time()
    for n in names:
        try:
            mod = importlib.import_module(BENCHMARKS[n])
        except ImportError as exc:
            print(f"{n}: not available ({exc})", file=sys.stderr)
            continue
        print(f"running {n} ...", file=sys.stderr, flush=True)
        try:
            results.extend(mod.main(rest if name != "all" else []))
        except Exception as exc:  # one failing benchmark must not lose the others' figures
            failed.append(n)
            print(f"{n}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    print(f"machine: {machine()}")
    print(table(results))
    if failed:
        print(f"failed: {', '.join(failed)}")
    if out_json:
        with open(out_json, "w") as fh:
            json.dump({"machine": machine(), "seconds": round(time.time() - t0, 1),
                       "results": [r.to_json() for r in results], "failed": failed}, fh, indent=2, ensure_ascii=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
