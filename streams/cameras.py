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

Event identity: the natural key is ``(camera, ts)`` (ts at 0.01 s).  Every
reading of the last hour (the horizon) is remembered by key with its value
``(site, waiting, counters_open)``, grouped by minute, and forgotten when
its minute leaves the horizon.  The same key with the
same value is a duplicate (nothing changes, nothing is emitted); with
another value it is a correction: the old value leaves the window sums of
its minute (the minute's max is recomputed from the remembered readings),
the new one enters, and the camera's latest reading is replaced when it was
that one.  Both sites' indicators are then re-emitted.

Unknown cameras and sites (missing from the catalog) count together
against ``max_unknown_entities``; an event that would add one past it is
refused with ``unknown_entity_limit`` (streams.window).
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
from streams.core import Outcome, ProcessResult
from streams.window import (
    MAX_UNKNOWN_ENTITIES,
    OK,
    admit_capped,
    admit_times,
    array_from_state,
    array_state,
    cap_rejection,
    centi,
    centis,
    rejections_for,
    ring_slots,
)

G_S = 60
RING = 15  # the 15 min window; older buckets are never read
WINDOW = "15m"
HORIZON_S = 3600.0
DEFAULT_SERVICE_MIN = 6.0
G_CS = G_S * 100

_get_t = attrgetter("t")
_get_camera = attrgetter("camera")
_get_site = attrgetter("site")
_ACC, _DUP, _COR, _REJ = (int(o) for o in Outcome)


class CameraProcessor:
    """Camera feed processor (streams.core.Processor)."""

    feed = "camera"

    def __init__(self, catalog: Catalog, max_unknown_entities: int = MAX_UNKNOWN_ENTITIES) -> None:
        self.catalog = catalog
        self.max_unknown_entities = max_unknown_entities
        self._reset()

    def _reset(self) -> None:
        self._w: float | None = None
        self._k: int | None = None
        self._seq = 0
        self._batch = 0
        self._sites: list[str] = []
        self._index: dict[str, int] = {}
        self._cap = 0
        self._alloc(max(16, len(self.catalog.sites) + 16))
        # camera -> [t, seq, site, waiting, counters_open]
        self._latest: dict[str, list] = {}
        self._members: dict[str, set[str]] = {}
        self._sent: dict[tuple[str, str, str], Any] = {}
        # event identity: (camera, ts_cs) -> [site row, waiting, counters_open, minute, batch number]
        # by minute (a key's minute follows from its ts), so a minute is forgotten at once
        self._seen: dict[int, dict[tuple[str, int], list]] = {}
        self._unknown_kept: set[tuple[str, str]] = set()  # ("camera" | "site", id) missing from the catalog

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
    def _expire(self, w: float) -> None:
        """Forget the identity of readings whose minute is wholly at or before w − 1 h (too late now)."""
        seen = self._seen
        last = math.floor((w - HORIZON_S) / G_S)  # minute kk covers ((kk-1)·60, kk·60]
        for kk in [kk for kk in seen if kk <= last]:
            del seen[kk]

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

    def _new_unknown(self, events: Sequence[Event]) -> list[tuple] | None:
        """Per event, the unknown entities it would add (None when the batch adds none)."""
        cams = set(map(_get_camera, events))
        sites = set(map(_get_site, events))
        known_cams, known_sites, latest, index = self.catalog.camera_site, self.catalog.sites, self._latest, self._index
        if all(c in known_cams or c in latest for c in cams) and all(x in known_sites or x in index for x in sites):
            return None
        out = []
        for ev in events:
            ids = ()
            c, x = ev.camera, ev.site
            if c not in known_cams and c not in latest:
                ids = (("camera", c),)
            if x not in known_sites and x not in index:
                ids += (("site", x),)
            out.append(ids)
        return out

    def _cap_rejection(self, ev: Any, i: int):
        what = []
        if ev.camera not in self.catalog.camera_site and ev.camera not in self._latest:
            what.append(f"camera {ev.camera!r}")
        if ev.site not in self.catalog.sites and ev.site not in self._index:
            what.append(f"site {ev.site!r}")
        return cap_rejection(self.feed, ev, " and ".join(what), self.max_unknown_entities, i)

    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult:
        result = ProcessResult()
        n_in = len(events)
        if not n_in:
            return result.set_outcome(np.zeros(0, dtype=np.int8))
        t = np.fromiter(map(_get_t, events), dtype=np.float64, count=n_in)
        new_ids = self._new_unknown(events)
        added = None
        if new_ids is not None:
            room = max(0, self.max_unknown_entities - len(self._unknown_kept))
            status, prior, added = admit_capped(t, self._w, now, HORIZON_S, new_ids, room)
        else:
            status, prior = admit_times(t, self._w, now, HORIZON_S)
        idx = None
        if status.any():
            result.rejections = rejections_for(
                self.feed, events, status, t, prior, now, "1 h", capped=lambda i: self._cap_rejection(events[i], i)
            )
            idx = np.flatnonzero(status == OK)
            if len(idx) == 0:
                return result.set_outcome(np.full(n_in, _REJ, dtype=np.int8))
            events = [events[i] for i in idx.tolist()]
            t, prior = t[idx], prior[idx]
        if added:
            self._unknown_kept.update(added)
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
        tc = centis(t)
        k = -(-tc // G_CS)  # right-closed minute of the time in centiseconds
        low = k_new - RING  # minutes after `low` are in the window
        t_l = t.tolist()  # Python floats: numpy scalars are slow to index and compare one by one
        tc_l = tc.tolist()
        k_l = k.tolist()
        self._batch = batch = self._batch + 1
        new_vals: list[list] = []  # identity entries of readings first seen in this batch, in the window
        new_r: list[int] = []  # ... their site rows, waiting and minutes as first seen
        new_w: list[int] = []
        new_k: list[int] = []
        rewritten = False  # a reading of this batch was corrected in this batch: use new_vals
        moved: list[tuple[int, int, int, int, int]] = []  # corrections of older readings in the window
        dup_l: list[int] = []  # indices of duplicates and corrections (the rest are accepted)
        cor_l: list[int] = []
        latest = self._latest
        members = self._members
        index = self._index
        seen = self._seen
        seq = self._seq
        for i, ev in enumerate(events):
            site = ev.site
            r = index.get(site)
            if r is None:
                r = self._row(site)
            ti = t_l[i]
            cam = ev.camera
            waiting = ev.waiting
            key = (cam, tc_l[i])
            kk = k_l[i]
            mins = seen.get(kk)
            old = None if mins is None else mins.get(key)
            if old is not None:
                r_old, w_old = old[0], old[1]
                if r_old == r and w_old == waiting and old[2] == ev.counters_open:
                    dup_l.append(i)
                    continue
                cor_l.append(i)
                old[0], old[1], old[2] = r, waiting, ev.counters_open
                touched.add(r)
                touched.add(r_old)
                if kk > low:
                    if old[4] != batch:  # counted by an earlier batch: move it
                        moved.append((kk % RING, r_old, w_old, r, waiting))
                    else:
                        rewritten = True
                    if late[i]:
                        late_win.add(r)
                        late_win.add(r_old)
                cur = latest.get(cam)
                if cur is not None and centi(cur[0]) == key[1]:  # the camera's latest reading: replace it
                    if cur[2] != site:
                        members[cur[2]].discard(cam)
                        changed_sites.add(cur[2])
                        members.setdefault(site, set()).add(cam)
                    cur[2], cur[3], cur[4] = site, waiting, ev.counters_open
                    if late[i]:
                        late_now.add(r)
                        late_now.add(r_old)
                continue
            if mins is None:
                mins = seen[kk] = {}
            mins[key] = entry = [r, waiting, ev.counters_open, kk, batch]
            touched.add(r)
            seq += 1
            cur = latest.get(cam)
            if cur is None or ti >= cur[0]:
                if cur is not None and cur[2] != site:
                    members[cur[2]].discard(cam)
                    changed_sites.add(cur[2])
                    touched.add(index[cur[2]])
                latest[cam] = [ti, seq, site, waiting, ev.counters_open]
                m = members.get(site)
                if m is None:
                    m = members[site] = set()
                m.add(cam)
                if late[i]:
                    late_now.add(r)
            if kk > low:
                new_vals.append(entry)
                new_r.append(r)
                new_w.append(waiting)
                new_k.append(kk)
                if late[i]:
                    late_win.add(r)
        self._seq = seq
        if new_vals:
            if rewritten:  # final values of the readings corrected within the batch
                new_r = [v[0] for v in new_vals]
                new_w = [v[1] for v in new_vals]
            rk = np.array(new_r, dtype=np.int64)
            wk = np.array(new_w, dtype=np.int64)
            sl = np.array(new_k, dtype=np.int64) % RING
            np.add.at(self._bsum, (sl, rk), wk)
            np.add.at(self._bcnt, (sl, rk), 1)
            np.maximum.at(self._bmax, (sl, rk), wk)
            np.add.at(self._wsum, rk, wk)
            np.add.at(self._wcnt, rk, 1)
        if moved:
            self._move(moved, k_new)
        self._expire(w_new)  # after the batch: its events were admitted against the running watermark
        if advanced:
            cand = range(len(self._sites))
        else:
            cand = touched
        result.indicators = self._emit(sorted(cand, key=self._sites.__getitem__), late_now, late_win)
        outcome = np.zeros(len(events), dtype=np.int8)
        if dup_l:
            outcome[dup_l] = _DUP
        if cor_l:
            outcome[cor_l] = _COR
        if idx is not None:
            full = np.full(n_in, _REJ, dtype=np.int8)
            full[idx] = outcome
            outcome = full
        return result.set_outcome(outcome)

    def advance_to(self, t: float) -> ProcessResult:
        """Move the watermark to t with no reading (an idle partition, docs/scaling.md): the 1 h
        windows slide and every site's indicators are re-emitted when the minute changed."""
        result = ProcessResult().set_outcome(np.zeros(0, dtype=np.int8))
        if self._w is not None and t <= self._w:
            return result
        k_new = math.ceil(t / G_S)
        advanced = k_new != self._k
        self._advance(k_new)
        self._w = t
        self._expire(t)
        if advanced:
            result.indicators = self._emit(sorted(range(len(self._sites)), key=self._sites.__getitem__), set(), set())
        return result

    def _move(self, moved: list[tuple[int, int, int, int, int]], k_new: int) -> None:
        """Apply corrections (slot, old row, old waiting, new row, new waiting) to the window state."""
        bsum, bcnt, wsum, wcnt = self._bsum, self._bcnt, self._wsum, self._wcnt
        redo: set[tuple[int, int]] = set()
        for sl, r_old, w_old, r, waiting in moved:
            bsum[sl, r_old] -= w_old
            bcnt[sl, r_old] -= 1
            wsum[r_old] -= w_old
            wcnt[r_old] -= 1
            bsum[sl, r] += waiting
            bcnt[sl, r] += 1
            wsum[r] += waiting
            wcnt[r] += 1
            redo.add((sl, r_old))
            redo.add((sl, r))
        # a max cannot be undone: recompute those minutes' maxima from the remembered readings
        minute = {kk % RING: kk for kk in range(k_new - RING + 1, k_new + 1)}
        mx = {(minute[sl], r): -1 for sl, r in redo}
        for kk in {kk for kk, _ in mx}:
            for v in self._seen.get(kk, {}).values():
                cell = (kk, v[0])
                if cell in mx and v[1] > mx[cell]:
                    mx[cell] = v[1]
        for (kk, r), m in mx.items():
            self._bmax[kk % RING, r] = m

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
            "version": 2,
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
            "seen": [
                [cam, tc, self._sites[v[0]], v[1], v[2], v[3]]
                for mins in self._seen.values()
                for (cam, tc), v in mins.items()
            ],
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
        for cam, tc, site, waiting, counters, kk in state.get("seen", ()):  # absent from version 1
            key = (cam, int(tc))
            self._seen.setdefault(int(kk), {})[key] = [self._row(site), waiting, counters, int(kk), 0]
        known_cams, known_sites = self.catalog.camera_site, self.catalog.sites
        self._unknown_kept = {("camera", c) for c in self._latest if c not in known_cams}
        self._unknown_kept |= {("site", x) for x in self._sites if x not in known_sites}
