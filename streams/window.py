"""Pure window maths shared by the processors: buckets, admission, helpers.

Bucket convention (right-closed, so a window matches a brute-force
``W - L < t <= W`` exactly whenever readings sit on bucket boundaries):

* bucket index ``k = ceil(t / G)``; bucket ``k`` covers ``(k-1)·G < t <= k·G``;
* a window of ``n`` buckets (length ``L = n·G``) at watermark ``W`` covers the
  buckets ``ceil(W/G) - n + 1 … ceil(W/G)``.

Buckets live in ring buffers addressed by ``k mod R`` (R = buckets of state
held); when the watermark bucket advances, the slots of the buckets that
leave are subtracted from running window sums and then cleared.

Admission (docs/architecture.md, time semantics): an event more than
``FUTURE_S`` ahead of the reference is refused as future-dated (reference = the feed's watermark, or
``now + SKEW_S`` when a wall clock is passed in); an event at or behind the
state horizon is refused as too late.  Events of one batch are admitted in
order: the watermark advances as events are admitted, and refused events
never move it.  No watermark and no ``now``: the first event is accepted.

Caps on unknown entities: ids missing from the catalog (stations, cameras,
sites, units) are processed and flagged ``unknown``, but each processor
keeps at most ``max_unknown_entities`` of them (default
`MAX_UNKNOWN_ENTITIES` per feed).  An event that would add one more is
refused with reason ``unknown_entity_limit`` (status `CAPPED`) and keeps
nothing; the decision is taken in input order (`admit_capped`), so it
depends only on the order of the events, not on how they were batched.
Entities once kept stay kept (their state is part of the checkpoint).

Event identity compares timestamps at 0.01 s resolution: `centis` is the
integer number of centiseconds, rounded half to even.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ioc.errors import Reason, Rejection
from ioc.events import Event, encode_event
from ioc.timeutil import format_ts

FUTURE_S = 86400.0  # more than one day ahead of the reference: future-dated
SKEW_S = 300.0  # tolerated wall-clock skew when `now` is given
STALE_S = 1800.0  # a station 30 min behind its feed's watermark is stale

OK = 0
FUTURE = 1
TOO_LATE = 2
CAPPED = 3

MAX_UNKNOWN_ENTITIES = 1000  # per feed (constructor parameter `max_unknown_entities`)


def centis(t: np.ndarray) -> np.ndarray:
    """Event times as integer centiseconds (the resolution of event identity)."""
    return np.rint(np.asarray(t, dtype=np.float64) * 100.0).astype(np.int64)


def centi(t: float) -> int:
    """`centis` of one time (Python's round is half to even, like numpy's rint)."""
    return round(t * 100.0)


def bucket_of(t: float, g_s: int) -> int:
    """Right-closed bucket index of one time: ceil(t / G)."""
    return math.ceil(t / g_s)


def buckets_of(t: np.ndarray, g_s: int) -> np.ndarray:
    """Vectorised ``bucket_of`` (int64)."""
    return np.ceil(t / g_s).astype(np.int64)


def ring_slots(first_k: int, last_k: int, ring: int) -> np.ndarray:
    """Ring slots of buckets first_k … last_k inclusive (empty when last < first)."""
    if last_k < first_k:
        return np.empty(0, dtype=np.int64)
    return np.arange(first_k, last_k + 1, dtype=np.int64) % ring


def _exclusive_prefix_max(t: np.ndarray, start: float) -> np.ndarray:
    """prior[i] = max(start, t[0..i-1])."""
    prior = np.empty_like(t)
    if len(t) == 0:
        return prior
    prior[0] = start
    if len(t) > 1:
        np.maximum.accumulate(t[:-1], out=prior[1:])
        np.maximum(prior[1:], start, out=prior[1:])
    return prior


def admit_times(
    t: np.ndarray, watermark: float | None, now: float | None, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Admission of one batch of event times, in order.

    Returns ``(status, prior)``: ``status[i]`` is OK, FUTURE or TOO_LATE and
    ``prior[i]`` the watermark just before event i was looked at (``-inf``
    when there was none).  Too late: ``t <= prior - horizon_s``.
    Vectorised on the usual path; falls back to an exact sequential loop
    when a batch holds a future-dated event with no wall clock (each
    refusal changes the later watermarks).
    """
    n = len(t)
    start = -math.inf if watermark is None else float(watermark)
    status = np.zeros(n, dtype=np.int8)
    if n == 0:
        return status, np.empty(0)
    if now is not None:
        fut = t > (now + SKEW_S + FUTURE_S)
        status[fut] = FUTURE
        tt = np.where(fut, -math.inf, t)
        prior = _exclusive_prefix_max(tt, start)
    else:
        prior = _exclusive_prefix_max(t, start)
        fut = (t > prior + FUTURE_S) & (prior > -math.inf)  # no watermark yet: accept
        if fut.any():
            return _admit_loop(t, start, horizon_s)
    late = (t <= prior - horizon_s) & (status == OK)
    status[late] = TOO_LATE
    return status, prior


