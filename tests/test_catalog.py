"""Catalog loading: clear errors naming file, entry and problem; roll-up structure."""

import pytest

from ioc.catalog import CatalogError, demo_catalog, load_catalog, parse_catalog

UNITS = """
units:
  - {id: p, name: P, level: province}
  - {id: d, name: D, level: district, parent: p}
  - {id: c, name: C, level: commune, parent: d}
"""


def test_ancestors_and_children():
    cat = parse_catalog(UNITS)
    assert cat.ancestors("c") == ("d", "p")
    assert cat.ancestors("p") == ()
    assert cat.ancestors("unknown") == ()
    assert cat.children == {"p": ["d"], "d": ["c"]}
    assert cat.roots() == ["p"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("stations:\n  - {id: VP-1, name: a, lat: north, lon: 105}\n", "stations[VP-1].lat: Expected `float`, got `str`"),
        ("stations:\n  - {id: VP-1, name: a, lon: 105}\n", "stations[VP-1]: Object missing required field `lat`"),
        ("units:\n  - {id: a, name: A, level: province}\n  - {id: a, name: B, level: province}\n", "units[a]: duplicate id"),
        ("units:\n  - {id: a, name: A, level: district, parent: nowhere}\n", "units[a]: parent 'nowhere' is not a unit"),
        ("units:\n  - {id: a, name: A, level: district, parent: b}\n  - {id: b, name: B, level: district, parent: a}\n", "cycle"),
        ("units:\n  - {id: a, name: A, level: county}\n", "units[a].level"),
        ("stations: [\n", "not valid YAML"),
        ("- just a list\n", "a catalog is a mapping"),
        # a misspelt key is refused with the field it probably means, not dropped without a word
        ("units:\n  - {id: a, name: A, level: province}\nstations:\n  - {id: S, name: S, lat: 21, lon: 105.5, comune: a}\n",
         "stations[S]: Object contains unknown field `comune` (did you mean `commune`?)"),
        ("units:\n  - {id: a, name: A, level: province, paernt: b}\n", "units[a]: Object contains unknown field `paernt` (did you mean `parent`?)"),
        ("site:\n  - {id: x}\n", "unknown field `site` (a catalog's sections: "),
    ],
)
def test_errors_name_the_entry_and_the_problem(text, expected):
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, "province.yaml")
    assert str(err.value).startswith("province.yaml: ")
    assert expected in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "nope.yaml")


def test_demo_catalog_ships_with_the_package():
    cat = demo_catalog()
    assert len(cat.stations) >= 30 and len(cat.sites) >= 8
    assert all(cat.ancestors(u)[-1] == "vinh-phuc" for u in cat.units if u != "vinh-phuc")
    assert 0 < cat.targets.on_time_rate <= 1
