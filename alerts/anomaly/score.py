"""The verdict of a detector on one point, with what an operator needs to judge it."""

from __future__ import annotations

import msgspec


class Score(msgspec.Struct, frozen=True):
    """score in [0, 1] (near 0 normally, high only at unusual points); `alert` is score ≥ the detector's own
    default threshold after alarm suppression.  `expected_low`..`expected_high` is the range the scale that
    fired expected, `observed` what it saw there (the point itself, or a mean of recent points), `scale`
    which scale fired ("point", "level", "mean_6", "mean_36", "step", "spread"), `seasonal` which context the
    expectation used ("none", "daily", "weekly"); `likelihood` is the score before alarm suppression (what
    the `anomaly` rule's hysteresis reads, so an alert stays up while the anomaly lasts)."""

    score: float
    alert: bool
    scale: str
    observed: float
    expected: float
    expected_low: float
    expected_high: float
    seasonal: str = "none"
    z: float = 0.0
    likelihood: float = 0.0
    direction: str = "above"  # "above" / "below" the expected range, or "wider": swinging more than usual
