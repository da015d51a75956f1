"""NAB-style windowed scoring (the published scoring of the Numenta Anomaly Benchmark, re-implemented).

Per series: labelled anomaly windows; the first `probation` points (15 % of the series, at most 750) are
ignored.  A detection is a point whose score is ≥ the threshold.  In each window only the *first*
detection counts, rewarded A_TP·σ(y) where y ∈ [−1, 0) is its position relative to the window's end (an
early detection earns ~0.99, one at the end ~0) and σ(y) = 2/(1 + e^{5y}) − 1.  A detection outside every
window costs A_FP·σ(y) with y its distance past the previous window's end in window lengths (just after a
window it costs little, far after the full A_FP; before any window the full A_FP).  A window without
detection costs A_FN.  The corpus score is normalised between the null detector (no detection: 0) and the
perfect one (one detection at the start of every window: 100), and the threshold is the one that
maximises it for each detector (a sweep).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PROFILES = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_fp": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_fn": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}


def sigmoid(y: float) -> float:
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


MAX_TP = sigmoid(-1.0)


@dataclass
class Labelled:
    """One series' scores and labels: windows are (first, last) point indices, inclusive."""

    name: str
    scores: np.ndarray
    windows: list[tuple[int, int]]
    kinds: list[str]
    onsets: list[int]  # the point each injected anomaly starts at (for latency)

    def probation(self) -> int:
        n = len(self.scores)
        return int(min(math.floor(0.15 * n), 750))


class _Prepared:
    """Per-point weights that do not depend on the threshold, so a sweep is cheap."""

    def __init__(self, s: Labelled, prof: dict[str, float]) -> None:
        n = len(s.scores)
        self.s = s
        prob = s.probation()
        inside = np.zeros(n, dtype=bool)
        fpw = np.zeros(n)
        for a, b in s.windows:
            inside[a:b + 1] = True
        prev_end = None
        for i in range(n):
            if inside[i]:
                for a, b in s.windows:
                    if a <= i <= b:
                        prev_end = (b, b - a + 1)
                continue
            if prev_end is None:
                fpw[i] = -prof["fp"]
            else:
                b, w = prev_end
                fpw[i] = prof["fp"] * sigmoid((i - b) / w)
        fpw[:prob] = 0.0
        self.fpw = fpw
        self.counted = ~inside
        self.counted[:prob] = False
        self.tpw = [np.array([prof["tp"] * sigmoid(-(b - i + 1) / (b - a + 1)) for i in range(a, b + 1)])
                    for a, b in s.windows]
        self.prof = prof

    def score(self, thr: float) -> tuple[float, list[int | None]]:
        det = self.s.scores >= thr
        total = float(self.fpw[det & self.counted].sum())
        firsts: list[int | None] = []
        for (a, b), w in zip(self.s.windows, self.tpw):
            hit = np.flatnonzero(det[a:b + 1])
            if hit.size:
                total += float(w[hit[0]])
                firsts.append(a + int(hit[0]))
            else:
                total -= self.prof["fn"]
                firsts.append(None)
        return total, firsts


def thresholds(all_scores: np.ndarray) -> np.ndarray:
    """Candidate thresholds: a fine grid plus quantiles near the top (scores cluster near 1 for some)."""
    grid = np.linspace(0.0, 1.0, 201)[1:]
    tail = 1.0 - np.logspace(-1, -9, 33)
    qs = np.quantile(all_scores, np.linspace(0.9, 1.0, 101)) if all_scores.size else np.array([])
    return np.unique(np.concatenate([grid, tail, qs[qs > 0]]))


def nab_score(series: list[Labelled], profile: str = "standard") -> dict:
    """Best normalised score over the threshold sweep: {score, threshold, firsts (per series, per window)}."""
    prof = PROFILES[profile]
    prepared = [_Prepared(s, prof) for s in series]
    n_windows = sum(len(s.windows) for s in series)
    null = -prof["fn"] * n_windows
    perfect = prof["tp"] * MAX_TP * n_windows
    best = {"score": -math.inf, "threshold": 1.0, "firsts": []}
    allsc = np.concatenate([s.scores for s in series]) if series else np.array([])
    for thr in thresholds(allsc):
        total, firsts = 0.0, []
        for p in prepared:
            t, f = p.score(thr)
            total += t
            firsts.append(f)
        norm = 100.0 * (total - null) / (perfect - null)
        if norm > best["score"]:
            best = {"score": norm, "threshold": float(thr), "firsts": firsts}
    return best
