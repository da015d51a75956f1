"""Every cell of Decision 18/2021 Art. 46 (alerts/risk/decision18.yaml), the undefined cells and the fallbacks."""

from __future__ import annotations

import pytest

from alerts.risk.article46 import level46
from alerts.risk.tables import default_tables

T = default_tables()
# the official table: susceptibility → band → level in KV1..KV4 (None: "–", no level)
TABLE = {
    "low": {"A": [1, None, None, None], "B": [1, 1, None, None], "C": [2, 2, 1, None]},
    "medium": {"A": [1, 1, None, None], "B": [2, 2, 1, None], "C": [2, 2, 2, 1]},
    "high": {"A": [2, 2, 1, 1], "B": [3, 3, 2, 1], "C": [3, 3, 2, 2]},
    "very_high": {"A": [3, 3, 2, 1], "B": [3, 3, 3, 2], "C": [3, 3, 3, 2]},
}
PRIOR = {"A": 1, "B": 3, "C": 3}  # previous rain days each column asks for
CELLS = [(s, b, f"KV{i + 1}", lv) for s, cols in TABLE.items() for b, row in cols.items() for i, lv in enumerate(row)]


@pytest.mark.parametrize("sus,band,group,level", CELLS, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CELLS])
def test_article46_cells(sus, band, group, level):
    lv = level46(T, band, PRIOR[band], sus, group)
    if level is None:
        assert lv is None  # "–" is no level, not level 1
    else:
        assert (lv.level, lv.band, lv.group, lv.susceptibility) == (level, band, group, sus)


def test_a_band_a_with_two_prior_days_and_more_is_still_column_a():
    assert level46(T, "A", 2, "high", "KV1").level == 2
    assert level46(T, "A", 6, "high", "KV1").level == 2


@pytest.mark.parametrize("band,prior,col", [("B", 2, "A"), ("B", 1, "A"), ("C", 2, "A"), ("C", 1, "A")])
def test_too_few_prior_days_reads_the_lower_column(band, prior, col):
    lv = level46(T, band, prior, "very_high", "KV3")
    assert lv.band == col and lv.level == TABLE["very_high"][col][2]


@pytest.mark.parametrize("band,prior,sus,group", [
    ("A", 0, "very_high", "KV1"),  # no rain before today: no column applies
    ("C", 0, "very_high", "KV1"),
    (None, 5, "very_high", "KV1"),  # not heavy rain
    ("C", 3, "very_high", None),  # a province in no group (e.g. Hà Nội)
    ("C", 3, None, "KV1"),  # a commune without a susceptibility class
])
def test_no_level(band, prior, sus, group):
    assert level46(T, band, prior, sus, group) is None


def test_region_groups_of_pre_2025_provinces():
    g = T.region_groups
    assert g["Vĩnh Phúc"] == "KV4" and g["Hòa Bình"] == "KV1" and g["Phú Thọ"] == "KV3" and g["Nghệ An"] == "KV2"
    assert "Hà Nội" not in g and "Hải Dương" not in g
    assert len(g) == 7 + 7 + 15 + 7
