"""Catalog attributes the Decision 18 rules read, validated at load with errors that name the entry."""

from __future__ import annotations

import pytest

from ioc.catalog import CatalogError, parse_catalog

# a merged province (since 07/2025) spanning Art. 46 groups: Phú Thọ (KV3) with former Hòa Bình (KV1) and
# Vĩnh Phúc (KV4) communes; one commune set by group directly
MERGED = """
province: phu-tho
former_province: "Phú Thọ"
units:
  - {id: phu-tho, name: Tỉnh Phú Thọ, level: province}
  - {id: d-hb, name: Khu vực Hòa Bình, level: district, parent: phu-tho, former_province: "Hòa Bình"}
  - {id: c-hb, name: Xã A, level: commune, parent: d-hb, flash_flood_susceptibility: high, landslide_susceptibility: very_high}
  - {id: c-vp, name: Xã B, level: commune, parent: phu-tho, former_province: "Vĩnh Phúc", flash_flood_susceptibility: low}
  - {id: c-pt, name: Xã C, level: commune, parent: phu-tho}
  - {id: c-none, name: Xã D, level: commune, parent: phu-tho, region_group: none}
stations:
  - {id: S1, name: S1, lat: 21.0, lon: 105.0, commune: c-hb, district: d-hb, terrain: midland_mountain}
"""


def test_region_group_by_former_province_and_susceptibility_of_a_commune():
    cat = parse_catalog(MERGED, "merged.yaml")
    assert [cat.region_group(u) for u in ("c-hb", "c-vp", "c-pt", "c-none", "phu-tho")] == \
        ["KV1", "KV4", "KV3", None, "KV3"]
    assert cat.susceptibility("c-hb") == "very_high"  # the higher of the two classes
    assert cat.susceptibility("c-vp") == "low" and cat.susceptibility("c-pt") is None
    assert cat.stations["S1"].terrain == "midland_mountain"


def test_a_province_in_no_group():
    cat = parse_catalog(MERGED.replace('former_province: "Phú Thọ"\n', "region_group: none\n", 1), "x.yaml")
    assert cat.region_group("c-pt") is None and cat.region_group("c-hb") == "KV1"


@pytest.mark.parametrize("old,new,error", [
    ('former_province: "Phú Thọ"\n', 'former_province: "Phu Tho"\n',
     "x.yaml: former_province: 'Phu Tho' is not a province of the Decision 18/2021 Art. 46 region groups "
     "(did you mean Phú Thọ"),
    ('former_province: "Phú Thọ"\n', 'former_province: "Hà Nội"\n', "(a province in no group: set region_group: none)"),
    ('former_province: "Hòa Bình"}', 'former_province: "Hoa Binh"}', "x.yaml: units[d-hb].former_province: 'Hoa Binh'"),
    ("terrain: midland_mountain", "terrain: hills", "stations[S1].terrain: Invalid enum value 'hills' (expected one of midland_mountain, plain_coastal)"),
    ("landslide_susceptibility: very_high", "landslide_susceptibility: extreme",
     "units[c-hb].landslide_susceptibility"),
    ("level: district, parent: phu-tho,", "level: district, parent: phu-tho, landslide_susceptibility: high,",
     "x.yaml: units[d-hb]: susceptibility classes belong to communes, not to a district"),
    ("commune: c-hb, district", "commune: d-hb, district", "x.yaml: stations[S1].commune: 'd-hb' is a district"),
    ("region_group: none", "region_group: KV5", "units[c-none].region_group"),
])
def test_bad_attributes_are_refused_with_the_entry_named(old, new, error):
    assert old in MERGED
    with pytest.raises(CatalogError) as exc:
        parse_catalog(MERGED.replace(old, new, 1), "x.yaml")
    assert error in str(exc.value)
