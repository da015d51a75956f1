"""Decision 766-style unit score and ranking of units (pure functions).

Score (0–100): for each of the online, digitization, online-payment and
on-time rates that has data, component = min(1, rate / target) × 100, with
the targets from the catalog (``Catalog.targets``); the score is the mean
of the components that have data, and no score when none has data.

Rank: 1 = best among the units of the same group that have a score; the
group is the catalog level, except that a unit without a parent (the
province) is ranked apart from the units below it that share its level (its
departments), so the departments rank 1…N.  Ties (equal rounded scores) are
ordered by entity id.  Units absent from the catalog have no level and are
not ranked (they still get a score).
"""

from __future__ import annotations

from typing import Mapping

from ioc.catalog import Targets
from ioc.records import round_value

# rate name → Targets attribute
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("dossier_online_rate", "online_rate"),
    ("dossier_digitization_rate", "digitization_rate"),
    ("dossier_online_payment_rate", "online_payment_rate"),
    ("dossier_on_time_rate", "on_time_rate"),
)


def unit_score(rates: Mapping[str, float | None], targets: Targets) -> float | None:
    """Mean of the components with data, rounded to 3 decimals; None without data."""
    parts = []
    for name, attr in COMPONENTS:
        rate = rates.get(name)
        if rate is None:
            continue
        target = getattr(targets, attr)
        parts.append(100.0 if target <= 0 else min(1.0, rate / target) * 100.0)
    if not parts:
        return None
    return round_value(sum(parts) / len(parts))


def rank_units(scores: Mapping[str, float], level_of: Mapping[str, str]) -> dict[str, int]:
    """Rank per group (`level_of`: unit → its level or group): 1 = highest score, ties by entity id;
    units without one are skipped."""
    by_level: dict[str, list[tuple[float, str]]] = {}
    for unit, score in scores.items():
        level = level_of.get(unit)
        if level is None or score is None:
            continue
        by_level.setdefault(level, []).append((-score, unit))
    ranks: dict[str, int] = {}
    for entries in by_level.values():
        entries.sort()
        for i, (_, unit) in enumerate(entries, 1):
            ranks[unit] = i
    return ranks
