"""The contract between the runtimes and the pure core.

Batches, not single events, cross this API, so the in-process bus and
Faust's `stream.take(n, within=...)` feed it alike and numpy does the sums.
Nothing here does I/O or reads the wall clock: time is event time, and the
live "now" (for the future-dated check) is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from ioc.errors import Rejection
from ioc.events import Event
from ioc.records import Alert, Indicator


@dataclass
class ProcessResult:
    indicators: list[Indicator] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    accepted: int = 0

    def extend(self, other: "ProcessResult") -> None:
        self.indicators.extend(other.indicators)
        self.alerts.extend(other.alerts)
        self.rejections.extend(other.rejections)
        self.accepted += other.accepted

    @property
    def records(self) -> list[Indicator | Alert]:
        return [*self.indicators, *self.alerts]


class Processor(Protocol):
    """One feed's windows and indicators.

    process(): admit events (rejecting future-dated and too-late ones with a
    Rejection), update windows, and return the indicator records whose value
    changed, stamped with the feed's watermark.  flush(): every current
    indicator at the watermark (end of a replay, a new client's snapshot).
    """

    feed: str

    @property
    def watermark(self) -> float | None: ...

    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult: ...

    def flush(self) -> list[Indicator]: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...
