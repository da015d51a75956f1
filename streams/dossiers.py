"""Dossier indicators per unit, rolled up to every ancestor unit.

Per dossier a small record is kept: its status events
``(t, seq, status, values)`` in event-time order, ``values`` being the
event's attributes (unit, channel, due, fee, paid_online, digitized) as one
tuple, shared between events with the same values.  Each attribute's
effective value is the latest non-null one by event time (ties: the earlier
arrival of the key first).  Everything a dossier contributes is derived
from that record, so events may arrive in any order.

Event identity: the natural key is ``(dossier, status, ts)`` (ts at
0.01 s).  An event whose key is in the record with the same values is a
duplicate (nothing changes, nothing is emitted); with other values (e.g. a
re-sent ``received`` with another channel, due or digitized flag) it is a
correction: the entry's values are replaced, the dossier re-derived and its
counters moved to the new contribution (in every period, and between units
when the unit changed), like a late event.  Identity lasts as long as the
record: the current year (closed dossiers are dropped at the year rollover,
and events before the year start are refused as too late).

Units missing from the catalog are counted and flagged unknown, up to
``max_unknown_entities`` of them; an event naming one more is refused with
``unknown_entity_limit`` (streams.window).

Counting.  A dossier's contribution is a bit mask over (metric × window)
for the *current* calendar periods (day, month, year containing the
watermark) plus ``open`` and ``overdue``.  On every change the old and new
masks are diffed and ±1 applied to the unit and each of its ancestors.
Periods only move forward and every admitted event is at or before the
watermark, so when the watermark enters a new period no dossier can yet
contribute to it: that window's counters are simply reset.

Definitions (docs/architecture.md, indicator catalogue):

* received / online / digitized / fee-bearing / paid online: by the period
  of the dossier's first ``received`` event; flags count whenever they
  arrive (latest value by event time).  The online-payment rate is paid
  online / fee-bearing dossiers whose ``paid_online`` is known (true or
  false): a fee-bearing dossier without it is not yet in the rate, so a
  feed that never sends the field has no payment rate (no data), not 0 %.
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
from operator import attrgetter
from typing import Any, Sequence

import numpy as np

from ioc.catalog import Catalog
from ioc.events import Event
from ioc.records import Indicator
from ioc.timeutil import day_start, format_ts, month_start, period_key, year_start
from streams.core import Outcome, ProcessResult
from streams.ranking import rank_units, unit_score
from streams.window import FUTURE, FUTURE_S, MAX_UNKNOWN_ENTITIES, SKEW_S, TOO_LATE, cap_rejection, rejection

WINDOWS = ("day", "month", "year")
CLOSED = frozenset(("processed", "returned", "rejected", "withdrawn"))
ATTRS = ("unit", "channel", "due_t", "fee", "paid_online", "digitized")

# metric m uses bits 3m (day), 3m+1 (month), 3m+2 (year)
M_RECEIVED, M_ONLINE, M_DIGITIZED, M_FEE, M_PAID, M_PROCESSED, M_DEN, M_ONTIME = range(8)
BIT_OPEN = 24
BIT_OVERDUE = 25
N_BITS = 26
ALL_BITS = (1 << N_BITS) - 1
# after shifting a unit's changed bits right by the window index, metric m is bit 3m
_RECEIVED, _ONLINE, _DIGITIZED, _FEE, _PAID, _PROCESSED, _DEN, _ONTIME = (1 << (3 * m) for m in range(8))
_SCORE_BITS = (_RECEIVED | _ONLINE | _DIGITIZED | _FEE | _PAID | _DEN | _ONTIME) << 2  # year window


_ACC, _DUP, _COR, _REJ = (int(o) for o in Outcome)


class _Dossier:
    __slots__ = ("statuses", "ver", "summary")

    def __init__(self) -> None:
        self.statuses: list[tuple[float, int, str, tuple]] = []  # (t, seq, status, values), sorted
        self.ver = 0
        self.summary: tuple | None = None


def effective(statuses: Sequence[tuple[float, int, str, tuple]]) -> list:
    """Each attribute's latest non-null value by event time (ATTRS order)."""
    cur = [None] * len(ATTRS)
    for entry in statuses:
        for j, v in enumerate(entry[3]):
            if v is not None:
                cur[j] = v
    return cur


