"""What exists in the province (docs/architecture.md §3.2): rain stations, administrative
units (province → district → commune), one-stop-shop sites, cameras.

Loaded from YAML once; errors name the file, the entry and what is wrong.
Ids missing from the catalog are still processed (flagged unknown).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml
from msgspec import Meta, Struct

from ioc.errors import UserError

Level = Literal["province", "district", "commune"]
Susceptibility = Literal["low", "medium", "high", "very_high"]
Terrain = Literal["midland_mountain", "plain_coastal"]  # Decision 18/2021 Art. 44 (docs/domain.md §2)
RegionGroup = Literal["KV1", "KV2", "KV3", "KV4", "none"]  # Decision 18/2021 Art. 46 province groups
_SUS_RANK = {"low": 0, "medium": 1, "high": 2, "very_high": 3}


class Station(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    id: str
    name: str
    lat: float
    lon: float
    district: str | None = None  # unit id
    commune: str | None = None  # unit id
    terrain: Terrain | None = None  # of the gauge's area, for the Art. 44 duration rows
    # the gauge site's exposure, used by the rain simulator's orography; the Art. 46 class is the commune's
    susceptibility: Susceptibility = "medium"
    # this gauge's physical limits (alerts.detectors.RainLimits; default: the implausible_reading rule's):
    # a reading beyond them is quarantined, kept out of the sums (docs/architecture.md §4)
    rain_max_reading_mm: Annotated[float, Meta(gt=0)] | None = None
    rain_max_rate_mm_h: Annotated[float, Meta(gt=0)] | None = None


class Unit(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    id: str
    name: str
    level: Level
    parent: str | None = None
    name_en: str | None = None
    # official administrative unit code (GSO list, docs/domain.md §4): 2 digits for a province, 3 for a
    # district, 5 for a commune; CAP messages carry it as a geocode
    code: str | None = None
    # boundary as [[lat, lon], ...], closed (first point = last), for CAP areas; optional
    polygon: tuple[tuple[float, float], ...] | None = None
    # communes: the national flash-flood and landslide warning map's classes (Decision 18/2021 Art. 46)
    flash_flood_susceptibility: Susceptibility | None = None
    landslide_susceptibility: Susceptibility | None = None
    # a merged province spanning Art. 46 groups: the pre-2025 province of this unit (or its group)
    former_province: str | None = None
    region_group: RegionGroup | None = None


_CODE_DIGITS = {"province": 2, "district": 3, "commune": 5}


def _check_unit(u: Unit, source: str) -> None:
    """A unit's code and polygon are usable as CAP geocode and polygon, or the catalog is refused."""
    where = f"{source}: units[{u.id}]"
    if u.code is not None:
        n = _CODE_DIGITS[u.level]
        if not (u.code.isascii() and u.code.isdigit() and len(u.code) == n):
            raise CatalogError(f"{where}.code: expected the {n}-digit official code of a {u.level}, got {u.code!r}")
    if u.polygon is not None:
        pts = u.polygon
        if len(pts) < 4 or tuple(pts[0]) != tuple(pts[-1]):
            raise CatalogError(f"{where}.polygon: expected at least 4 [lat, lon] points, the last equal to the first")
        for lat, lon in pts:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise CatalogError(f"{where}.polygon: [{lat}, {lon}] is not a latitude, longitude pair")
            if not _in_vietnam(lat, lon):
                raise CatalogError(f"{where}.polygon: [{lat}, {lon}] is outside Vietnam (points are [lat, lon])")
    if u.level != "commune" and (u.flash_flood_susceptibility or u.landslide_susceptibility):
        raise CatalogError(f"{where}: susceptibility classes belong to communes, not to a {u.level}")
    _check_former_province(u.former_province, f"{where}.former_province")


