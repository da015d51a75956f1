"""A plain per-event Python implementation of the same windows (dicts and
deques): the baseline the vectorized core is measured against.

It computes the same rain sums (1 h … 72 h), the camera 15-minute mean/max
and the dossier period counts, one event at a time, the way one would write
it without ring buffers or numpy.  It is deliberately straightforward, not a
straw man: running sums, amortised O(1) eviction.
"""

from __future__ import annotations

from collections import defaultdict, deque

RAIN_WINDOWS = (("1h", 3600), ("3h", 10800), ("6h", 21600), ("12h", 43200), ("24h", 86400), ("72h", 259200))


class RainDeques:
    def __init__(self) -> None:
        self.readings: dict[str, deque] = defaultdict(deque)  # (t, mm), in arrival order
        self.watermark = float("-inf")

    def add(self, station: str, t: float, mm: float) -> dict[str, float]:
        if t > self.watermark:
            self.watermark = t
        q = self.readings[station]
        q.append((t, mm))
        horizon = self.watermark - 259200
        while q and q[0][0] <= horizon:
            q.popleft()
        w = self.watermark
        return {name: sum(v for (ts, v) in q if ts > w - length) for name, length in RAIN_WINDOWS}


class RainRunningSums:
    """Per station, one deque per window with a running sum (in-order input)."""

    def __init__(self) -> None:
        self.q: dict[str, list[deque]] = {}
        self.sums: dict[str, list[float]] = {}

    def add(self, station: str, t: float, mm: float) -> list[float]:
        qs = self.q.get(station)
        if qs is None:
            qs = self.q[station] = [deque() for _ in RAIN_WINDOWS]
            self.sums[station] = [0.0] * len(RAIN_WINDOWS)
        sums = self.sums[station]
        for i, (_, length) in enumerate(RAIN_WINDOWS):
            q = qs[i]
            q.append((t, mm))
            sums[i] += mm
            while q[0][0] <= t - length:
                sums[i] -= q.popleft()[1]
        return sums


class CameraDeques:
    def __init__(self) -> None:
        self.q: dict[str, deque] = defaultdict(deque)

    def add(self, site: str, t: float, waiting: int) -> tuple[float, int]:
        q = self.q[site]
        q.append((t, waiting))
        while q[0][0] <= t - 900:
            q.popleft()
        values = [w for _, w in q]
        return sum(values) / len(values), max(values)


class DossierCounts:
    def __init__(self) -> None:
        self.received: dict[tuple[str, str], int] = defaultdict(int)
        self.online: dict[tuple[str, str], int] = defaultdict(int)
        self.processed: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, unit: str, day: str, status: str, channel: str | None) -> None:
        key = (unit, day)
        if status == "received":
            self.received[key] += 1
            if channel == "online":
                self.online[key] += 1
        elif status == "processed":
            self.processed[key] += 1


class PerEventPipeline:
    """json.loads + the per-event windows above, for the same JSON bytes."""

    def __init__(self) -> None:
        self.rain = RainRunningSums()
        self.cameras = CameraDeques()
        self.dossiers = DossierCounts()

    def process(self, lines: list[bytes]) -> int:
        import json
        from datetime import datetime

        n = 0
        for line in lines:
            ev = json.loads(line)
            t = datetime.fromisoformat(ev["ts"]).timestamp()
            kind = ev["kind"]
            if kind == "rain":
                self.rain.add(ev["station"], t, float(ev["rain_mm"]))
            elif kind == "camera":
                self.cameras.add(ev["site"], t, int(ev["waiting"]))
            else:
                self.dossiers.add(ev["unit"], ev["ts"][:10], ev["status"], ev.get("channel"))
            n += 1
        return n
