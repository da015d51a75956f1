"""The demo catalog (sensors/demo_catalog.yaml) loads and is consistent."""

from __future__ import annotations

import re
import unicodedata

from ioc.catalog import Catalog


def test_demo_catalog_loads(catalog: Catalog):
    assert catalog.province == "vinh-phuc"
    assert catalog.roots() == ["vinh-phuc"]
    assert 35 <= len(catalog.stations) <= 45
    assert 9 <= len(catalog.sites) <= 12
    t = catalog.targets
    assert (t.on_time_rate, t.online_rate, t.digitization_rate, t.online_payment_rate) == (0.98, 0.5, 0.8, 0.8)


def test_units_hierarchy(catalog: Catalog):
    districts = [u for u in catalog.units.values() if u.level == "district"]
    names = {u.name for u in districts}
    for n in ("Vĩnh Yên", "Phúc Yên", "Tam Đảo", "Tam Dương", "Bình Xuyên", "Yên Lạc", "Vĩnh Tường", "Lập Thạch", "Sông Lô"):
        assert any(n in name for name in names), n
    for d in districts:
        assert d.parent == "vinh-phuc"
        kids = catalog.children.get(d.id, [])
        assert 2 <= len(kids) <= 4
        assert all(catalog.units[k].level == "commune" for k in kids)
    for u in catalog.units.values():
        assert u.name_en, u.id
        # name_en has no diacritics
        assert unicodedata.normalize("NFD", u.name_en).encode("ascii", "ignore").decode() == u.name_en, u.name_en
        if u.level == "commune":
            assert catalog.ancestors(u.id)[-1] == "vinh-phuc"


def test_stations_consistent(catalog: Catalog):
    for s in catalog.stations.values():
        assert re.fullmatch(r"VP-\d{3}", s.id)
        assert 21.1 <= s.lat <= 21.6 and 105.35 <= s.lon <= 105.8, s.id
        assert catalog.units[s.district].level == "district"
        assert catalog.units[s.commune].level == "commune"
        assert catalog.units[s.commune].parent == s.district
        assert s.terrain in ("midland_mountain", "plain_coastal"), s.id
    mountain = [s for s in catalog.stations.values() if s.district in ("tam-dao", "lap-thach", "song-lo")]
    assert mountain and all(s.susceptibility in ("high", "very_high") for s in mountain)
    assert all(s.terrain == "midland_mountain" for s in mountain)
    plain = [s for s in catalog.stations.values() if s.district in ("vinh-tuong", "yen-lac")]
    assert plain and all(s.terrain == "plain_coastal" for s in plain)
    # Art. 46 inputs: every commune has both classes, Tam Đảo's higher than the plain's; the province is KV4
    for u in catalog.units.values():
        if u.level == "commune":
            assert u.flash_flood_susceptibility and u.landslide_susceptibility, u.id
            assert catalog.region_group(u.id) == "KV4"
    assert all(catalog.susceptibility(c) in ("high", "very_high") for c in catalog.children["tam-dao"])
    assert all(catalog.susceptibility(c) in ("low", "medium") for c in catalog.children["vinh-tuong"])


def test_sites_consistent(catalog: Catalog):
    cams: list[str] = []
    for site in catalog.sites.values():
        assert site.unit in catalog.units
        assert site.counters >= 1 and site.cameras
        assert 21.1 <= site.lat <= 21.6 and 105.35 <= site.lon <= 105.8
        cams.extend(site.cameras)
    assert len(cams) == len(set(cams))
    assert catalog.sites["vinh-phuc"].unit == "vinh-phuc"
    assert all(re.fullmatch(r"cam-[a-z]+-\d", c) for c in cams)
