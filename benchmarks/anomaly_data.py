"""Labelled synthetic series for the anomaly benchmark: known bases, injected anomalies, NAB-style windows.

Bases (each with the standard deviation of its noise, the unit anomalies are sized in): white noise around
a level, a smooth AR(1) process (a machine temperature), a daily cycle, a daily + weekly cycle (taxi
demand), small counts with a daily cycle (dossiers per hour), and heavy-tailed bursts (clicks, tweets).
Anomaly types: spike, level_shift, drift, seasonal_break, noise_change.  Values are multiplied by a scale
(0.01 … 1e6) so that nothing can depend on absolute units; sampling steps go from 1 minute to 1 hour.
Windows follow NAB: 10 % of the series length shared among its anomalies, centred on each onset.
Everything comes from one seeded numpy Generator: the same seed gives the same corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_S = 86400.0
KINDS = ("spike", "level_shift", "drift", "seasonal_break", "noise_change")
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC (a Thursday)


@dataclass
class Series:
    name: str
    kind: str
    base: str
    step_s: float
    t: np.ndarray
    x: np.ndarray
    onsets: list[int]
    windows: list[tuple[int, int]]


def _base(rng: np.random.Generator, base: str, n: int, step_s: float) -> tuple[np.ndarray, float, np.ndarray]:
    """(values, noise sd, seasonal component) of one clean series."""
    t = np.arange(n) * step_s
    season = np.zeros(n)
    if base == "noise":
        sd = 1.0
        x = 10.0 + rng.normal(0, sd, n)
    elif base == "ar1":
        sd_e = 0.3
        e = rng.normal(0, sd_e, n)
        x = np.empty(n)
        v = 0.0
        for i in range(n):
            v = 0.97 * v + e[i]
            x[i] = v
        sd = sd_e / np.sqrt(1 - 0.97 ** 2)
        x = 50.0 + x
    elif base == "daily":
        sd = 1.0
        season = 6.0 * np.sin(2 * np.pi * ((T0 + t) % DAY_S) / DAY_S - 1.0)
        x = 20.0 + season + rng.normal(0, sd, n)
    elif base == "weekly":
        sd = 1.0
        day = np.floor((T0 + t) / DAY_S)
        weekend = ((day + 3) % 7) >= 5
        season = 8.0 * np.sin(2 * np.pi * ((T0 + t) % DAY_S) / DAY_S - 1.0) * np.where(weekend, 0.3, 1.0)
        season += np.where(weekend, -5.0, 0.0)
        x = 30.0 + season + rng.normal(0, sd, n)
    elif base == "counts":
        hour = ((T0 + t) % DAY_S) / 3600.0
        lam = np.where((hour >= 7) & (hour < 17), 4.0, 0.3)
        season = lam
        x = rng.poisson(lam).astype(float)
        sd = 2.0
    elif base == "bursty":
        sd = 1.0
        x = 5.0 + rng.lognormal(0.0, 0.6, n)
        sd = float(np.std(x))
    else:
        raise ValueError(base)
    return x, float(sd), season


def _inject(rng: np.random.Generator, x: np.ndarray, kind: str, at: int, width: int, sd: float,
            season: np.ndarray, step_s: float) -> None:
    n = len(x)
    sign = 1.0 if rng.random() < 0.7 else -1.0
    if kind == "spike":
        k = int(rng.integers(1, 4))
        x[at:at + k] += sign * rng.uniform(6, 10) * sd
    elif kind == "level_shift":
        x[at:] += sign * rng.uniform(4, 7) * sd
    elif kind == "drift":
        d = max(width // 2, 6)
        ramp = np.minimum(np.arange(n - at) / d, 1.0) * sign * rng.uniform(5, 8) * sd
        x[at:] += ramp
    elif kind == "seasonal_break":
        day_pts = int(DAY_S // step_s)
        end = min(n, at + day_pts)
        x[at:end] -= season[at:end] - float(np.mean(season))  # the daily pattern fails to appear for a day
    elif kind == "noise_change":
        end = min(n, at + max(width, 12))
        x[at:end] += rng.normal(0, 3.0 * sd, end - at)
    else:
        raise ValueError(kind)


# (base, step_s, length) per kind; seasonal breaks need seasonal bases
_PLANS = {
    "spike": [("noise", 300, 4000), ("ar1", 300, 4000), ("daily", 300, 4000), ("bursty", 300, 4000),
              ("counts", 3600, 2000), ("noise", 60, 6000), ("ar1", 60, 6000), ("daily", 3600, 1500),
              ("weekly", 1800, 3000), ("noise", 3600, 1500), ("bursty", 60, 5000), ("ar1", 300, 8000)],
    "level_shift": [("noise", 300, 4000), ("ar1", 300, 4000), ("daily", 300, 4000), ("bursty", 300, 4000),
                    ("counts", 3600, 2000), ("noise", 60, 6000), ("ar1", 60, 6000), ("daily", 3600, 1500),
                    ("weekly", 1800, 3000), ("noise", 3600, 1500), ("bursty", 60, 5000), ("ar1", 300, 8000)],
    "drift": [("noise", 300, 4000), ("ar1", 300, 4000), ("daily", 300, 4000), ("bursty", 300, 4000),
              ("counts", 3600, 2000), ("noise", 60, 6000), ("ar1", 60, 6000), ("daily", 3600, 1500),
              ("weekly", 1800, 3000), ("noise", 3600, 1500), ("bursty", 60, 5000), ("ar1", 300, 8000)],
    "seasonal_break": [("daily", 300, 4000), ("daily", 300, 6000), ("daily", 3600, 1500), ("daily", 900, 3000),
                       ("weekly", 1800, 3000), ("weekly", 3600, 2000), ("weekly", 1800, 4000),
                       ("counts", 3600, 2000), ("counts", 1800, 3000), ("daily", 600, 4000),
                       ("weekly", 3600, 1500), ("daily", 1800, 2500)],
    "noise_change": [("noise", 300, 4000), ("ar1", 300, 4000), ("daily", 300, 4000), ("bursty", 300, 4000),
                     ("counts", 3600, 2000), ("noise", 60, 6000), ("ar1", 60, 6000), ("daily", 3600, 1500),
                     ("weekly", 1800, 3000), ("noise", 3600, 1500), ("bursty", 60, 5000), ("ar1", 300, 8000)],
}
_SCALES = (0.01, 1.0, 1000.0, 1e6)


def corpus(seed: int = 13, kinds: tuple[str, ...] = KINDS) -> list[Series]:
    rng = np.random.default_rng(seed)
    out: list[Series] = []
    for kind in kinds:
        for j, (base, step_s, n) in enumerate(_PLANS[kind]):
            x, sd, season = _base(rng, base, n, float(step_s))
            n_anom = 1 if kind == "level_shift" or kind == "drift" else int(rng.integers(1, 4))
            width = max(int(0.1 * n / n_anom), 4)
            lo = int(0.2 * n)
            if kind in ("level_shift", "drift"):
                onsets = [int(rng.integers(lo, int(0.6 * n)))]
            else:
                span = (int(0.95 * n) - lo) // n_anom
                onsets = [lo + i * span + int(rng.integers(width // 2, max(span - width // 2, width // 2 + 1)))
                          for i in range(n_anom)]
            for at in onsets:
                _inject(rng, x, kind, at, width, sd, season, float(step_s))
            if base != "counts":
                scale = _SCALES[j % len(_SCALES)]
                x = x * scale
            windows = [(max(0, at - width // 2), min(n - 1, at + width // 2 - 1)) for at in onsets]
            t = T0 + np.arange(n) * float(step_s)
            out.append(Series(f"{kind}-{j:02d}-{base}-{int(step_s)}s", kind, base, float(step_s), t, x, onsets,
                              windows))
    return out
