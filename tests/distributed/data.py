"""Deterministic mixed input for the distributed tests: a storm over some
rain gauges (fires and later resolves rain alerts), queues at one-stop-shop
sites, and dossiers across the demo province's communes (roll-ups).
Events are in event-time order; every station and camera reports at every
step, so every partition's watermark ends where the global one does."""

from __future__ import annotations

import json
import random

from ioc.catalog import Catalog
from ioc.timeutil import format_ts, parse_ts

BASE_H = 6  # 06:00 local on 2026-10-28


def ts(minute: int) -> str:
    """Event time `minute` minutes after BASE_H:00 on 2026-10-28 (local), rolling over midnight."""
    return format_ts(parse_ts(f"2026-10-28T{BASE_H:02d}:00:00+07:00") + 60 * minute)


def make_events(catalog: Catalog, steps: int = 96, seed: int = 7, storm_mm: float = 3.8) -> list[dict]:
    """`steps` 5-minute steps of all feeds (96 = 8 hours).  The storm gauges get `storm_mm`
    per 5 minutes for 2 hours: 3.8 → 91 mm (rain_level_station 1); 10 → 240 mm, which escalates
    rain_level_station (tests/distributed/rules) from level 1 (warning) to level 2 (critical, 24 h > 200 mm)."""
    rng = random.Random(seed)
    stations = sorted(catalog.stations)
    storm = set(stations[::3])  # a third of the gauges get 90 mm in 2 hours
    sites = sorted(catalog.sites.values(), key=lambda s: s.id)
    communes = sorted(u.id for u in catalog.units.values() if u.level == "commune")
    out: list[dict] = []
    n_dossier = 0
    open_dossiers: list[tuple[str, str, int]] = []
    for step in range(steps):
        minute = step * 5
        for st in stations:
            heavy = st in storm and 24 <= step < 48
            rain = storm_mm if heavy else rng.choice([0.0, 0.0, 0.2, 0.4])
            out.append({"kind": "rain", "station": st, "ts": ts(minute), "rain_mm": rain})
        for site in sites:
            long_queue = site.id == sites[0].id and 12 <= step < 40
            for cam in site.cameras or [f"cam-{site.id}"]:
                waiting = 10 * site.counters + 5 if long_queue else rng.randint(0, 4 * site.counters)
                out.append({"kind": "camera", "camera": cam, "site": site.id, "ts": ts(minute), "waiting": waiting, "counters_open": site.counters})
        if step % 2 == 0:
            for unit in communes[step % 5 :: 5]:
                n_dossier += 1
                did = f"H62.T-{n_dossier:05d}"
                channel = "online" if rng.random() < 0.6 else "direct"
                due_m = minute + rng.choice([30, 60, 600])
                out.append({"kind": "dossier", "dossier": did, "unit": unit, "ts": ts(minute), "status": "received",
                            "channel": channel, "due": ts(due_m), "fee": True, "paid_online": channel == "online",
                            "digitized": rng.random() < 0.8})
                open_dossiers.append((did, unit, minute))
        keep = []
        for did, unit, m0 in open_dossiers:
            if minute - m0 >= 45 and rng.random() < 0.5:
                out.append({"kind": "dossier", "dossier": did, "unit": unit, "ts": ts(minute), "status": "processed"})
            else:
                keep.append((did, unit, m0))
        open_dossiers = keep
    return out


def to_jsonl(events: list[dict]) -> bytes:
    return b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)