def derive(statuses: Sequence[tuple[float, int, str, tuple]]) -> tuple:
    """Summary of one dossier: (unit, recv_t, online, digitized, fee, paid,
    processed_t, on_time, closed, deadline, frozen_overdue)."""
    recv_t = processed_t = None
    closed = False
    paused = 0.0
    open_since = None
    n_supp = 0
    paused_at_proc = 0.0
    supp_at_proc = 0
    unit = channel = due = fee_v = paid_v = dig_v = None
    for t, _, status, vals in statuses:
        u, c, du, f, pa, dg = vals
        if u is not None:
            unit = u
        if c is not None:
            channel = c
        if du is not None:
            due = du
        if f is not None:
            fee_v = f
        if pa is not None:
            paid_v = pa
        if dg is not None:
            dig_v = dg
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
    # the online-payment rate's denominator: fee-bearing dossiers whose payment is known (paid_online
    # true or false); a feed that never sends paid_online gives no rate (a grey tile), not 0 % (a red one)
    fee = fee_v is True and paid_v is not None
    paid = fee and paid_v is True
    online = channel == "online"
    digitized = dig_v is True
    return (unit, recv_t, online, digitized, fee, paid, processed_t, on_time, closed, deadline, frozen)


_bit_cache: dict[int, tuple[int, ...]] = {}


def _bits(mask: int) -> tuple[int, ...]:
    """Indices of the set bits of a mask (memoised: few distinct masks occur)."""
    idx = _bit_cache.get(mask)
    if idx is None:
        idx = _bit_cache[mask] = tuple(b for b in range(N_BITS) if (mask >> b) & 1)
    return idx


_get_attrs = attrgetter(*ATTRS)