def _admit_loop(t: np.ndarray, start: float, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(t)
    status = np.zeros(n, dtype=np.int8)
    prior = np.empty(n)
    w = start
    for i, ti in enumerate(t.tolist()):
        prior[i] = w
        if w > -math.inf and ti > w + FUTURE_S:
            status[i] = FUTURE
        elif ti <= w - horizon_s:
            status[i] = TOO_LATE
        elif ti > w:
            w = ti
    return status, prior


def admit_capped(
    t: np.ndarray,
    watermark: float | None,
    now: float | None,
    horizon_s: float,
    new_ids: Sequence[tuple],
    room: int,
) -> tuple[np.ndarray, np.ndarray, list]:
    """`admit_times`, event by event, with a cap on new unknown entities.

    ``new_ids[i]`` names the unknown entities event i would add (empty when
    none); ``room`` is how many more may be kept.  An event admitted by time
    whose new entities do not all fit is CAPPED (it does not move the
    watermark and takes no room).  Returns ``(status, prior, added)`` with
    the new entities taken, in the order they were first admitted.
    """
    n = len(t)
    status = np.zeros(n, dtype=np.int8)
    prior = np.empty(n)
    w = -math.inf if watermark is None else float(watermark)
    limit = None if now is None else now + SKEW_S + FUTURE_S
    taken: set = set()
    added: list = []
    for i, ti in enumerate(t.tolist()):
        prior[i] = w
        if limit is not None:
            fut = ti > limit
        else:
            fut = w > -math.inf and ti > w + FUTURE_S
        if fut:
            status[i] = FUTURE
            continue
        if ti <= w - horizon_s:
            status[i] = TOO_LATE
            continue
        ids = new_ids[i]
        if ids:
            need = [x for x in dict.fromkeys(ids) if x not in taken]
            if need:
                if len(taken) + len(need) > room:
                    status[i] = CAPPED
                    continue
                taken.update(need)
                added.extend(need)
        if ti > w:
            w = ti
    return status, prior, added


def cap_rejection(feed: str, event: Event, what: str, cap: int, position: int) -> Rejection:
    """The Rejection of an event refused because the feed keeps `cap` unknown entities already."""
    detail = (
        f"{what} is not in the catalog and the {feed} feed already keeps {cap} unknown "
        f"entities (max_unknown_entities = {cap}); event refused, nothing kept"
    )
    return Rejection(Reason.UNKNOWN_ENTITY_LIMIT, detail, feed, encode_event(event), position)


def rejection(
    feed: str, event: Event, code: int, t: float, prior: float, now: float | None, horizon: str, position: int
) -> Rejection:
    """A Rejection with a readable detail for a refused event."""
    if code == FUTURE:
        if now is not None:
            ref, what = now + SKEW_S, f"wall clock {format_ts(now)} + {int(SKEW_S)} s skew"
        else:
            ref, what = prior, f"{feed} watermark {format_ts(prior)}"
        ahead_h = (t - ref) / 3600.0
        detail = (
            f"event time {format_ts(t)} is {ahead_h:.1f} h ahead of the {what}; "
            f"more than 24 h ahead is refused as future-dated"
        )
        return Rejection(Reason.FUTURE_TIMESTAMP, detail, feed, encode_event(event), position)
    detail = (
        f"event time {format_ts(t)} is older than the {feed} state held "
        f"(the {horizon} up to the watermark {format_ts(prior)}); too late to count"
    )
    return Rejection(Reason.TOO_LATE, detail, feed, encode_event(event), position)


def rejections_for(
    feed: str,
    events: Sequence[Event],
    status: np.ndarray,
    t: np.ndarray,
    prior: np.ndarray,
    now: float | None,
    horizon: str,
    capped=None,
) -> list:
    """Rejections of the refused events (position = index in `events`); `capped(i)` words CAPPED ones."""
    out = []
    for i in np.flatnonzero(status).tolist():
        code = int(status[i])
        if code == CAPPED:
            out.append(capped(i))
        else:
            out.append(rejection(feed, events[i], code, float(t[i]), float(prior[i]), now, horizon, i))
    return out


def sorted_rank(ids: Sequence[str]) -> np.ndarray:
    """rank[i] = position of ids[i] in string order (for deterministic output order)."""
    order = sorted(range(len(ids)), key=ids.__getitem__)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids), dtype=np.int64)
    return rank


def array_state(a: np.ndarray) -> dict:
    """A numpy array as builtins (msgpack-friendly)."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def array_from_state(d: dict) -> np.ndarray:
    return np.frombuffer(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()
