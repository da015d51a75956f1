"""Decision 18/2021 tables as validated data (docs/domain.md §2), loaded from alerts/risk/decision18.yaml.

The rows are configuration so a corrected reading of the Decision is a YAML
edit, not a code change; loading checks every row and names the one that is
wrong.  Pure: reads only the file it is asked to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

BANDS = ("A", "B", "C")
TERRAINS = ("midland_mountain", "plain_coastal")
EXTENTS = ("under_half", "over_half", "several_provinces")
SUSCEPTIBILITIES = ("low", "medium", "high", "very_high")
GROUPS = ("KV1", "KV2", "KV3", "KV4")
DEFAULT_PATH = Path(__file__).resolve().parent / "decision18.yaml"


class TableError(ValueError):
    """The Decision 18 configuration is invalid; the message names the file and the row."""


@dataclass(frozen=True)
class Band:
    name: str
    min_24h_mm: float  # inclusive lower bound (A: 100) or exclusive (B, C: above)
    inclusive: bool
    min_12h_mm: float | None = None


@dataclass(frozen=True)
class Row44:
    level: int
    band: str
    days_min: int
    days_max: int | None
    terrain: str  # midland_mountain | plain_coastal | any
    extent: str
    clause: dict[str, str]

    def matches(self, band: str, days: int, terrain: str, extent: str | None) -> bool:
        """extent None: ignore extent (the documented fallback)."""
        return (self.band == band and days >= self.days_min and (self.days_max is None or days <= self.days_max)
                and self.terrain in ("any", terrain) and (extent is None or self.extent == extent))


@dataclass(frozen=True)
class Tables:
    source: str
    bands: tuple[Band, ...]
    rows44: tuple[Row44, ...]
    fallback44: str  # ignore_extent | none
    extent_unit: str  # commune | district
    days_hold: int
    prior_rain_day_mm: float
    prior_days_min: dict[str, int]
    band_fallback46: dict[str, str]
    table46: dict[str, dict[str, tuple[int | None, ...]]]
    clause46: dict[str, str]
    region_groups: dict[str, str]  # pre-2025 province name → KV1..KV4
    levels: dict[int, dict[str, Any]]  # level → {severity, color, name}
    clear_24h_mm: float
    clear_12h_mm: float

    def group_of_province(self, former_province: str) -> str | None:
        return self.region_groups.get(former_province)


def _fail(source: str, where: str, what: str) -> None:
    raise TableError(f"{source}: {where}: {what}")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_tables(text: str, source: str = "<memory>") -> Tables:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TableError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TableError(f"{source}: expected a mapping with bands, article44, article46, region_groups")
    b = raw.get("bands") or {}
    if set(b) != set(BANDS):
        _fail(source, "bands", f"expected exactly {', '.join(BANDS)}, got {sorted(b)}")
    bands = (Band("A", float(b["A"]["min_24h_mm"]), True, float(b["A"]["min_12h_mm"])),
             Band("B", float(b["B"]["above_24h_mm"]), False), Band("C", float(b["C"]["above_24h_mm"]), False))
    if not bands[0].min_24h_mm < bands[1].min_24h_mm < bands[2].min_24h_mm:
        _fail(source, "bands", "lower bounds must rise from A to C")
    rows: list[Row44] = []
    for i, r in enumerate(raw.get("article44") or []):
        where = f"article44[{i}]"
        if not isinstance(r, dict):
            _fail(source, where, f"expected a mapping, got {r!r}")
        lv, band, days, terrain, extent, clause = (r.get(k) for k in ("level", "band", "days", "terrain", "extent",
                                                                        "clause"))
        if not _int(lv) or not 1 <= lv <= 4:
            _fail(source, f"{where}.level", f"expected 1–4, got {lv!r}")
        if band not in BANDS:
            _fail(source, f"{where}.band", f"expected one of {', '.join(BANDS)}, got {band!r}")
        if not isinstance(days, dict) or not _int(days.get("min")) or days["min"] < 1 or not (
                days.get("max") is None or (_int(days["max"]) and days["max"] >= days["min"])):
            _fail(source, f"{where}.days", f"expected {{min: N ≥ 1[, max: M ≥ N]}}, got {days!r}")
        if terrain not in (*TERRAINS, "any"):
            _fail(source, f"{where}.terrain", f"expected one of {', '.join(TERRAINS)}, any; got {terrain!r}")
        if extent not in EXTENTS:
            _fail(source, f"{where}.extent", f"expected one of {', '.join(EXTENTS)}, got {extent!r}")
        if not isinstance(clause, dict) or not all(isinstance(clause.get(k), str) and clause[k] for k in ("vi", "en")):
            _fail(source, f"{where}.clause", "every row names its source clause: {vi: ..., en: ...}")
        rows.append(Row44(lv, band, days["min"], days.get("max"), terrain, extent, dict(clause)))
    if not rows:
        _fail(source, "article44", "no rows")
    fallback = raw.get("article44_fallback", "ignore_extent")
    if fallback not in ("ignore_extent", "none"):
        _fail(source, "article44_fallback", f"expected ignore_extent or none, got {fallback!r}")
    extent_unit = raw.get("extent_unit", "commune")
    if extent_unit not in ("commune", "district"):
        _fail(source, "extent_unit", f"expected commune or district, got {extent_unit!r}")
    a46 = raw.get("article46") or {}
    table: dict[str, dict[str, tuple[int | None, ...]]] = {}
    t46 = a46.get("table") or {}
    if set(t46) != set(SUSCEPTIBILITIES):
        _fail(source, "article46.table", f"expected rows {', '.join(SUSCEPTIBILITIES)}, got {sorted(t46)}")
    for sus, cols in t46.items():
        if not isinstance(cols, dict) or set(cols) != set(BANDS):
            _fail(source, f"article46.table.{sus}", f"expected columns {', '.join(BANDS)}")
        table[sus] = {}
        for band, cells in cols.items():
            if not isinstance(cells, list) or len(cells) != 4 or not all(
                    c is None or (_int(c) and 1 <= c <= 3) for c in cells):
                _fail(source, f"article46.table.{sus}.{band}", f"expected 4 cells (KV1–KV4) of 1–3 or null, got {cells!r}")
            table[sus][band] = tuple(cells)
    prior = a46.get("prior_days") or {}
    if set(prior) != set(BANDS) or not all(isinstance(p, dict) and _int(p.get("min")) for p in prior.values()):
        _fail(source, "article46.prior_days", f"expected {{A: {{min: N}}, B: ..., C: ...}}, got {prior!r}")
    band_fb = a46.get("band_fallback") or {}
    if not all(k in BANDS and v in BANDS and BANDS.index(v) < BANDS.index(k) for k, v in band_fb.items()):
        _fail(source, "article46.band_fallback", f"each band falls back to a lower one, got {band_fb!r}")
    groups: dict[str, str] = {}
    for g, names in (raw.get("region_groups") or {}).items():
        if g not in GROUPS or not isinstance(names, list):
            _fail(source, f"region_groups.{g}", f"expected a group {', '.join(GROUPS)} with a list of provinces")
        for n in names:
            if n in groups:
                _fail(source, f"region_groups.{g}", f"{n} is already in {groups[n]}")
            groups[str(n)] = g
    levels: dict[int, dict[str, Any]] = {}
    for k, v in (raw.get("levels") or {}).items():
        if not _int(k) or not isinstance(v, dict) or v.get("severity") not in ("info", "warning", "critical"):
            _fail(source, f"levels.{k}", "expected level: {severity, color, name: {vi, en}}")
        levels[k] = dict(v)
    if set(levels) != {1, 2, 3, 4, 5}:
        _fail(source, "levels", f"expected levels 1–5, got {sorted(levels)}")
    clear = raw.get("clear") or {}
    return Tables(
        source=source, bands=bands, rows44=tuple(rows), fallback44=fallback, extent_unit=extent_unit,
        days_hold=int(raw.get("days_hold", 10)), prior_rain_day_mm=float(a46.get("prior_rain_day_mm", 6)),
        prior_days_min={k: int(v["min"]) for k, v in prior.items()}, band_fallback46=dict(band_fb),
        table46=table, clause46=dict(a46.get("source") or {"vi": "Điều 46", "en": "Art. 46"}),
        region_groups=groups, levels=levels, clear_24h_mm=float(clear.get("below_24h_mm", 90)),
        clear_12h_mm=float(clear.get("below_12h_mm", 45)),
    )


def load_tables(path: str | Path) -> Tables:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc}") from exc
    return parse_tables(text, str(path))


@lru_cache(maxsize=1)
def default_tables() -> Tables:
    """The shipped tables (alerts/risk/decision18.yaml)."""
    return load_tables(DEFAULT_PATH)
