"""The CAP <area> of an alert, from the catalog: a real circle or polygon and the unit codes.

- a rain station: a circle around the gauge (`cap.radius_km` of the rule, else 5 km: what one gauge
  stands for), geocode its commune (else district);
- a one-stop-shop site or a camera: a 0.2 km circle around the site, geocode the site's unit;
- an administrative unit: its catalog polygon when it has one, else the smallest circle around the
  centroid of its (and its children's) stations and sites plus a 2 km margin; geocode its code.

Geocodes are the official administrative unit codes of the catalog (docs/domain.md §4), named
GEOCODE_NAME; a unit without a code (a provincial department) takes its nearest ancestor's.  Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ioc.records import Alert

GEOCODE_NAME = "VN-MSDVHC"  # mã số đơn vị hành chính Việt Nam
STATION_RADIUS_KM = 5.0
SITE_RADIUS_KM = 0.2
UNIT_MARGIN_KM = 2.0
_EARTH_KM = 6371.0


@dataclass(frozen=True)
class CapArea:
    desc: dict[str, str]  # {"vi": ..., "en": ...}
    circles: tuple[str, ...] = ()  # "lat,lon radius_km"
    polygons: tuple[str, ...] = ()  # "lat,lon lat,lon ..." (closed)
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def _circle(lat: float, lon: float, radius_km: float) -> str:
    return f"{round(lat, 5)},{round(lon, 5)} {round(radius_km, 1)}"


def _kind(alert: Alert, catalog, rule) -> str:
    declared = getattr(rule, "entity", None)
    table = {"station": catalog.stations, "unit": catalog.units, "site": catalog.sites}.get(declared)
    if table is not None and alert.entity in table:  # a site and a unit may share an id: the rule says which
        return declared
    if alert.entity in catalog.stations:
        return "station"
    if alert.entity in catalog.camera_site:
        return "camera"
    if alert.entity in catalog.sites:
        return "site"
    if alert.entity in catalog.units:
        return "unit"
    return "unknown"


def _names(catalog, unit_id: str | None) -> tuple[list[str], list[str]]:
    """Names of a unit and its parents, nearest first, without the province (unless it is the unit)."""
    if unit_id not in catalog.units:
        return [], []
    chain = [unit_id, *catalog.ancestors(unit_id)]
    units = [catalog.units[u] for u in chain if catalog.units[u].parent is not None] or [catalog.units[unit_id]]
    return [u.name for u in units], [u.name_en or u.name for u in units]


def _geocodes(catalog, unit_id: str | None) -> tuple[tuple[str, str], ...]:
    if unit_id not in catalog.units:
        return ()
    for uid in (unit_id, *catalog.ancestors(unit_id)):
        code = catalog.units[uid].code
        if code:
            return ((GEOCODE_NAME, code),)
    return ()


def _unit_points(catalog, unit_id: str) -> list[tuple[float, float]]:
    inside = {unit_id}
    stack = [unit_id]
    while stack:
        for child in catalog.children.get(stack.pop(), ()):
            if child not in inside:
                inside.add(child)
                stack.append(child)
    pts = [(s.lat, s.lon) for s in catalog.stations.values() if s.commune in inside or s.district in inside]
    pts += [(s.lat, s.lon) for s in catalog.sites.values() if s.unit in inside and s.lat is not None
            and s.lon is not None]
    return pts


def _enclosing(points: list[tuple[float, float]]) -> str:
    lat = sum(p[0] for p in points) / len(points)
    lon = sum(p[1] for p in points) / len(points)
    r = max(distance_km(lat, lon, a, b) for a, b in points)
    return _circle(lat, lon, r + UNIT_MARGIN_KM)


def cap_area(alert: Alert, catalog, rule=None) -> CapArea:
    if catalog is None:
        return CapArea({"vi": alert.entity, "en": alert.entity})
    kind = _kind(alert, catalog, rule)
    cap = getattr(rule, "cap", None) or {}
    if kind == "station":
        st = catalog.stations[alert.entity]
        unit = alert.labels.get("unit") or st.commune or st.district
        vi, en = _names(catalog, unit)
        radius = float(cap.get("radius_km", STATION_RADIUS_KM))
        return CapArea({"vi": ", ".join([st.name, *vi]), "en": ", ".join([st.name, *en])},
                       circles=(_circle(st.lat, st.lon, radius),), geocodes=_geocodes(catalog, unit))
    if kind in ("site", "camera"):
        site = catalog.sites[catalog.camera_site[alert.entity] if kind == "camera" else alert.entity]
        vi, en = _names(catalog, site.unit)
        prefix = f"{alert.entity} ({site.name})" if kind == "camera" else site.name
        circles = (_circle(site.lat, site.lon, float(cap.get("radius_km", SITE_RADIUS_KM))),) \
            if site.lat is not None and site.lon is not None else ()
        return CapArea({"vi": ", ".join([prefix, *vi[:1]]), "en": ", ".join([prefix, *en[:1]])},
                       circles=circles, geocodes=_geocodes(catalog, site.unit))
    if kind == "unit":
        u = catalog.units[alert.entity]
        vi, en = _names(catalog, u.id)
        polygons: tuple[str, ...] = ()
        circles: tuple[str, ...] = ()
        if u.polygon:
            polygons = (" ".join(f"{lat},{lon}" for lat, lon in u.polygon),)
        else:
            pts = _unit_points(catalog, u.id)
            if not pts and u.parent is not None:  # a department: where its parent's offices are
                pts = _unit_points(catalog, u.parent) if catalog.units[u.parent].parent is not None else [
                    (s.lat, s.lon) for s in catalog.sites.values() if s.unit == u.parent and s.lat is not None
                    and s.lon is not None]
            if pts:
                circles = (_enclosing(pts),)
        return CapArea({"vi": ", ".join(vi[:2]), "en": ", ".join(en[:2])}, circles=circles, polygons=polygons,
                       geocodes=_geocodes(catalog, u.id))
    unit = alert.labels.get("unit")
    vi, en = _names(catalog, unit)
    return CapArea({"vi": ", ".join([alert.entity, *vi[:1]]), "en": ", ".join([alert.entity, *en[:1]])},
                   geocodes=_geocodes(catalog, unit))
