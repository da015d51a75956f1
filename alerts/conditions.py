"""Condition state machines, in event time (pure, table-testable).

One `CondState` per (rule, entity).  `step()` takes the event time `t` of an
evaluation and whether the firing and the clear condition hold, and says what
happened:

    inactive --fire--> pending --(fire held for `for`)--> FIRE
    pending  --not fire--> inactive                     (the `for` clock restarts)
    firing   --clear held for `keep_firing_for`--> RESOLVE
    firing   --not clear--> firing                      (hysteresis: between the
                                                          two thresholds nothing changes)

Because a value that does not change is not re-emitted by the processors,
the engine also `step`s pending and clearing states at every advance of the
feed's watermark with the last known value ("ticks"), so `for` and
`keep_firing_for` elapse in event time even when the value is constant.
"""

from __future__ import annotations

from dataclasses import dataclass

INACTIVE, PENDING, FIRING = 0, 1, 2
FIRE, RESOLVE = "fire", "resolve"


@dataclass(slots=True)
class CondState:
    phase: int = INACTIVE
    since: float | None = None  # pending since (event time)
    clear_since: float | None = None  # clear condition holding since, while firing
    late: bool = False  # the evaluation that started the pending phase was late data
    value: float | None = None  # last value evaluated
    level: int = 0  # levels rules: current level while firing

    @property
    def ticking(self) -> bool:
        """Needs evaluation as time passes even without a new value."""
        return self.phase == PENDING or (self.phase == FIRING and self.clear_since is not None)

    def to_list(self) -> list:
        return [self.phase, self.since, self.clear_since, self.late, self.value, self.level]

    @classmethod
    def from_list(cls, x: list) -> "CondState":
        return cls(*x)


def step(st: CondState, t: float, fire: bool, clear: bool, for_s: float = 0.0,
         keep_firing_for_s: float = 0.0, late: bool = False) -> str | None:
    """Advance `st` to event time `t`; returns FIRE, RESOLVE or None."""
    if st.phase == INACTIVE:
        if not fire:
            return None
        st.phase, st.since, st.late = PENDING, t, late
        # fall through: `for: 0` fires at once
    if st.phase == PENDING:
        if not fire:
            st.phase, st.since, st.late = INACTIVE, None, False
            return None
        st.late = st.late or late
        if t - (st.since if st.since is not None else t) >= for_s:
            st.phase, st.clear_since = FIRING, None
            return FIRE
        return None
    # FIRING
    if not clear:
        st.clear_since = None
        return None
    if st.clear_since is None or t < st.clear_since:
        st.clear_since = t
    if t - st.clear_since >= keep_firing_for_s:
        st.phase, st.since, st.clear_since, st.late, st.level = INACTIVE, None, None, False, 0
        return RESOLVE
    return None
