"""Seeded, deterministic simulators of the three feeds (rain, dossier, camera).

    sims = demo_simulators(catalog, seed=42, start=epoch_s)
    for sim in sims:
        events = sim.advance(until=epoch_s)   # arrived in (previous until, until], in order

Same catalog + seed + start → the same events, however the span is chopped
into `advance` calls (see base.py).  How a runtime drives them is in
`demo_start` below and in sensors/README.md.
"""

from __future__ import annotations

from ioc.catalog import Catalog

from .base import ChunkedSimulator, Simulator
from .cameras import CameraSimulator
from .dossiers import DossierSimulator, agency_codes
from .rain import RainSimulator
from .worktime import previous_working_morning

__all__ = [
    "CameraSimulator",
    "ChunkedSimulator",
    "DossierSimulator",
    "RainSimulator",
    "Simulator",
    "agency_codes",
    "demo_simulators",
    "demo_start",
]


def demo_simulators(
    catalog: Catalog,
    seed: int = 42,
    start: float = 0.0,
    *,
    storm_at: float | None = None,
    incidents: bool = True,
) -> list[ChunkedSimulator]:
    """[RainSimulator, DossierSimulator, CameraSimulator] sharing seed and start.

    storm_at: when the scripted demo storm begins (default start + 30 min).
    incidents: False turns off the scripted storm, link outage and silent station.
    """
    return [
        RainSimulator(catalog, seed=seed, start=start, storm_at=storm_at, incidents=incidents),
        DossierSimulator(catalog, seed=seed, start=start),
        CameraSimulator(catalog, seed=seed, start=start),
    ]


def demo_start(now_s: float) -> tuple[float, float]:
    """(start, storm_at) for a live demo begun at wall-clock `now_s`.

    start = 07:00 local of the previous working day (Mon–Fri), so the backfill
    (`advance(now)` at once, well under a second per simulated day) fills
    today's and yesterday's dossier indicators, a full office day of queues
    and overdue dossiers; storm_at = now − 3 h, so the demo storm is at its
    height when the wall opens: `rain_3h_intense` is firing or about to fire.  At the
    default speed 1 (ioc/demo.py) the wall stays busy for hours: the storm has about
    three hours to go and its weaker trailing cell (3 h behind) about six.
    """
    start = previous_working_morning(now_s)
    return start, max(start, now_s - 3 * 3600.0)


def advance_all(sims: list, until: float) -> list:
    """Every simulator's events up to `until`, in arrival order (not re-sorted by event
    time: a gauge's buffered upload must arrive late, as it would in the field)."""
    return [ev for sim in sims for ev in sim.advance(until)]
