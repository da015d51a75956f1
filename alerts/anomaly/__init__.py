"""Streaming anomaly detectors (pure: event time and values in, scores out).

Two interchangeable detectors share one small protocol (river-style):

- ``robust`` (`RobustDetector`, alerts/anomaly/robust.py): the default — scale-free,
  multi-scale, seasonal when the data shows it, adaptive to level shifts, with an
  anomaly-likelihood calibration and alarm suppression;
- ``zscore`` (`WindowedZScore`, alerts/anomaly/zscore.py): the plain windowed
  Gaussian baseline the benchmark compares against.

    det = make_detector("robust", {})
    for t_s, x in series:
        s = det.score_one(t_s, x)   # None while warming up; else Score (uses only the past)
        det.learn_one(t_s, x)
    state = det.get_state()         # plain JSON-able dict; from_state() rebuilds it exactly
"""

from __future__ import annotations

from typing import Any, Protocol

from alerts.anomaly.score import Score
from alerts.anomaly.robust import RobustDetector
from alerts.anomaly.zscore import WindowedZScore

__all__ = ["Detector", "Score", "RobustDetector", "WindowedZScore", "DETECTORS", "make_detector", "detector_from_state"]


class Detector(Protocol):
    """What the `anomaly` rule, `ioc detect` and the benchmark need of a detector."""

    def learn_one(self, t_s: float, x: float) -> None: ...

    def score_one(self, t_s: float, x: float) -> Score | None: ...

    def get_state(self) -> dict[str, Any]: ...


DETECTORS: dict[str, Any] = {"robust": RobustDetector, "zscore": WindowedZScore}


def make_detector(name: str, params: dict[str, Any] | None = None) -> Detector:
    """A fresh detector by name; unknown names or parameters raise ValueError (a config error)."""
    cls = DETECTORS.get(name)
    if cls is None:
        raise ValueError(f"unknown detector {name!r}; use one of {', '.join(DETECTORS)}")
    return cls(**(params or {}))


def detector_from_state(state: dict[str, Any]) -> Detector:
    """Rebuild a detector saved with get_state() (the state names its kind)."""
    cls = DETECTORS.get(state.get("kind", ""))
    if cls is None:
        raise ValueError(f"unknown detector state kind {state.get('kind')!r}")
    return cls.from_state(state)
