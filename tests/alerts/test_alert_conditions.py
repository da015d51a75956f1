"""The event-time state machine: for, hysteresis, keep_firing_for (table-driven)."""

from __future__ import annotations

import pytest

from alerts.conditions import FIRE, FIRING, INACTIVE, PENDING, RESOLVE, CondState, step

# each step: (t, fire, clear) ; expected outcome per step
CASES = {
    "fires at once without for": (0, 0, [(0, True, False)], [FIRE]),
    "for: must hold 300 s": (300, 0, [(0, True, False), (120, True, False), (299, True, False), (300, True, False)],
                             [None, None, None, FIRE]),
    "for: interrupted restarts": (300, 0, [(0, True, False), (200, False, True), (400, True, False),
                                           (650, True, False), (700, True, False)], [None, None, None, None, FIRE]),
    "hysteresis: between thresholds stays firing": (0, 0, [(0, True, False), (10, False, False), (20, True, False),
                                                           (30, False, False)], [FIRE, None, None, None]),
    "clear resolves": (0, 0, [(0, True, False), (10, False, True)], [FIRE, RESOLVE]),
    "keep_firing_for holds the alert": (0, 120, [(0, True, False), (10, False, True), (100, False, True),
                                                 (130, False, True)], [FIRE, None, None, RESOLVE]),
    "keep_firing_for restarts when it re-fires": (0, 120, [(0, True, False), (10, False, True), (100, True, False),
                                                           (150, False, True), (260, False, True),
                                                           (270, False, True)],
                                                  [FIRE, None, None, None, None, RESOLVE]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_step_table(name):
    for_s, keep_s, steps, expected = CASES[name]
    st = CondState()
    got = [step(st, t, f, c, for_s, keep_s) for t, f, c in steps]
    assert got == expected


def test_phases_and_late_flag_carried_from_pending_start():
    st = CondState()
    assert step(st, 0, True, False, 60, late=True) is None and st.phase == PENDING and st.late
    assert step(st, 60, True, False, 60, late=False) == FIRE and st.phase == FIRING and st.late
    assert step(st, 70, False, True) == RESOLVE and st.phase == INACTIVE and not st.late