class DossierProcessor:
    """Dossier feed processor (streams.core.Processor)."""

    feed = "dossier"

    def __init__(self, catalog: Catalog, max_unknown_entities: int = MAX_UNKNOWN_ENTITIES) -> None:
        self.catalog = catalog
        self.max_unknown_entities = max_unknown_entities
        self._level = {u.id: u.level for u in catalog.units.values()}
        # ranked against its peers: a province's departments carry the province's level, but the province
        # itself (a unit without a parent) is not one of its own departments (streams/ranking.py)
        self._rank_group = {u.id: u.level if u.parent is not None else f"{u.level}:top" for u in catalog.units.values()}
        self._targets_cache: dict[str, tuple[str, ...]] = {}
        self._reset()

    def _reset(self) -> None:
        self._w: float | None = None
        self._seq = 0
        self._d: dict[str, _Dossier] = {}
        self._tomb: set[str] = set()
        self._unknown_units: set[str] = set()  # units missing from the catalog that events named
        self._vals: dict[tuple, tuple] = {}  # interned value tuples
        self._counters: dict[str, list[int]] = {}
        self._heap: list[tuple[float, str, int]] = []
        self._sent: dict[tuple[str, str, str], tuple[Any, str | None]] = {}
        self._ds = self._ms = self._ys = 0.0
        self._next_day = float("-inf")
        self._dirty: set[str] = set()
        self._late: set[tuple[str, str]] = set()
        # counter changes not yet applied: (unit, bits, late) -> net count (see _flush_pending)
        self._pend: dict[tuple[str, int, bool], int] = {}
        # counter bits changed per unit since the last _emit; _full: check every row of the
        # dirty units (periods rolled over, or state was restored)
        self._chg: dict[str, int] = {}
        self._full = True

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

    def _mask(self, s: tuple | None) -> int:
        if s is None:
            return 0
        _, recv_t, online, digitized, fee, paid, processed_t, on_time, closed, deadline, frozen = s
        ds, ms, ys = self._ds, self._ms, self._ys
        m = 0
        if recv_t is not None:
            pb = 7 if recv_t >= ds else 6 if recv_t >= ms else 4 if recv_t >= ys else 0
            if pb:
                m = pb
                if online:
                    m |= pb << (3 * M_ONLINE)
                if digitized:
                    m |= pb << (3 * M_DIGITIZED)
                if fee:
                    m |= pb << (3 * M_FEE)
                if paid:
                    m |= pb << (3 * M_PAID)
        if processed_t is not None:
            pb = 7 if processed_t >= ds else 6 if processed_t >= ms else 4 if processed_t >= ys else 0
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
        """Queue ±bits for a unit and its ancestors; applied in bulk by _flush_pending.

        Counters are only read at batch end and at a period rollover, so the
        many ±1 changes of a batch collapse into one net count per
        (unit, bits) instead of a bit loop per event and ancestor.
        """
        key = (unit, bits, late)
        pend = self._pend
        pend[key] = pend.get(key, 0) + sign

    def _flush_pending(self) -> None:
        pend = self._pend
        if not pend:
            return
        counters, dirty, targets, chg = self._counters, self._dirty, self._targets, self._chg
        for (unit, bits, late), n in pend.items():
            tg = targets(unit)
            idx = _bits(bits)
            for u in tg:
                c = counters.get(u)
                if c is None:
                    c = counters[u] = [0] * N_BITS
                    chg[u] = ALL_BITS  # a new unit: all its rows are new
                if n:
                    for b in idx:
                        c[b] += n
                    chg[u] = chg.get(u, 0) | bits
            dirty.update(tg)
            if late:
                for u in tg:
                    for wi, w in enumerate(WINDOWS):
                        if bits & (0o11111111 << wi):
                            self._late.add((u, w))
                    if bits >> BIT_OPEN:
                        self._late.add((u, "now"))
        pend.clear()

    # ---------------------------------------------------------------- time
    def _advance(self, t: float) -> None:
        """Move the watermark forward to t: roll calendar periods, pop deadlines."""
        first = self._w is None
        self._w = t
        if t >= self._next_day:
            self._flush_pending()
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
            self._full = True  # period labels changed: every row of every unit is re-checked
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
            return result.set_outcome(np.zeros(0, dtype=np.int8))
        limit = None if now is None else now + SKEW_S + FUTURE_S
        event = self._event
        units = self.catalog.units
        unknown_units = self._unknown_units
        outcome: list[int] = []
        append = outcome.append
        changed = 0
        for i, ev in enumerate(events):
            t = ev.t
            w = self._w
            if limit is not None:
                fut = t > limit
            else:
                fut = w is not None and t > w + FUTURE_S
            if fut:
                result.rejections.append(rejection(self.feed, ev, FUTURE, t, w, now, "year", i))
                append(_REJ)
                continue
            if w is not None and t < self._ys:
                result.rejections.append(
                    rejection(self.feed, ev, TOO_LATE, t, w, now, "calendar year", i)
                )
                append(_REJ)
                continue
            did = ev.dossier
            tomb = did in self._tomb  # closed last year: nothing to count, but time moves on
            vals = _get_attrs(ev)
            vals = self._vals.setdefault(vals, vals)
            d = None if tomb else self._d.get(did)
            j = None
            if d is not None:
                tc = round(t * 100.0)
                status = ev.status
                for jj, entry in enumerate(d.statuses):
                    if entry[2] == status and round(entry[0] * 100.0) == tc:
                        j = jj
                        break
                if j is not None and d.statuses[j][3] == vals:
                    append(_DUP)
                    continue
            unit = ev.unit
            if not tomb and unit not in units and unit not in unknown_units:
                if len(unknown_units) >= self.max_unknown_entities:
                    result.rejections.append(
                        cap_rejection(self.feed, ev, f"unit {unit!r}", self.max_unknown_entities, i)
                    )
                    append(_REJ)
                    continue
                unknown_units.add(unit)
            append(_ACC if j is None else _COR)
            changed += 1
            if w is None or t > w:
                heap = self._heap
                if t >= self._next_day or (heap and heap[0][0] < t):
                    self._advance(t)
                else:
                    self._w = t  # the common case of _advance: nothing rolls over, nothing falls due
                if did in self._tomb:  # the advance closed a year and dropped this dossier
                    continue
                d = self._d.get(did)
            if not tomb:
                event(ev, t, w is not None and t < w, d, j, vals)
        if self._w is not None and changed:
            result.indicators = self._emit()
        return result.set_outcome(np.array(outcome, dtype=np.int8))

    def advance_to(self, t: float) -> ProcessResult:
        """Move the watermark to t with no event (an idle partition, docs/scaling.md): calendar periods
        roll and deadlines fall due as if another unit's event at t had arrived."""
        result = ProcessResult().set_outcome(np.zeros(0, dtype=np.int8))
        if self._w is not None and t <= self._w:
            return result
        self._advance(t)
        result.indicators = self._emit()
        return result

    def _event(self, ev: Any, t: float, late: bool, d: _Dossier | None, j: int | None, vals: tuple) -> None:
        """Apply one admitted event: a new entry (j None) or a correction of entry j of dossier d."""
        did = ev.dossier
        if d is None:
            d = self._d[did] = _Dossier()
            old = None
            old_mask = 0
        else:
            old = d.summary
            old_mask = self._mask(old)
        if j is None:
            self._seq = seq = self._seq + 1
            insort(d.statuses, (t, seq, ev.status, vals))
        else:  # a correction keeps the entry's place (time and arrival order)
            e = d.statuses[j]
            d.statuses[j] = (e[0], e[1], e[2], vals)
        new = d.summary = derive(d.statuses)
        new_mask = self._mask(new)
        pend = self._pend
        if old is not None and old[0] != new[0]:
            key = (old[0], old_mask, late)
            pend[key] = pend.get(key, 0) - 1
            key = (new[0], new_mask, late)
            pend[key] = pend.get(key, 0) + 1
        else:
            diff = old_mask ^ new_mask
            if diff:
                key = (new[0], diff & new_mask, late)
                pend[key] = pend.get(key, 0) + 1
                key = (new[0], diff & old_mask, late)
                pend[key] = pend.get(key, 0) - 1
        d.ver += 1
        dl = new[9]
        if dl is not None and not dl < self._w:
            heapq.heappush(self._heap, (dl, did, d.ver))
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
        append = out.append
        for wi, w in enumerate(WINDOWS):
            rec, onl, dig, fee, paid, proc, den, ont = c[wi:24:3]  # metric m of window wi is c[3m + wi]
            # rates: round(x, 3) + 0.0 is ioc.records.round_value, inlined
            append(("dossier_received", w, rec, "dossiers"))
            append(("dossier_processed", w, proc, "dossiers"))
            append(("dossier_online_rate", w, round(onl / rec, 3) + 0.0 if rec else None, "ratio"))
            append(("dossier_digitization_rate", w, round(dig / rec, 3) + 0.0 if rec else None, "ratio"))
            append(("dossier_online_payment_rate", w, round(paid / fee, 3) + 0.0 if fee else None, "ratio"))
            append(("dossier_on_time_rate", w, round(ont / den, 3) + 0.0 if den else None, "ratio"))
        append(("dossier_open", "now", c[BIT_OPEN], "dossiers"))
        append(("dossier_overdue_open", "now", c[BIT_OVERDUE], "dossiers"))
        return out

    def _score(self, unit: str) -> float | None:
        rec, onl, dig, fee, paid, _, den, ont = self._counters[unit][2:24:3]  # year window
        rates = {
            "dossier_online_rate": onl / rec if rec else None,
            "dossier_digitization_rate": dig / rec if rec else None,
            "dossier_online_payment_rate": paid / fee if fee else None,
            "dossier_on_time_rate": ont / den if den else None,
        }
        return unit_score(rates, self.catalog.targets)

    def _periods(self) -> dict[str, str | None]:
        w = self._w
        return {"day": period_key(w, "day"), "month": period_key(w, "month"), "year": period_key(w, "year"), "now": None}

    def _current(self, units, scores: dict[str, float | None] | None = None) -> list[tuple[str, str, str, Any, str | None, str | None]]:
        """(name, window, entity, value, unit, period) for the given units (scores: already computed ones)."""
        periods = self._periods()
        rows = []
        append = rows.append
        for u in units:
            for name, w, v, mu in self._values(u):
                append((name, w, u, v, mu, periods[w]))
            score = scores[u] if scores is not None and u in scores else self._score(u)
            append(("unit_score", "year", u, score, "points", periods["year"]))
        return rows

    def _all_scores(self) -> dict[str, float | None]:
        """Score of every ranked unit (units of the catalog with counters); = _score, unrolled.

        Same arithmetic as streams.ranking.unit_score (components in
        COMPONENTS order, each min(1, rate / target) * 100, or 100 for a
        target <= 0; mean rounded to 3 decimals), without a dict per unit.
        """
        tg = self.catalog.targets
        targets = (tg.online_rate, tg.digitization_rate, tg.online_payment_rate, tg.on_time_rate)
        t_onl, t_dig, t_pay, t_ont = targets
        if min(targets) <= 0:
            return {u: self._score(u) for u in self._counters if u in self._level}
        level = self._level
        out: dict[str, float | None] = {}
        for u, c in self._counters.items():
            if u not in level:
                continue
            rec, onl, dig, fee, paid, _, den, ont = c[2:24:3]
            parts = []
            if rec:
                parts.append(min(1.0, onl / rec / t_onl) * 100.0)
                parts.append(min(1.0, dig / rec / t_dig) * 100.0)
            if fee:
                parts.append(min(1.0, paid / fee / t_pay) * 100.0)
            if den:
                parts.append(min(1.0, ont / den / t_ont) * 100.0)
            out[u] = round(sum(parts) / len(parts), 3) + 0.0 if parts else None
        return out

    def _rank_rows(self, scores: dict[str, float | None] | None = None) -> list[tuple[str, str, str, Any, str | None, str | None]]:
        if scores is None:
            scores = self._all_scores()
        ranks = rank_units({u: s for u, s in scores.items() if s is not None}, self._rank_group)
        year = period_key(self._w, "year")
        return [("unit_rank", "year", u, ranks.get(u), None, year) for u in self._counters if u in self._level]

    def _emit(self) -> list[Indicator]:
        """Records whose (value, period) differ from the last ones sent, sorted by key.

        The rows of _current are generated and diffed in one pass here (this
        runs for every dirty unit at every batch end, ~39 rows per unit).
        """
        self._flush_pending()
        ts = format_ts(self._w)
        dirty = self._dirty
        changed: list[tuple] = []
        sent = self._sent
        if dirty:
            scores = self._all_scores()  # each score once, shared by score and rank rows
            periods = self._periods()
            wins = [(wi, w, periods[w]) for wi, w in enumerate(WINDOWS)]
            p_year = periods["year"]
            sent_get = sent.get
            full, chg = self._full, self._chg
            for u in sorted(dirty):
                # Only rows whose counters changed since the last emit can differ from what
                # was sent then (every dirty unit's rows are diffed at each emit): skip the rest.
                m = ALL_BITS if full else chg.get(u, 0)
                if not m:
                    continue
                c = self._counters[u]
                rows = []
                for wi, w, period in wins:
                    wm = m >> wi
                    if not wm & 0o11111111:
                        continue
                    rec, onl, dig, fee, paid, proc, den, ont = c[wi:24:3]  # metric m of window wi is c[3m + wi]
                    # rates: round(x, 3) + 0.0 is ioc.records.round_value, inlined
                    if wm & _RECEIVED:
                        rows.append(("dossier_received", w, u, rec, "dossiers", period))
                    if wm & _PROCESSED:
                        rows.append(("dossier_processed", w, u, proc, "dossiers", period))
                    if wm & (_RECEIVED | _ONLINE):
                        rows.append(("dossier_online_rate", w, u, round(onl / rec, 3) + 0.0 if rec else None, "ratio", period))
                    if wm & (_RECEIVED | _DIGITIZED):
                        rows.append(("dossier_digitization_rate", w, u, round(dig / rec, 3) + 0.0 if rec else None, "ratio", period))
                    if wm & (_FEE | _PAID):
                        rows.append(("dossier_online_payment_rate", w, u, round(paid / fee, 3) + 0.0 if fee else None, "ratio", period))
                    if wm & (_DEN | _ONTIME):
                        rows.append(("dossier_on_time_rate", w, u, round(ont / den, 3) + 0.0 if den else None, "ratio", period))
                if m >> BIT_OPEN & 1:
                    rows.append(("dossier_open", "now", u, c[BIT_OPEN], "dossiers", None))
                if m >> BIT_OVERDUE & 1:
                    rows.append(("dossier_overdue_open", "now", u, c[BIT_OVERDUE], "dossiers", None))
                if m & _SCORE_BITS:
                    score = scores[u] if u in scores else self._score(u)
                    rows.append(("unit_score", "year", u, score, "points", p_year))
                for row in rows:
                    key = row[:3]
                    prev = sent_get(key)
                    v = row[3]
                    if prev is None:
                        if v is None:
                            continue
                    elif prev[0] == v and prev[1] == row[5] and type(prev[0]) is type(v):
                        continue
                    sent[key] = (v, row[5])
                    changed.append(row)
            for row in self._rank_rows(scores):
                name, w, u, v, mu, period = row
                key = (name, w, u)
                prev = sent_get(key)
                if prev is None:
                    if v is None:
                        continue
                elif prev[0] == v and prev[1] == period and type(prev[0]) is type(v):
                    continue
                sent[key] = (v, period)
                changed.append(row)
        # (name, window, entity) is unique per row, so sorting the rows never compares values
        changed.sort()
        late = self._late
        units = self.catalog.units
        # positional: name, window, entity, ts, value, unit, period, stale, unknown, late
        out = [
            Indicator(name, w, u, ts, v, mu, period, False, u not in units,
                      bool(late) and (u, "year" if name in ("unit_score", "unit_rank") else w) in late)
            for name, w, u, v, mu, period in changed
        ]
        self._dirty.clear()
        self._late.clear()
        self._chg.clear()
        self._full = False
        return out

    def flush(self) -> list[Indicator]:
        if self._w is None:
            return []
        self._flush_pending()
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
        self._flush_pending()
        return {
            "version": 2,
            "watermark": self._w,
            "seq": self._seq,
            "dossiers": [
                [did, [[t, sq, st, list(v)] for t, sq, st, v in d.statuses], d.ver]
                for did, d in self._d.items()
            ],
            "unknown_units": sorted(self._unknown_units),
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
        intern = self._vals
        for row in state["dossiers"]:
            d = _Dossier()
            if len(row) == 4:  # version 1: per attribute (t, seq, value) of the event that set it
                did, statuses, attrs, ver = row
                by_seq: dict[int, list] = {}
                for name, (_, sq, v) in attrs.items():
                    if name in ATTRS:
                        by_seq.setdefault(int(sq), [None] * len(ATTRS))[ATTRS.index(name)] = v
                entries = [(t, sq, st, by_seq.get(int(sq), [None] * len(ATTRS))) for t, sq, st in statuses]
            else:
                did, entries, ver = row
            for t, sq, st, v in entries:
                v = tuple(v)
                d.statuses.append((float(t), int(sq), st, intern.setdefault(v, v)))
            d.statuses.sort()
            d.ver = ver
            d.summary = derive(d.statuses)
            self._d[did] = d
            dl = d.summary[9]
            if dl is not None and not dl < self._w:
                self._heap.append((dl, did, ver))
        heapq.heapify(self._heap)
        self._tomb = set(state["tombstones"])
        units = self.catalog.units
        self._unknown_units = set(state.get("unknown_units", ()))
        self._unknown_units |= {u for u in state["counters"] if u not in units}
        self._counters = {u: list(c) for u, c in state["counters"].items()}
        self._sent = {(n, wn, e): (v, p) for n, wn, e, v, p in state["sent"]}
