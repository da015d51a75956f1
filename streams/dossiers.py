"""Dossier indicators per unit, rolled up to every ancestor unit.

Per dossier a small record is kept: its status events ``(t, seq, status)``
in event-time order and, for each attribute (unit, channel, due, fee,
paid_online, digitized), the latest non-null value by event time (ties: the
later arrival wins).  Everything a dossier contributes is derived from that
record, so events may arrive in any order.

Counting.  A dossier's contribution is a bit mask over (metric × window)
for the *current* calendar periods (day, month, year containing the
watermark) plus ``open`` and ``overdue``.  On every change the old and new
masks are diffed and ±1 applied to the unit and each of its ancestors.
Periods only move forward and every admitted event is at or before the
watermark, so when the watermark enters a new period no dossier can yet
contribute to it: that window's counters are simply reset.

Definitions (DESIGN §3.5, DOMAIN §1):

* received / online / digitized / fee-bearing / paid online: by the period
  of the dossier's first ``received`` event; flags count whenever they
  arrive (latest value by event time).
* processed and on-time: by the period of the first ``processed`` event.
  Pauses: each ``supplement_requested`` pauses the clock until the dossier's
  next status event (of any kind).  On time ⇔ at most one supplement request
  before processing and ``processed_t <= due + pauses before processing``.
  A dossier processed with no known ``due`` counts in ``dossier_processed``
  but is **excluded** from the on-time rate (numerator and denominator).
* closed = processed, returned, rejected or withdrawn; ``dossier_open``
  counts dossiers not closed (whatever events were seen).
* ``dossier_overdue_open``: not closed, due known, and the effective due
  (due + completed pauses) is before the watermark; while a supplement
  request is open the clock is paused, so such a dossier is overdue only if
  it was already overdue when the request was made.  Driven by a heap of
  deadlines, popped as the watermark advances.
* A rate over an empty set has no value: it is not emitted; if a value had
  been emitted for that key and the set becomes empty (e.g. a new day), a
  single record with ``value: null`` retracts it (no data, never 0 or 1).
  ``flush()`` leaves such keys out.

Retention: at a year rollover, closed dossiers (which no longer contribute
to anything) are dropped; their ids are remembered for one more year so a
trailing event (e.g. ``returned``) does not resurrect them as open.
Events before the start of the watermark's calendar year are refused as
too late.
"""

from __future__ import annotations

import heapq
from bisect import insort
from typing import Any, Sequence

from ioc.catalog import Catalog
from ioc.events import Event
from ioc.records import Indicator, round_value
from ioc.timeutil import day_start, format_ts, month_start, period_key, year_start
from streams.core import ProcessResult
from streams.ranking import COMPONENTS, rank_units, unit_score
from streams.window import FUTURE, FUTURE_S, SKEW_S, TOO_LATE, rejection

WINDOWS = ("day", "month", "year")
CLOSED = frozenset(("processed", "returned", "rejected", "withdrawn"))
ATTRS = ("unit", "channel", "due_t", "fee", "paid_online", "digitized")

# metric m uses bits 3m (day), 3m+1 (month), 3m+2 (year)
M_RECEIVED, M_ONLINE, M_DIGITIZED, M_FEE, M_PAID, M_PROCESSED, M_DEN, M_ONTIME = range(8)
BIT_OPEN = 24
BIT_OVERDUE = 25
N_BITS = 26


class _Dossier:
    __slots__ = ("statuses", "attrs", "ver", "summary")

    def __init__(self) -> None:
        self.statuses: list[tuple[float, int, str]] = []
        self.attrs: dict[str, tuple[float, int, Any]] = {}
        self.ver = 0
        self.summary: tuple | None = None


