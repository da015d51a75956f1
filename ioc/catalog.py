"""What exists in the province (docs/architecture.md §3.2): rain stations, administrative
units (province → district → commune), one-stop-shop sites, cameras.

Loaded from YAML once; errors name the file, the entry and what is wrong.
Ids missing from the catalog are still processed (flagged unknown).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec
import yaml
from msgspec import Struct

Level = Literal["province", "district", "commune"]
Susceptibility = Literal["low", "medium", "high", "very_high"]


class Station(Struct, kw_only=True, frozen=True):
    id: str
    name: str
    lat: float
    lon: float
    district: str | None = None  # unit id
    commune: str | None = None  # unit id
    region: int = 1  # Decision 18/2021 region group 1–4
    susceptibility: Susceptibility = "medium"  # flash-flood/landslide zone


class Unit(Struct, kw_only=True, frozen=True):
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


class Site(Struct, kw_only=True, frozen=True):
    id: str
    name: str
    unit: str | None = None
    counters: int = 1
    cameras: list[str] = []
    lat: float | None = None
    lon: float | None = None
    waiting_per_counter_max: float = 8.0
    service_minutes_per_person: float = 6.0  # for estimated waiting time


class Targets(Struct, kw_only=True, frozen=True):
    """Decision 766 targets (ratios 0–1); differ by province and year, so configuration."""

    on_time_rate: float = 0.98
    online_rate: float = 0.50
    digitization_rate: float = 0.80
    online_payment_rate: float = 0.80


class CatalogFile(Struct, kw_only=True):
    province: str = ""
    name: str = ""
    stations: list[Station] = []
    units: list[Unit] = []
    sites: list[Site] = []
    targets: Targets = Targets()


class CatalogError(ValueError):
    pass


class Catalog:
    """Indexed, validated catalog."""

    def __init__(self, data: CatalogFile, source: str = "<memory>") -> None:
        self.source = source
        self.province = data.province
        self.name = data.name
        self.targets = data.targets
        self.stations = _index(data.stations, "stations", source)
        self.units = _index(data.units, "units", source)
        self.sites = _index(data.sites, "sites", source)
        self.camera_site: dict[str, str] = {}
        for site in data.sites:
            for cam in site.cameras:
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
        return message
    section, index, rest = m.group(1), int(m.group(2)), m.group(3)
    try:
        entry_id = raw[section][index].get("id", f"#{index}")
    except (KeyError, IndexError, AttributeError, TypeError):
        entry_id = f"#{index}"
    return f"{section}[{entry_id}]{rest}: {message.split(' - at ')[0]}"


def demo_catalog() -> Catalog:
    """The demo province that ships with the package."""
    text = resources.files("sensors").joinpath("demo_catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(text, "sensors/demo_catalog.yaml")
