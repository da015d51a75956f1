"""Article 44 (heavy rain): the level of one area from its band, days of rain, terrain and extent.

Extent is the share of the province's communes (or districts) in the band;
a province's own gauges never show "several provinces", so those rows match
only through the configured fallback (tables.fallback44).
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.risk.tables import BANDS, Row44, Tables


@dataclass(frozen=True)
class Level44:
    level: int
    row: Row44
    band: str
    days: int
    extent_share: float
    extent_fallback: bool  # matched ignoring extent (no row had this extent)


def band_of(tables: Tables, mm_24h: float | None, mm_12h: float | None) -> str | None:
    """The highest band the amounts reach: A is 100–200 mm in 24 h or 50–100 mm in 12 h."""
    a, b, c = tables.bands
    v24 = mm_24h if mm_24h is not None else 0.0
    if v24 > c.min_24h_mm:
        return "C"
    if v24 > b.min_24h_mm:
        return "B"
    if v24 >= a.min_24h_mm or (mm_12h is not None and a.min_12h_mm is not None and mm_12h >= a.min_12h_mm):
        return "A"
    return None


def extent_class(share: float) -> str:
    """"under half" / "over half" of one province; exactly half is neither (a gap: the fallback decides)."""
    if share < 0.5:
        return "under_half"
    if share > 0.5:
        return "over_half"
    return "half"


def level44(tables: Tables, band: str, days_by_band: dict[str, int], terrain: str,
            share_by_band: dict[str, float]) -> Level44 | None:
    """The highest row any band at or under `band` supports; days_by_band[X]: consecutive days at X or above.

    An area in band B also counts as in band A (its 24 h sum exceeds 100 mm), so
    a long band-A spell with a band-B peak gets the higher of the two rows.
    """
    n = BANDS.index(band) + 1
    key = tuple((days_by_band.get(x, 1), extent_class(share_by_band.get(x, 0.0))) for x in BANDS[:n])
    hit = _best_row(tables, key, terrain)
    if hit is None:
        return None
    row, x, fallback = hit
    return Level44(row.level, row, x, days_by_band.get(x, 1), share_by_band.get(x, 0.0), fallback)


_CACHE: dict[tuple, tuple[Row44, str, bool] | None] = {}


def _best_row(tables: Tables, key: tuple, terrain: str) -> tuple[Row44, str, bool] | None:
    """(row, band, matched ignoring extent) for ((days, extent class) per band from A up, terrain); memoised:
    the inputs take few values, and this runs for every gauge in a band after every batch."""
    ck = (id(tables), key, terrain)
    if ck in _CACHE:
        return _CACHE[ck]
    best: tuple[Row44, str, bool] | None = None
    for x, (days, ext) in zip(BANDS, key):
        hit = [r for r in tables.rows44 if r.matches(x, days, terrain, ext)]
        fallback = False
        if not hit and tables.fallback44 == "ignore_extent":
            hit, fallback = [r for r in tables.rows44 if r.matches(x, days, terrain, None)], True
        if hit:
            row = max(hit, key=lambda r: r.level)
            if best is None or row.level >= best[0].level:  # a tie: the higher band, the one observed
                best = (row, x, fallback)
    if len(_CACHE) > 4096:
        _CACHE.clear()
    _CACHE[ck] = best
    return best