def derive(statuses: Sequence[tuple[float, int, str]], attrs: dict[str, tuple[float, int, Any]]) -> tuple:
    """Summary of one dossier: (unit, recv_t, online, digitized, fee, paid,
    processed_t, on_time, closed, deadline, frozen_overdue)."""
    recv_t = processed_t = None
    closed = False
    paused = 0.0
    open_since = None
    n_supp = 0
    paused_at_proc = 0.0
    supp_at_proc = 0
    for t, _, status in statuses:
        if open_since is not None:  # the next status event ends the wait for the citizen
            paused += t - open_since
            open_since = None
        if status == "received":
            if recv_t is None:
                recv_t = t
        elif status == "supplement_requested":
            if not closed:
                n_supp += 1
                open_since = t
        elif status in CLOSED:
            closed = True
            if status == "processed" and processed_t is None:
                processed_t = t
                paused_at_proc = paused
                supp_at_proc = n_supp

    def val(name: str) -> Any:
        a = attrs.get(name)
        return None if a is None else a[2]

    due = val("due_t")
    on_time = None
    if processed_t is not None and due is not None:
        on_time = supp_at_proc <= 1 and processed_t <= due + paused_at_proc
    deadline = None
    frozen = False
    if not closed and due is not None:
        if open_since is not None:
            frozen = due + paused < open_since
        else:
            deadline = due + paused
    fee = val("fee") is True
    return (
        val("unit"),
        recv_t,
        val("channel") == "online",
        val("digitized") is True,
        fee,
        fee and val("paid_online") is True,
        processed_t,
        on_time,
        closed,
        deadline,
        frozen,
    )


