"""Article 46 (flash flood, landslide, subsidence from rain): levels 1–3 of one commune.

From the 24 h band, the days with rain before today, the commune's
susceptibility and its province's region group; an undefined cell ("–")
gives no level, and so does a province in no group.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.risk.tables import GROUPS, Tables


@dataclass(frozen=True)
class Level46:
    level: int
    band: str  # the column used (after the band fallback)
    prior_days: int
    susceptibility: str
    group: str


def level46(tables: Tables, band: str | None, prior_days: int, susceptibility: str | None,
            group: str | None) -> Level46 | None:
    if band is None or susceptibility is None or group not in GROUPS:
        return None
    col: str | None = band
    while col is not None and prior_days < tables.prior_days_min[col]:
        col = tables.band_fallback46.get(col)  # ours: the previous-days condition fails → the lower column
    if col is None:
        return None
    cell = tables.table46[susceptibility][col][GROUPS.index(group)]
    return None if cell is None else Level46(cell, col, prior_days, susceptibility, group)