def _check_former_province(name: str | None, where: str) -> None:
    """A pre-2025 province must be one the Art. 46 appendix lists (alerts/risk/decision18.yaml)."""
    if name is None:
        return
    from alerts.risk.tables import default_tables

    groups = default_tables().region_groups
    if name not in groups:
        import difflib

        close = difflib.get_close_matches(name, list(groups), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (a province in no group: set region_group: none)"
        raise CatalogError(f"{where}: {name!r} is not a province of the Decision 18/2021 Art. 46 region groups{hint}")


class Site(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    id: str
    name: str
    unit: str | None = None
    counters: int = 1
    cameras: list[str] = []
    lat: float | None = None
    lon: float | None = None
    waiting_per_counter_max: float = 8.0
    service_minutes_per_person: float = 6.0  # for estimated waiting time


class Targets(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Decision 766 targets (ratios 0–1); differ by province and year, so configuration."""

    on_time_rate: float = 0.98
    online_rate: float = 0.50
    digitization_rate: float = 0.80
    online_payment_rate: float = 0.80


class CatalogFile(Struct, kw_only=True, forbid_unknown_fields=True):
    province: str = ""
    name: str = ""
    stations: list[Station] = []
    units: list[Unit] = []
    sites: list[Site] = []
    targets: Targets = Targets()
    # Decision 18/2021 Art. 46: the province's region group, given directly or as its pre-2025 province
    former_province: str | None = None
    region_group: RegionGroup | None = None


class CatalogError(UserError):
    """A catalog that cannot be used; the message names the file, the entry and the field."""


# Vietnam with its islands (Hoàng Sa, Trường Sa): a point outside is a typo or swapped lat/lon
VN_LAT = (6.0, 23.5)
VN_LON = (102.0, 118.0)


def _in_vietnam(lat: float, lon: float) -> bool:
    return VN_LAT[0] <= lat <= VN_LAT[1] and VN_LON[0] <= lon <= VN_LON[1]


def _check_point(lat: float | None, lon: float | None, where: str) -> None:
    if lat is None and lon is None:
        return
    if lat is None or lon is None:
        raise CatalogError(f"{where}: give both lat and lon, or neither")
    if not _in_vietnam(lat, lon):
        hint = "; lat and lon look swapped" if _in_vietnam(lon, lat) else ""
        raise CatalogError(f"{where}.lat/lon: ({lat:g}, {lon:g}) is outside Vietnam (lat {VN_LAT[0]:g}..{VN_LAT[1]:g}, "
                           f"lon {VN_LON[0]:g}..{VN_LON[1]:g}){hint}")


def _check_targets(t: Targets, source: str) -> None:
    """Targets are fractions 0..1; a percentage is the usual mistake."""
    for name in ("on_time_rate", "online_rate", "digitization_rate", "online_payment_rate"):
        v = getattr(t, name)
        if 0.0 <= v <= 1.0:
            continue
        fix = f": write {v / 100:g}" if 1.0 < v <= 100.0 else ""
        raise CatalogError(f"{source}: targets.{name}: {v:g} is not a fraction between 0 and 1{fix}")


def _check_site(site: Site, units: dict, source: str) -> None:
    where = f"{source}: sites[{site.id}]"
    if site.unit is not None and site.unit not in units:
        raise CatalogError(f"{where}.unit: {site.unit!r} is not a unit in the catalog")
    if site.counters < 1:
        raise CatalogError(f"{where}.counters: {site.counters} must be 1 or more")
    for name in ("waiting_per_counter_max", "service_minutes_per_person"):
        if not getattr(site, name) > 0:
            raise CatalogError(f"{where}.{name}: {getattr(site, name):g} must be above 0")
    _check_point(site.lat, site.lon, where)


def _check_station(s: Station, units: dict, source: str) -> None:
    where = f"{source}: stations[{s.id}]"
    for name, level in (("district", "district"), ("commune", "commune")):
        uid = getattr(s, name)
        if uid is None:
            continue
        if uid not in units:
            raise CatalogError(f"{where}.{name}: {uid!r} is not a unit in the catalog")
        if units[uid].level != level:
            raise CatalogError(f"{where}.{name}: {uid!r} is a {units[uid].level}, not a {level}")
    _check_point(s.lat, s.lon, where)


class Catalog:
    """Indexed, validated catalog."""

    def __init__(self, data: CatalogFile, source: str = "<memory>") -> None:
        self.source = source
        self.province = data.province
        self.name = data.name
        self.targets = data.targets
        _check_former_province(data.former_province, f"{source}: former_province")
        self.former_province, self.region_group_setting = data.former_province, data.region_group
        self._group = data.region_group
        if self._group is None and data.former_province is not None:
            from alerts.risk.tables import default_tables

            self._group = default_tables().region_groups[data.former_province]
        self.stations = _index(data.stations, "stations", source)
        self.units = _index(data.units, "units", source)
        self.sites = _index(data.sites, "sites", source)
        _check_targets(data.targets, source)
        self.camera_site: dict[str, str] = {}
        for site in data.sites:
            for cam in site.cameras:
                if cam in self.camera_site:
                    raise CatalogError(f"{source}: sites[{site.id}].cameras: camera {cam!r} is already a camera of "
                                       f"site {self.camera_site[cam]!r} (a camera belongs to one site)")
                self.camera_site[cam] = site.id
        codes: dict[str, str] = {}
        for u in data.units:
            if u.parent is not None and u.parent not in self.units:
                raise CatalogError(f"{source}: units[{u.id}]: parent {u.parent!r} is not a unit in the catalog")
            _check_unit(u, source)
            if u.code is not None and codes.setdefault(u.code, u.id) != u.id:
                raise CatalogError(f"{source}: units[{u.id}].code: {u.code} is already the code of {codes[u.code]}")
        self._ancestors: dict[str, tuple[str, ...]] = {}
        for u in data.units:
            self._ancestors[u.id] = self._walk(u.id, source)
        self.children: dict[str, list[str]] = {}
        for u in data.units:
            if u.parent:
                self.children.setdefault(u.parent, []).append(u.id)
        for s in data.stations:
            _check_station(s, self.units, source)
        for site in data.sites:
            _check_site(site, self.units, source)

    def region_group(self, unit_id: str) -> str | None:
        """Art. 46 group (KV1–KV4) of a unit: its own or nearest ancestor's, else the province's; None: no group."""
        for uid in (unit_id, *self.ancestors(unit_id)):
            u = self.units.get(uid)
            if u is None:
                continue
            if u.region_group is not None:
                return None if u.region_group == "none" else u.region_group
            if u.former_province is not None:
                from alerts.risk.tables import default_tables

                return default_tables().region_groups[u.former_province]
        return None if self._group in (None, "none") else self._group

    def susceptibility(self, commune_id: str) -> str | None:
        """The commune's Art. 46 class: the higher of its flash-flood and landslide classes (None: unknown)."""
        u = self.units.get(commune_id)
        if u is None:
            return None
        vals = [v for v in (u.flash_flood_susceptibility, u.landslide_susceptibility) if v is not None]
        return max(vals, key=_SUS_RANK.__getitem__) if vals else None

    def _walk(self, unit_id: str, source: str) -> tuple[str, ...]:
        chain: list[str] = []
        seen = {unit_id}
        parent = self.units[unit_id].parent
        while parent is not None:
            if parent in seen:
                raise CatalogError(f"{source}: units[{unit_id}]: parent chain has a cycle through {parent!r}")
            seen.add(parent)
            chain.append(parent)
            parent = self.units[parent].parent
        return tuple(chain)

    def ancestors(self, unit_id: str) -> tuple[str, ...]:
        """Parents of a unit, nearest first; () for the root or an unknown unit."""
        return self._ancestors.get(unit_id, ())

    def roots(self) -> list[str]:
        return [u.id for u in self.units.values() if u.parent is None]


def _index(items: list, what: str, source: str) -> dict:
    out: dict = {}
    for item in items:
        if item.id in out:
            raise CatalogError(f"{source}: {what}[{item.id}]: duplicate id")
        out[item.id] = item
    return out


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog: {exc}") from exc
    return parse_catalog(text, str(path))


def parse_catalog(text: str, source: str = "<memory>") -> Catalog:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: a catalog is a mapping with stations, units and sites")
    try:
        data = msgspec.convert(raw, CatalogFile)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{source}: {_name_entry(raw, str(exc))}") from exc
    return Catalog(data, source)


def _name_entry(raw: dict, message: str) -> str:
    """Turn msgspec's `$.stations[3].lat` into `stations[VP-004].lat` where possible."""
    import re

    m = re.search(r"\$\.(stations|units|sites)\[(\d+)\](.*)`", message)
    if not m:
        top = re.search(r"^Object contains unknown field `([^`]*)`$", message)
        if top:
            return f"{message} (a catalog's sections: {', '.join(CatalogFile.__struct_fields__)})"
        return message
    section, index, rest = m.group(1), int(m.group(2)), m.group(3)
    try:
        entry_id = raw[section][index].get("id", f"#{index}")
    except (KeyError, IndexError, AttributeError, TypeError):
        entry_id = f"#{index}"
    field = rest.rsplit(".", 1)[-1]
    hint = f" (expected one of {', '.join(_CHOICES[field])})" if field in _CHOICES else ""
    unknown = re.search(r"unknown field `([^`]*)`", message)
    if unknown:  # a misspelt key would otherwise be dropped without a word
        import difflib

        struct = {"stations": Station, "units": Unit, "sites": Site}[section]
        if rest.startswith(".targets"):
            struct = Targets
        near = difflib.get_close_matches(unknown.group(1), struct.__struct_fields__, n=1)
        hint = f" (did you mean `{near[0]}`?)" if near else f" (known fields: {', '.join(struct.__struct_fields__)})"
    return f"{section}[{entry_id}]{rest}: {message.split(' - at ')[0]}{hint}"


_SUS = ("low", "medium", "high", "very_high")
_CHOICES = {"terrain": ("midland_mountain", "plain_coastal"), "susceptibility": _SUS,
            "flash_flood_susceptibility": _SUS, "landslide_susceptibility": _SUS,
            "region_group": ("KV1", "KV2", "KV3", "KV4", "none")}


def demo_catalog() -> Catalog:
    """The demo province that ships with the package."""
    text = resources.files("sensors").joinpath("demo_catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(text, "sensors/demo_catalog.yaml")