class DossierProcessor:
    """Dossier feed processor (streams.core.Processor)."""

    feed = "dossier"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._level = {u.id: u.level for u in catalog.units.values()}
        self._targets_cache: dict[str, tuple[str, ...]] = {}
        self._reset()

    def _reset(self) -> None:
        self._w: float | None = None
        self._seq = 0
        self._d: dict[str, _Dossier] = {}
        self._tomb: set[str] = set()
        self._counters: dict[str, list[int]] = {}
        self._heap: list[tuple[float, str, int]] = []
        self._sent: dict[tuple[str, str, str], tuple[Any, str | None]] = {}
        self._ds = self._ms = self._ys = 0.0
        self._next_day = float("-inf")
        self._dirty: set[str] = set()
        self._late: set[tuple[str, str]] = set()

    @property
    def watermark(self) -> float | None:
        return self._w

    # ---------------------------------------------------------------- helpers
    def _targets(self, unit: str) -> tuple[str, ...]:
        tg = self._targets_cache.get(unit)
        if tg is None:
            tg = (unit, *self.catalog.ancestors(unit))
            self._targets_cache[unit] = tg
        return tg

    def _pbits(self, t: float | None) -> int:
        if t is None:
            return 0
        if t >= self._ds:
            return 7
        if t >= self._ms:
            return 6
        if t >= self._ys:
            return 4
        return 0

    def _mask(self, s: tuple | None) -> int:
        if s is None:
            return 0
        _, recv_t, online, digitized, fee, paid, processed_t, on_time, closed, deadline, frozen = s
        m = 0
        pb = self._pbits(recv_t)
        if pb:
            m |= pb
            if online:
                m |= pb << (3 * M_ONLINE)
            if digitized:
                m |= pb << (3 * M_DIGITIZED)
            if fee:
                m |= pb << (3 * M_FEE)
            if paid:
                m |= pb << (3 * M_PAID)
        pb = self._pbits(processed_t)
        if pb:
            m |= pb << (3 * M_PROCESSED)
            if on_time is not None:
                m |= pb << (3 * M_DEN)
                if on_time:
                    m |= pb << (3 * M_ONTIME)
        if not closed:
            m |= 1 << BIT_OPEN
            if frozen or (deadline is not None and deadline < self._w):
                m |= 1 << BIT_OVERDUE
        return m

    def _apply(self, unit: str, bits: int, sign: int, late: bool) -> None:
        for u in self._targets(unit):
            c = self._counters.get(u)
            if c is None:
                c = self._counters[u] = [0] * N_BITS
            x = bits
            while x:
                low = x & -x
                c[low.bit_length() - 1] += sign
                x ^= low
            self._dirty.add(u)
            if late:
                for wi, w in enumerate(WINDOWS):
                    if bits & (0o11111111 << wi):
                        self._late.add((u, w))
                if bits >> BIT_OPEN:
                    self._late.add((u, "now"))

    # ---------------------------------------------------------------- time
    def _advance(self, t: float) -> None:
        """Move the watermark forward to t: roll calendar periods, pop deadlines."""
        first = self._w is None
        self._w = t
        if t >= self._next_day:
            ds, ms, ys = day_start(t), month_start(t), year_start(t)
            reset = 0
            if ds != self._ds:
                reset |= 0o11111111
            if ms != self._ms:
                reset |= 0o11111111 << 1
            new_year = ys != self._ys
            if new_year:
                reset |= 0o11111111 << 2
            self._ds, self._ms, self._ys = ds, ms, ys
            self._next_day = ds + 86400.0  # +07:00 has no DST
            keep = ~reset
            for u, c in self._counters.items():
                for b in range(N_BITS):
                    if not (keep >> b) & 1:
                        c[b] = 0
                self._dirty.add(u)
            if new_year and not first:
                self._drop_closed()
        heap = self._heap
        while heap and heap[0][0] < t:
            _, did, ver = heapq.heappop(heap)
            d = self._d.get(did)
            if d is not None and d.ver == ver:
                self._apply(d.summary[0], 1 << BIT_OVERDUE, +1, False)

    def _drop_closed(self) -> None:
        dropped = [did for did, d in self._d.items() if d.summary[8]]
        for did in dropped:
            del self._d[did]
        self._tomb = set(dropped)

    # ---------------------------------------------------------------- process
    def process(self, events: Sequence[Event], now: float | None = None) -> ProcessResult:
        result = ProcessResult()
        if not events:
            return result
        limit = None if now is None else now + SKEW_S + FUTURE_S
        for i, ev in enumerate(events):
            t = ev.t
            w = self._w
            if limit is not None:
                fut = t > limit
            else:
                fut = w is not None and t > w + FUTURE_S
            if fut:
                result.rejections.append(rejection(self.feed, ev, FUTURE, t, w, now, "year", i))
                continue
            if w is not None and t < self._ys:
                result.rejections.append(
                    rejection(self.feed, ev, TOO_LATE, t, w, now, "calendar year", i)
                )
                continue
            result.accepted += 1
            if w is None or t > w:
                self._advance(t)
            self._event(ev, t, w is not None and t < w)
        if self._w is not None and result.accepted:
            result.indicators = self._emit()
        return result

    def _event(self, ev: Any, t: float, late: bool) -> None:
        did = ev.dossier
        if did in self._tomb:
            return
        self._seq += 1
        seq = self._seq
        d = self._d.get(did)
        if d is None:
            d = self._d[did] = _Dossier()
        old = d.summary
        old_mask = self._mask(old)
        insort(d.statuses, (t, seq, ev.status))
        a = d.attrs
        for name in ATTRS:
            v = getattr(ev, name)
            if v is not None:
                cur = a.get(name)
                if cur is None or t >= cur[0]:
                    a[name] = (t, seq, v)
        new = d.summary = derive(d.statuses, a)
        new_mask = self._mask(new)
        if old is not None and old[0] != new[0]:
            self._apply(old[0], old_mask, -1, late)
            self._apply(new[0], new_mask, +1, late)
        else:
            diff = old_mask ^ new_mask
            if diff:
                self._apply(new[0], diff & new_mask, +1, late)
                self._apply(new[0], diff & old_mask, -1, late)
        d.ver += 1
        if new[9] is not None and not new[9] < self._w:
            heapq.heappush(self._heap, (new[9], did, d.ver))
            if len(self._heap) > 2 * len(self._d) + 1024:
                self._compact_heap()

    def _compact_heap(self) -> None:
        self._heap = [(d.summary[9], did, d.ver) for did, d in self._d.items() if d.summary[9] is not None and not d.summary[9] < self._w]
        heapq.heapify(self._heap)

    # ---------------------------------------------------------------- output
    def _values(self, unit: str) -> list[tuple[str, str, Any, str | None]]:
        """(name, window, value, measurement unit) of every indicator of a unit; None = no data."""
        c = self._counters[unit]
        out: list[tuple[str, str, Any, str | None]] = []
        for wi, w in enumerate(WINDOWS):
            rec, onl, dig, fee, paid, proc, den, ont = (c[3 * m + wi] for m in range(8))
            out.append(("dossier_received", w, rec, "dossiers"))
            out.append(("dossier_processed", w, proc, "dossiers"))
            out.append(("dossier_online_rate", w, round_value(onl / rec) if rec else None, "ratio"))
            out.append(("dossier_digitization_rate", w, round_value(dig / rec) if rec else None, "ratio"))
            out.append(("dossier_online_payment_rate", w, round_value(paid / fee) if fee else None, "ratio"))
            out.append(("dossier_on_time_rate", w, round_value(ont / den) if den else None, "ratio"))
        out.append(("dossier_open", "now", c[BIT_OPEN], "dossiers"))
        out.append(("dossier_overdue_open", "now", c[BIT_OVERDUE], "dossiers"))
        return out

    def _score(self, unit: str) -> float | None:
        c = self._counters[unit]
        rec, onl, dig, fee, paid, _, den, ont = (c[3 * m + 2] for m in range(8))
        rates = {
            "dossier_online_rate": onl / rec if rec else None,
            "dossier_digitization_rate": dig / rec if rec else None,
            "dossier_online_payment_rate": paid / fee if fee else None,
            "dossier_on_time_rate": ont / den if den else None,
        }
        assert len(rates) == len(COMPONENTS)
        return unit_score(rates, self.catalog.targets)

    def _periods(self) -> dict[str, str | None]:
        w = self._w
        return {"day": period_key(w, "day"), "month": period_key(w, "month"), "year": period_key(w, "year"), "now": None}

    def _current(self, units) -> list[tuple[str, str, str, Any, str | None, str | None]]:
        """(name, window, entity, value, unit, period) for the given units, plus ranks of all."""
        periods = self._periods()
        rows = []
        for u in units:
            for name, w, v, mu in self._values(u):
                rows.append((name, w, u, v, mu, periods[w]))
            rows.append(("unit_score", "year", u, self._score(u), "points", periods["year"]))
        return rows

    def _rank_rows(self) -> list[tuple[str, str, str, Any, str | None, str | None]]:
        scores = {u: self._score(u) for u in self._counters if u in self._level}
        ranks = rank_units({u: s for u, s in scores.items() if s is not None}, self._level)
        year = period_key(self._w, "year")
        return [("unit_rank", "year", u, ranks.get(u), None, year) for u in self._counters if u in self._level]

    def _emit(self) -> list[Indicator]:
        ts = format_ts(self._w)
        rows = self._current(sorted(self._dirty))
        if self._dirty:
            rows.extend(self._rank_rows())
        out = []
        sent = self._sent
        late = self._late
        units = self.catalog.units
        for name, w, u, v, mu, period in rows:
            key = (name, w, u)
            prev = sent.get(key)
            if prev is None:
                if v is None:
                    continue
            elif prev[0] == v and prev[1] == period and type(prev[0]) is type(v):
                continue
            sent[key] = (v, period)
            is_late = (u, "year" if name in ("unit_score", "unit_rank") else w) in late
            out.append(
                Indicator(name=name, window=w, entity=u, ts=ts, value=v, unit=mu, period=period, unknown=u not in units, late=is_late)
            )
        self._dirty.clear()
        self._late.clear()
        out.sort(key=lambda r: (r.name, r.window, r.entity))
        return out

    def flush(self) -> list[Indicator]:
        if self._w is None:
            return []
        ts = format_ts(self._w)
        units = self.catalog.units
        rows = self._current(sorted(self._counters)) + self._rank_rows()
        out = [
            Indicator(name=name, window=w, entity=u, ts=ts, value=v, unit=mu, period=period, unknown=u not in units)
            for name, w, u, v, mu, period in rows
            if v is not None
        ]
        out.sort(key=lambda r: (r.name, r.window, r.entity))
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "watermark": self._w,
            "seq": self._seq,
            "dossiers": [
                [did, [list(s) for s in d.statuses], {k: list(v) for k, v in d.attrs.items()}, d.ver]
                for did, d in self._d.items()
            ],
            "tombstones": sorted(self._tomb),
            "counters": {u: list(c) for u, c in self._counters.items()},
            "sent": [[n, w, e, v, p] for (n, w, e), (v, p) in self._sent.items()],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        w = state["watermark"]
        self._seq = state["seq"]
        if w is not None:
            self._advance(w)
        self._dirty.clear()
        for did, statuses, attrs, ver in state["dossiers"]:
            d = _Dossier()
            d.statuses = [(float(t), int(s), st) for t, s, st in statuses]
            d.attrs = {k: (float(v[0]), int(v[1]), v[2]) for k, v in attrs.items()}
            d.ver = ver
            d.summary = derive(d.statuses, d.attrs)
            self._d[did] = d
            dl = d.summary[9]
            if dl is not None and not dl < self._w:
                self._heap.append((dl, did, ver))
        heapq.heapify(self._heap)
        self._tomb = set(state["tombstones"])
        self._counters = {u: list(c) for u, c in state["counters"].items()}
        self._sent = {(n, wn, e): (v, p) for n, wn, e, v, p in state["sent"]}
