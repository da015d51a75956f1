"""WindowedZScore: the plain windowed Gaussian baseline (mean and standard deviation of the last
`window` points), kept to measure the robust detector against in benchmarks/anomaly.py."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from alerts.anomaly.robust import _LN_1E10, _log_tail
from alerts.anomaly.score import Score


class WindowedZScore:
    KIND = "zscore"

    def __init__(self, window: int = 6400, min_points: int = 288, threshold: float = 0.5) -> None:
        if window < 2 or min_points < 2:
            raise ValueError("window and min_points must be ≥ 2")
        self.window = int(window)
        self.min_points = int(min_points)
        self.threshold = float(threshold)
        self.buf: deque[float] = deque(maxlen=self.window)
        self.s1 = 0.0  # running sums over the window
        self.s2 = 0.0

    def score_one(self, t_s: float, x: float) -> Score | None:
        n = len(self.buf)
        if n < self.min_points:
            return None
        mu = self.s1 / n
        sd = math.sqrt(max(self.s2 / n - mu * mu, 0.0))
        z = abs(x - mu) / sd if sd > 0 else (0.0 if x == mu else math.inf)
        # the Gaussian tail on a log scale (1e-10 → 1), so a threshold sweep can tell 8σ from 30σ
        s = min(1.0, _log_tail(z) / _LN_1E10) if math.isfinite(z) else 1.0
        return Score(score=s, alert=s >= self.threshold, scale="point", observed=x, expected=mu,
                     expected_low=mu - 3 * sd, expected_high=mu + 3 * sd, z=min(z, 1e6), likelihood=s,
                     direction="above" if x >= mu else "below")

    def learn_one(self, t_s: float, x: float) -> None:
        x = float(x)
        if len(self.buf) == self.window:
            old = self.buf[0]
            self.s1 -= old
            self.s2 -= old * old
        self.buf.append(x)
        self.s1 += x
        self.s2 += x * x

    def get_state(self) -> dict[str, Any]:
        return {"kind": self.KIND, "params": {"window": self.window, "min_points": self.min_points,
                                              "threshold": self.threshold}, "buf": list(self.buf)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "WindowedZScore":
        det = cls(**state.get("params", {}))
        for x in state.get("buf", []):
            det.learn_one(0.0, x)
        return det
