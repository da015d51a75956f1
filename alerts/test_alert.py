"""The operator's test alert (pure): one alert that walks the whole path — lifecycle, journal, walls,
notifications — on a reserved entity that is no real station, so an operator can check that the
chain works without touching real data.

A test alert carries the label `test: "true"` and the rule TEST_RULE.  It is never a CAP message
(alerts/cap_messages.py), never counted in `ioc_alert_transitions` (its transitions are counted in
`ioc_test_alerts_total`), and a notification about it says so in its subject
(alerts/notify/messages.py).  It ends by itself TTL after it fired (`expires_at`), or when an
operator resolves it.  Times are the operator action's wall-clock time, passed in: nothing here
reads a clock, so a journal replay re-derives the same alert with the same id.
"""

from __future__ import annotations

from typing import Any, Mapping

TEST_RULE = "test_alert"
TEST_ENTITY = "ioc-test"  # reserved: not a station, unit, site or camera id of any catalog
TEST_LABEL = "test"
DEFAULT_TTL_S = 120.0
MAX_TTL_S = 86400.0
SEVERITY = "info"
MESSAGE = {"vi": "Cảnh báo thử — không phải sự cố thật", "en": "Test alert — not a real incident"}
RESOLVED_MESSAGE = {"vi": "Cảnh báo thử đã kết thúc — không phải sự cố thật",
                    "en": "Test alert ended — not a real incident"}
KEY = (TEST_RULE, TEST_ENTITY, "")


def is_test(alert: Any) -> bool:
    """True for a test alert (an Alert record or its dict form)."""
    labels = alert.get("labels") if isinstance(alert, Mapping) else getattr(alert, "labels", None)
    return isinstance(labels, Mapping) and labels.get(TEST_LABEL) == "true"


def labels(by: str, unit: str | None, ttl_s: float) -> dict[str, str]:
    """The test alert's labels: who sent it, for how long, and the unit whose routes it exercises."""
    out = {TEST_LABEL: "true", "requested_by": by, "ttl_s": f"{ttl_s:g}", "category": "test"}
    if unit:
        out["unit"] = unit
    return out


def ttl_of(alert: Any) -> float:
    try:
        return float(alert.labels.get("ttl_s", DEFAULT_TTL_S))
    except (TypeError, ValueError):
        return DEFAULT_TTL_S


def expires_at(alert: Any, started_s: float) -> float:
    """When the test alert ends by itself (epoch s): TTL after it fired."""
    return started_s + ttl_of(alert)


def check_ttl(value: Any) -> float:
    """A test alert's lifetime in seconds: a number in (0, MAX_TTL_S]; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number of seconds in (0, {MAX_TTL_S:g}], got {value!r}")
    try:
        ttl = float(value)
    except ValueError:
        raise ValueError(f"expected a number of seconds in (0, {MAX_TTL_S:g}], got {value!r}") from None
    if not 0 < ttl <= MAX_TTL_S:
        raise ValueError(f"expected a number of seconds in (0, {MAX_TTL_S:g}], got {value!r}")
    return ttl
