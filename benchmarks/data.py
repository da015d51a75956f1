"""Deterministic synthetic inputs for the benchmarks (JSONL bytes + a catalog)."""

from __future__ import annotations

import random

from ioc.catalog import Catalog, parse_catalog
from ioc.timeutil import format_ts

T0 = 1793167800  # 2026-10-28T13:10:00+07:00 (a Wednesday)


def make_catalog(stations: int = 1000, districts: int = 10, communes_per: int = 10, sites: int = 20) -> Catalog:
    lines = ["province: bench", "name: Bench", "units:", "  - {id: prov, name: Province, level: province}"]
    for d in range(districts):
        lines.append(f"  - {{id: d{d}, name: D{d}, level: district, parent: prov}}")
        for c in range(communes_per):
            lines.append(f"  - {{id: d{d}c{c}, name: C{c}, level: commune, parent: d{d}}}")
    lines.append("stations:")
    for s in range(stations):
        d = s % districts
        lines.append(f"  - {{id: ST-{s:05d}, name: S{s}, lat: 21.3, lon: 105.5, district: d{d}, commune: d{d}c{s % communes_per}}}")
    lines.append("sites:")
    for s in range(sites):
        lines.append(f"  - {{id: site-{s}, name: Site {s}, unit: d{s % districts}, counters: 4, cameras: [cam-{s}]}}")
    return parse_catalog("\n".join(lines) + "\n", "<bench>")


def rain_lines(n: int, stations: int = 1000, seed: int = 1) -> list[tuple[float, bytes]]:
    rnd = random.Random(seed)
    out = []
    t = T0
    while len(out) < n:
        ts = format_ts(t).encode()
        for s in range(stations):
            mm = 0.0 if rnd.random() < 0.7 else round(rnd.random() * 3, 1)
            out.append((t, b'{"kind":"rain","station":"ST-%05d","ts":"%s","rain_mm":%s}' % (s, ts, repr(mm).encode())))
            if len(out) >= n:
                break
        t += 300
    return out


def camera_lines(n: int, sites: int = 20, seed: int = 2) -> list[tuple[float, bytes]]:
    rnd = random.Random(seed)
    out = []
    t = T0
    while len(out) < n:
        ts = format_ts(t).encode()
        for s in range(sites):
            out.append((t, b'{"kind":"camera","camera":"cam-%d","site":"site-%d","ts":"%s","waiting":%d,"counters_open":%d}'
                        % (s, s, ts, rnd.randint(0, 40), rnd.randint(1, 4))))
            if len(out) >= n:
                break
        t += 15
    return out


def dossier_lines(n: int, districts: int = 10, communes_per: int = 10, seed: int = 3) -> list[tuple[float, bytes]]:
    rnd = random.Random(seed)
    out = []
    t = T0
    seq = 0
    open_: list[tuple[str, str]] = []
    while len(out) < n:
        t += 2
        ts = format_ts(t).encode()
        if open_ and rnd.random() < 0.45:
            code, unit = open_.pop(rnd.randrange(len(open_)))
            out.append((t, b'{"kind":"dossier","dossier":"%s","unit":"%s","ts":"%s","status":"processed"}' % (code.encode(), unit.encode(), ts)))
            continue
        seq += 1
        unit = f"d{rnd.randrange(districts)}c{rnd.randrange(communes_per)}"
        code = f"H62.{seq:08d}"
        channel = b"online" if rnd.random() < 0.8 else b"direct"
        due = format_ts(t + 3 * 86400).encode()
        out.append((t, b'{"kind":"dossier","dossier":"%s","unit":"%s","ts":"%s","status":"received","channel":"%s","due":"%s","fee":%s,"paid_online":%s,"digitized":%s}'
                    % (code.encode(), unit.encode(), ts, channel, due,
                       b"true" if rnd.random() < 0.4 else b"false", b"true" if rnd.random() < 0.7 else b"false",
                       b"true" if rnd.random() < 0.8 else b"false")))
        open_.append((code, unit))
    return out


def mixed_lines(n: int) -> list[bytes]:
    """Rain 60 %, cameras 25 %, dossiers 15 %, interleaved in event time."""
    parts = rain_lines(int(n * 0.6)) + camera_lines(int(n * 0.25)) + dossier_lines(n - int(n * 0.6) - int(n * 0.25))
    parts.sort(key=lambda p: p[0])
    return [line for _, line in parts]


def only(lines: list[tuple[float, bytes]]) -> list[bytes]:
    return [line for _, line in lines]
