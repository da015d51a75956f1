"""One-stop-shop queue indicators per site, from camera counts.

Entity = the event's ``site``.  Window state: a ring of 15 one-minute
buckets per site (sum, count and max of ``waiting``), with running window
sums; ``queue_waiting_avg`` = window sum / window count and
``queue_waiting_max`` = max over the 15 bucket maxima, both for
``W - 15 min < t <= W`` (right-closed buckets, streams.window).  A site
with no reading in the window has no value: nothing is emitted, or — when a
value had been emitted — one ``value: null`` record retracts it.

"now" indicators use each camera's latest reading (by event time; ties go
to the later arrival): ``queue_waiting`` and ``queue_counters_open`` are
sums over the cameras whose latest reading names the site, and
``queue_wait_est_s`` = waiting / max(counters_open, 1) ×
``Site.service_minutes_per_person`` × 60 (6 min for a site missing from the
catalog).  Records are flagged ``unknown`` when the site, or one of the
cameras counted for it, is absent from the catalog.

Events at or before ``watermark − 1 h`` are refused as too late; those
between 1 h and 15 min old only matter for a camera's latest reading.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any, Sequence

import numpy as np

from ioc.catalog import Catalog
from ioc.events import Event
from ioc.records import Indicator, round_value
from ioc.timeutil import format_ts
from streams.core import ProcessResult
from streams.window import (
    OK,
    admit_times,
    array_from_state,
    array_state,
    buckets_of,
    rejections_for,
    ring_slots,
)

G_S = 60
RING = 15  # the 15 min window; older buckets are never read
WINDOW = "15m"
HORIZON_S = 3600.0
DEFAULT_SERVICE_MIN = 6.0

_get_t = attrgetter("t")


class CameraProcessor:
    """Camera feed processor (streams.core.Processor)."""

    feed = "camera"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._reset()

    def _reset(self) -> None:
        self._w: float | None = None
        self._k: int | None = None
        self._seq = 0
        self._sites: list[str] = []
        self._index: dict[str, int] = {}
        self._cap = 0
        self._alloc(max(16, len(self.catalog.sites) + 16))
        # camera -> [t, seq, site, waiting, counters_open]
        self._latest: dict[str, list] = {}
        self._members: dict[str, set[str]] = {}
        self._sent: dict[tuple[str, str, str], Any] = {}

    def _alloc(self, cap: int) -> None:
        n = len(self._sites)
        arrays = {
            "_bsum": np.zeros((RING, cap), dtype=np.int64),
            "_bcnt": np.zeros((RING, cap), dtype=np.int64),
            "_bmax": np.full((RING, cap), -1, dtype=np.int64),
            "_wsum": np.zeros(cap, dtype=np.int64),
            "_wcnt": np.zeros(cap, dtype=np.int64),
        }
        for name, a in arrays.items():
            if n:
                a[..., :n] = getattr(self, name)[..., :n]
            setattr(self, name, a)
        self._cap = cap

    def _row(self, site: str) -> int:
        r = self._index.get(site)
        if r is None:
            r = len(self._sites)
            if r >= self._cap:
                self._alloc(self._cap * 2)
            self._sites.append(site)
            self._index[site] = r
        return r

    @property
    def watermark(self) -> float | None:
        return self._w

    # ---------------------------------------------------------------- windows
    def _advance(self, k_new: int) -> None:
        k = self._k
        self._k = k_new
        if k is None or k_new <= k:
            return
        n = len(self._sites)
        d = k_new - k
        if d >= RING:
            self._bsum[:, :n] = 0
            self._bcnt[:, :n] = 0
            self._bmax[:, :n] = -1
            self._wsum[:n] = 0
            self._wcnt[:n] = 0
            return
        sl = ring_slots(k + 1, k_new, RING)  # = slots of the buckets leaving the window
        self._wsum[:n] -= self._bsum[sl, :n].sum(axis=0)
        self._wcnt[:n] -= self._bcnt[sl, :n].sum(axis=0)
        self._bsum[sl, :n] = 0
        self._bcnt[sl, :n] = 0
        self._bmax[sl, :n] = -1

    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult:
        result = ProcessResult()
        if not events:
            return result
        t = np.fromiter(map(_get_t, events), dtype=np.float64, count=len(events))
        status, prior = admit_times(t, self._w, now, HORIZON_S)
        if status.any():
            result.rejections = rejections_for(self.feed, events, status, t, prior, now, "1 h")
            idx = np.flatnonzero(status == OK)
            if len(idx) == 0:
                return result
            events = [events[i] for i in idx.tolist()]
            t, prior = t[idx], prior[idx]
        result.accepted = len(events)
        late = (t < prior).tolist()
        w_new = float(t.max()) if self._w is None else max(self._w, float(t.max()))
        k_new = math.ceil(w_new / G_S)
        advanced = k_new != self._k
        self._advance(k_new)
        self._w = w_new

        touched: set[int] = set()
        late_now: set[int] = set()
        late_win: set[int] = set()
        changed_sites: set[str] = set()
        k = buckets_of(t, G_S)
        in_win = (k > k_new - RING).tolist()
        t_l = t.tolist()  # Python floats: numpy scalars are slow to index and compare one by one
        rows_l: list[int] = []
        wait_l: list[int] = []
        latest = self._latest
        members = self._members
        index = self._index
        seq = self._seq
        for i, ev in enumerate(events):
            site = ev.site
            r = index.get(site)
            if r is None:
                r = self._row(site)
            rows_l.append(r)
            wait_l.append(ev.waiting)
            touched.add(r)
            seq += 1
            ti = t_l[i]
            cam = ev.camera
            cur = latest.get(cam)
            if cur is None or ti >= cur[0]:
                if cur is not None and cur[2] != site:
                    members[cur[2]].discard(cam)
                    changed_sites.add(cur[2])
                    touched.add(index[cur[2]])
                latest[cam] = [ti, seq, site, ev.waiting, ev.counters_open]
                m = members.get(site)
                if m is None:
                    m = members[site] = set()
                m.add(cam)
                if late[i]:
                    late_now.add(r)
            if late[i] and in_win[i]:
                late_win.add(r)
        self._seq = seq
        rows = np.array(rows_l, dtype=np.int64)
        waiting = np.array(wait_l, dtype=np.int64)
        keep = k > k_new - RING
        if keep.any():
            rk, wk, sl = rows[keep], waiting[keep], k[keep] % RING
            np.add.at(self._bsum, (sl, rk), wk)
            np.add.at(self._bcnt, (sl, rk), 1)
            np.maximum.at(self._bmax, (sl, rk), wk)
            np.add.at(self._wsum, rk, wk)
            np.add.at(self._wcnt, rk, 1)
        if advanced:
            cand = range(len(self._sites))
        else:
            cand = touched
        result.indicators = self._emit(sorted(cand, key=self._sites.__getitem__), late_now, late_win)
        return result

    # ---------------------------------------------------------------- output
    def _values(self, r: int) -> list[tuple[str, str, Any, str]]:
        site = self._sites[r]
        cnt = int(self._wcnt[r])
        if cnt:
            avg = round_value(int(self._wsum[r]) / cnt)
            mx = int(self._bmax[:, r].max())
        else:
            avg = mx = None
        cams = self._members.get(site, ())
        out = [("queue_waiting_avg", WINDOW, avg, "people"), ("queue_waiting_max", WINDOW, mx, "people")]
        if cams:
            waiting = sum(self._latest[c][3] for c in cams)
            counters = sum(self._latest[c][4] for c in cams)
            s = self.catalog.sites.get(site)
            spm = s.service_minutes_per_person if s is not None else DEFAULT_SERVICE_MIN
            est = round_value(waiting / max(counters, 1) * spm * 60.0)
            out += [
                ("queue_counters_open", "now", counters, "counters"),
                ("queue_wait_est_s", "now", est, "s"),
                ("queue_waiting", "now", waiting, "people"),
            ]
        else:
            out += [("queue_counters_open", "now", None, "counters"), ("queue_wait_est_s", "now", None, "s"), ("queue_waiting", "now", None, "people")]
        return out

    def _unknown(self, site: str) -> bool:
        if site not in self.catalog.sites:
            return True
        known = self.catalog.camera_site
        return any(c not in known for c in self._members.get(site, ()))

    def _emit(self, rows: list[int], late_now: set[int], late_win: set[int]) -> list[Indicator]:
        ts = format_ts(self._w)
        out: list[Indicator] = []
        sent = self._sent
        for r in rows:
            site = self._sites[r]
            unknown = self._unknown(site)
            for name, w, v, mu in self._values(r):
                key = (name, w, site)
                if key in sent:
                    prev = sent[key]
                    if prev == v and type(prev) is type(v):
                        continue
                elif v is None:
                    continue
                sent[key] = v
                late = r in (late_now if w == "now" else late_win)
                out.append(Indicator(name=name, window=w, entity=site, ts=ts, value=v, unit=mu, unknown=unknown, late=late))
        out.sort(key=lambda x: (x.name, x.window, x.entity))
        return out

    def flush(self) -> list[Indicator]:
        if self._w is None:
            return []
        ts = format_ts(self._w)
        out = []
        for r in range(len(self._sites)):
            site = self._sites[r]
            unknown = self._unknown(site)
            for name, w, v, mu in self._values(r):
                if v is not None:
                    out.append(Indicator(name=name, window=w, entity=site, ts=ts, value=v, unit=mu, unknown=unknown))
        out.sort(key=lambda x: (x.name, x.window, x.entity))
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        n = len(self._sites)
        return {
            "version": 1,
            "watermark": self._w,
            "k": self._k,
            "seq": self._seq,
            "sites": list(self._sites),
            "bsum": array_state(self._bsum[:, :n]),
            "bcnt": array_state(self._bcnt[:, :n]),
            "bmax": array_state(self._bmax[:, :n]),
            "wsum": array_state(self._wsum[:n]),
            "wcnt": array_state(self._wcnt[:n]),
            "latest": [[cam, *v] for cam, v in self._latest.items()],
            "sent": [[n_, w, e, v] for (n_, w, e), v in self._sent.items()],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        for site in state["sites"]:
            self._row(site)
        n = len(self._sites)
        self._bsum[:, :n] = array_from_state(state["bsum"])
        self._bcnt[:, :n] = array_from_state(state["bcnt"])
        self._bmax[:, :n] = array_from_state(state["bmax"])
        self._wsum[:n] = array_from_state(state["wsum"])
        self._wcnt[:n] = array_from_state(state["wcnt"])
        self._w, self._k, self._seq = state["watermark"], state["k"], state["seq"]
        for cam, t, seq, site, waiting, counters in state["latest"]:
            self._latest[cam] = [t, seq, site, waiting, counters]
            self._members.setdefault(site, set()).add(cam)
        self._sent = {(n_, w, e): v for n_, w, e, v in state["sent"]}
