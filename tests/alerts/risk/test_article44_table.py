"""Every row of Decision 18/2021 Art. 44 (alerts/risk/decision18.yaml), its gaps and the fallback, in both terrains."""

from __future__ import annotations

import dataclasses

import pytest

from alerts.risk.article44 import band_of, level44
from alerts.risk.tables import default_tables

T = default_tables()
M, P = "midland_mountain", "plain_coastal"
UNDER, OVER = 0.3, 0.7  # share of the province's communes in the band

# band, days, terrain, extent share → level, clause (vi), matched only through the fallback (ignoring extent)
ROWS = [
    # level 1: A, 1–2 days, any terrain, under half of the province
    ("A", 1, M, UNDER, 1, "Điều 44 khoản 1", False),
    ("A", 2, M, UNDER, 1, "Điều 44 khoản 1", False),
    ("A", 1, P, UNDER, 1, "Điều 44 khoản 1", False),
    ("A", 2, P, UNDER, 1, "Điều 44 khoản 1", False),
    # level 2 (a): A, > 2–4 days (M) / > 2 days (P), over half
    ("A", 3, M, OVER, 2, "Điều 44 khoản 2 điểm a", False),
    ("A", 4, M, OVER, 2, "Điều 44 khoản 2 điểm a", False),
    ("A", 3, P, OVER, 2, "Điều 44 khoản 2 điểm a", False),
    ("A", 9, P, OVER, 2, "Điều 44 khoản 2 điểm a", False),
    # level 2 (b): B, 1–2 days, any terrain, over half
    ("B", 1, M, OVER, 2, "Điều 44 khoản 2 điểm b", False),
    ("B", 2, P, OVER, 2, "Điều 44 khoản 2 điểm b", False),
    # levels 3–4 are "over several provinces": one province's gauges reach them only through the fallback
    ("A", 5, M, OVER, 3, "Điều 44 khoản 3 điểm a", True),
    ("B", 3, M, OVER, 3, "Điều 44 khoản 3 điểm b", True),
    ("B", 4, M, UNDER, 3, "Điều 44 khoản 3 điểm b", True),
    ("B", 3, P, OVER, 3, "Điều 44 khoản 3 điểm b", True),
    ("B", 8, P, UNDER, 3, "Điều 44 khoản 3 điểm b", True),
    ("C", 1, M, OVER, 3, "Điều 44 khoản 3 điểm c", True),
    ("C", 2, M, UNDER, 3, "Điều 44 khoản 3 điểm c", True),
    ("C", 1, P, UNDER, 3, "Điều 44 khoản 3 điểm c", True),
    ("C", 4, P, OVER, 3, "Điều 44 khoản 3 điểm c", True),
    ("B", 5, M, OVER, 4, "Điều 44 khoản 4 điểm a", True),
    ("C", 3, M, UNDER, 4, "Điều 44 khoản 4 điểm b", True),
    ("C", 5, P, OVER, 4, "Điều 44 khoản 4 điểm b", True),
    # gaps: no row has this extent; the fallback takes the highest row matching band, days and terrain
    ("A", 1, M, OVER, 1, "Điều 44 khoản 1", True),  # A for 1–2 days over half a province
    ("A", 2, P, 0.5, 1, "Điều 44 khoản 1", True),  # exactly half is neither under nor over
    ("A", 3, M, UNDER, 2, "Điều 44 khoản 2 điểm a", True),
    ("A", 5, P, UNDER, 2, "Điều 44 khoản 2 điểm a", True),  # plain: no level 3 for band A
    ("B", 1, P, UNDER, 2, "Điều 44 khoản 2 điểm b", True),
]


def days_of(band: str, days: int) -> dict[str, int]:
    return {x: days for x in "ABC"[: "ABC".index(band) + 1]}


@pytest.mark.parametrize("band,days,terrain,share,level,clause,fallback", ROWS,
                         ids=[f"{r[0]}-{r[1]}d-{r[2][:5]}-{r[3]}" for r in ROWS])
def test_article44_rows(band, days, terrain, share, level, clause, fallback):
    lv = level44(T, band, days_of(band, days), terrain, {x: share for x in "ABC"})
    assert lv is not None
    assert (lv.level, lv.row.clause["vi"], lv.extent_fallback) == (level, clause, fallback)
    assert lv.days == days and lv.extent_share == share


def test_every_configured_row_is_reached():
    hit = set()
    for band, days, terrain, share, *_ in ROWS:
        lv = level44(T, band, days_of(band, days), terrain, {x: share for x in "ABC"})
        hit.add(id(lv.row))
    assert hit == {id(r) for r in T.rows44}


@pytest.mark.parametrize("band,days,terrain,share", [("A", 1, M, OVER), ("B", 3, M, OVER), ("C", 1, P, UNDER)])
def test_without_fallback_the_gaps_give_no_level(band, days, terrain, share):
    strict = dataclasses.replace(T, fallback44="none")
    lv = level44(strict, band, days_of(band, days), terrain, {x: share for x in "ABC"})
    # band B/C still reach the band-A rows their amount implies, when those match exactly
    assert lv is None or (lv.band == "A" and not lv.extent_fallback)


def test_a_long_band_a_spell_with_a_band_b_peak_takes_the_higher_row():
    # 5 days in band A on the mountain (level 3 via A) beats 1 day in band B (level 2)
    lv = level44(T, "B", {"A": 5, "B": 1}, M, {"A": OVER, "B": OVER})
    assert (lv.level, lv.band, lv.days) == (3, "A", 5)


@pytest.mark.parametrize("mm24,mm12,band", [
    (99.9, 10, None), (100, 0, "A"), (60, 49.9, None), (60, 50, "A"), (200, 0, "A"), (200.1, 0, "B"),
    (400, 0, "B"), (400.1, 0, "C"), (None, 50, "A"), (None, None, None)])
def test_bands(mm24, mm12, band):
    """100–200 mm includes both ends; over 200–400 is (200, 400]; A also by 50 mm in 12 h."""
    assert band_of(T, mm24, mm12) == band
