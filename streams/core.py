"""The contract between the runtimes and the pure core.

Batches, not single events, cross this API, so the in-process bus and
Faust's `stream.take(n, within=...)` feed it alike and numpy does the sums.
Nothing here does I/O or reads the wall clock: time is event time, and the
live "now" (for the future-dated check) is passed in.

Event identity (docs/architecture.md, input events).  Every event has a
natural key: rain ``(station, ts)``, camera ``(camera, ts)``, dossier
``(dossier, status, ts)``; ``ts`` compares at 0.01 s resolution.  Each event
given to ``process()`` gets one `Outcome`, in input order:

* ``ACCEPTED``: a new key, counted;
* ``DUPLICATE``: the key was seen with the same value (inside the state the
  windows hold): nothing changes and no output record is produced for it;
* ``CORRECTED``: the key was seen with another value: the new value replaces
  the earlier one, and the indicators it affects are recomputed and
  re-emitted (like a late event);
* ``REJECTED``: refused with a `Rejection` (future-dated, too late, past the
  cap on unknown entities).

``ProcessResult.accepted`` counts ACCEPTED + CORRECTED; only those events
reach the alert engine.  A rejection's ``position`` is the index of its
event in the sequence given to ``process()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np

from ioc.errors import Rejection
from ioc.events import Event
from ioc.records import Alert, Indicator


class Outcome(IntEnum):
    """What became of one event (values are stored as int8 in `ProcessResult.outcome`)."""

    ACCEPTED = 0
    DUPLICATE = 1
    CORRECTED = 2
    REJECTED = 3


OUTCOME_DTYPE = np.int8


class Quarantined(NamedTuple):
    """A reading accepted but held out of the sums as physically implausible (streams/rain.py)."""

    feed: str
    entity: str
    t: float  # the reading's event time
    value: float  # what the sensor said
    reason: str  # alerts.detectors.implausible_rain's reason
    late: bool  # behind the feed's watermark when it arrived


@dataclass
class ProcessResult:
    indicators: list[Indicator] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    accepted: int = 0  # ACCEPTED + CORRECTED
    outcome: np.ndarray | None = None  # int8 Outcome per event given to process(), input order
    duplicates: int = 0
    corrected: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)  # new or corrected, in arrival order

    def extend(self, other: "ProcessResult") -> None:
        """Append another result (of the events that followed this one's)."""
        self.indicators.extend(other.indicators)
        self.alerts.extend(other.alerts)
        self.rejections.extend(other.rejections)
        self.quarantined.extend(other.quarantined)
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.corrected += other.corrected
        if other.outcome is not None:
            if self.outcome is None:
                self.outcome = np.array(other.outcome, dtype=OUTCOME_DTYPE)
            else:
                self.outcome = np.concatenate([self.outcome, other.outcome]).astype(OUTCOME_DTYPE, copy=False)

    def set_outcome(self, outcome: np.ndarray) -> "ProcessResult":
        """Store the per-event outcomes and derive the counts from them."""
        outcome = np.asarray(outcome, dtype=OUTCOME_DTYPE)
        self.outcome = outcome
        counts = np.bincount(outcome, minlength=4) if len(outcome) else np.zeros(4, dtype=np.int64)
        self.accepted = int(counts[Outcome.ACCEPTED] + counts[Outcome.CORRECTED])
        self.duplicates = int(counts[Outcome.DUPLICATE])
        self.corrected = int(counts[Outcome.CORRECTED])
        return self

    @property
    def records(self) -> list[Indicator | Alert]:
        return [*self.indicators, *self.alerts]


class Processor(Protocol):
    """One feed's windows and indicators.

    process(): admit events (rejecting future-dated and too-late ones, and
    new unknown entities past the cap, with a Rejection whose position is
    the event's index in `events`), recognise duplicates and corrections by
    natural key, update windows, and return the indicator records whose
    value changed, stamped with the feed's watermark, with one `Outcome`
    per event in `outcome`.  flush(): every current
    indicator at the watermark (end of a replay, a new client's snapshot).
    """

    feed: str

    @property
    def watermark(self) -> float | None: ...

    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult: ...

    def flush(self) -> list[Indicator]: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...
