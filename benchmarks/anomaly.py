"""Anomaly detection on labelled synthetic series: the robust detector vs the windowed z-score baseline.

    python -m benchmarks anomaly [--seed 13] [--detail]

Both detectors see the same corpus (benchmarks/anomaly_data.py: spikes, level shifts, drifts, seasonal
breaks and noise changes on six kinds of base series, scales 0.01 … 1e6, sampling 1 min … 1 h) in the same
run, scored point by point with only the past (score_one, then learn_one; 0 while warming up, as
`ioc detect` writes it).  Reported: the NAB-style standard score (benchmarks/nab_score.py; the threshold is
swept for each detector) and, at that threshold, per anomaly type the recall (windows detected), the
precision (alarm onsets inside a window / all alarm onsets after the probation) and the median latency
from the anomaly's onset to its first detection, in points.
"""

from __future__ import annotations

import time

import numpy as np

from alerts.anomaly import make_detector
from benchmarks.anomaly_data import KINDS, Series, corpus
from benchmarks.common import Result
from benchmarks.nab_score import Labelled, nab_score

DETECTORS = {"robust": ("robust", {}), "zscore": ("zscore", {})}


def run(det_name: str, params: dict, s: Series) -> np.ndarray:
    det = make_detector(det_name, params)
    out = np.zeros(len(s.x))
    for i, (t, x) in enumerate(zip(s.t.tolist(), s.x.tolist())):
        sc = det.score_one(t, x)
        if sc is not None:
            out[i] = sc.score
        det.learn_one(t, x)
    return out


def evaluate(det_name: str, params: dict, series: list[Series]) -> dict:
    t0 = time.perf_counter()
    labelled = [Labelled(s.name, run(det_name, params, s), s.windows, [s.kind] * len(s.onsets), s.onsets)
                for s in series]
    secs = time.perf_counter() - t0
    best = nab_score(labelled)
    thr = best["threshold"]
    per: dict[str, dict] = {}
    for kind in KINDS:
        idx = [i for i, s in enumerate(series) if s.kind == kind]
        if not idx:
            continue
        hits, lat, onsets_in, onsets_all, n_win = 0, [], 0, 0, 0
        for i in idx:
            s, lab = series[i], labelled[i]
            for at, first in zip(s.onsets, best["firsts"][i]):
                n_win += 1
                if first is not None:
                    hits += 1
                    lat.append(first - at)
            det = lab.scores >= thr
            rise = np.flatnonzero(det & ~np.concatenate([[False], det[:-1]]))
            rise = rise[rise >= lab.probation()]
            onsets_all += rise.size
            onsets_in += sum(any(a <= r <= b for a, b in s.windows) for r in rise)
        sub = nab_score([labelled[i] for i in idx])
        per[kind] = {"recall": hits / n_win if n_win else 0.0,
                     "precision": onsets_in / onsets_all if onsets_all else 0.0,
                     "latency_pts": float(np.median(lat)) if lat else float("nan"),
                     "nab_own_threshold": sub["score"]}
    profiles = {prof: nab_score(labelled, prof)["score"] for prof in ("reward_low_fp", "reward_low_fn")}
    return {"score": best["score"], "threshold": thr, "per": per, "seconds": secs, "profiles": profiles,
            "points": int(sum(len(s.x) for s in series))}


def format_table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| anomaly type | " + " | ".join(f"{n} recall | {n} precision | {n} latency (pts)" for n in names) + " |",
             "|---|" + "---|" * (3 * len(names))]
    for kind in KINDS:
        cells = []
        for n in names:
            p = results[n]["per"].get(kind)
            if p is None:
                cells += ["", "", ""]
                continue
            cells += [f"{p['recall']:.2f}", f"{p['precision']:.2f}", f"{p['latency_pts']:.0f}"]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| **NAB standard score** | " + " | ".join(
        f"**{results[n]['score']:.1f}** (threshold {results[n]['threshold']:.4g}) | |" for n in names) + " |")
    for prof in ("reward_low_fp", "reward_low_fn"):
        lines.append(f"| NAB {prof} | " + " | ".join(f"{results[n]['profiles'][prof]:.1f} | |" for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> list[Result]:
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 13
    series = corpus(seed)
    results = {name: evaluate(d, p, series) for name, (d, p) in DETECTORS.items()}
    print(format_table(results))
    r, z = results["robust"], results["zscore"]
    out = [Result("anomaly_nab_standard", r["score"], "score (0..100)", z["score"], "windowed z-score",
                  "≥ 50", f"NAB-style standard score on {len(series)} labelled synthetic series (seed {seed})"),
           *[Result(f"anomaly_nab_{prof}", r["profiles"][prof], "score (0..100)", z["profiles"][prof],
                    "windowed z-score", "", "NAB-style score, other profile") for prof in r["profiles"]],
           Result("anomaly_throughput", r["points"] / r["seconds"], "points/s", z["points"] / z["seconds"],
                  "windowed z-score", "20k rows in a few s", "score_one + learn_one, one series at a time")]
    for kind, p in r["per"].items():
        zp = z["per"][kind]
        out.append(Result(f"anomaly_recall_{kind}", p["recall"], "fraction", zp["recall"] or None,
                          "windowed z-score", "", f"precision {p['precision']:.2f} (z {zp['precision']:.2f}), "
                          f"median latency {p['latency_pts']:.0f} pts (z {zp['latency_pts']:.0f})"))
    return out


if __name__ == "__main__":
    import sys

    from benchmarks.common import table

    print(table(main(sys.argv[1:])))
