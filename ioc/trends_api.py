"""Trend endpoints for the wall (viewer role): rain hyetograph, 30-day dossiers, today's queue.

    app.include_router(build_trends_router(runtime))

- ``GET /api/trends/rain/{station}?hours=24``: hourly rain bars over the last `hours` (1–72) and
  their running sum, read from the rain processor's 5-minute bucket ring (no copy of the data).
  Bars are local clock hours (+07:00 is a whole-hour offset: hour ends are multiples of 3600 s),
  cut to the window, so the first and the current hour may be partial; the window is the one of
  the ``rain_mm`` indicator of the same length at the rain watermark (docs/architecture.md §4),
  so ``total_mm`` — the curve's end — is that indicator's value.
- ``GET /api/trends/dossiers/{unit}?days=30``: per local day (1–60 days ending on the day of the
  dossier watermark): received, processed and the on-time rate (ioc.history).
- ``GET /api/trends/queue/{site}?days=10``: today's (the camera watermark's day) hourly mean of
  people waiting at the site, against the usual for that hour: the MEDIAN of the same hour over
  the latest `days` (1–30) working days (Mon–Fri) before today that the history holds for the
  site; an hour none of them has is null.  Each hour says how many days its median used.

All times are event time, ISO 8601 +07:00.  Errors: {"detail", "detail_vi", "reason"}: 404
`not_found` for an id missing from the catalog, 422 `invalid_value`, 503 `not_available` on a
backend without the embedded pipeline (`ioc api` over Redis keeps no history).
"""

from __future__ import annotations

import asyncio
import functools
import math
import statistics
from datetime import date, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ioc.api_models import ErrorBody, error_responses, secured
from ioc.auth.http import require
from ioc.timeutil import format_ts, local, period_key

HOUR_S = 3600
BUCKET_S = 300
RAIN_HOURS = (1, 72)
DOSSIER_DAYS = (1, 60)
USUAL_DAYS = (1, 30)


class RainBar(BaseModel):
    start: str = Field(description="start of the bar (exclusive), ISO 8601 +07:00")
    end: str = Field(description="end of the bar (inclusive), ISO 8601 +07:00")
    rain_mm: float
    cumulative_mm: float = Field(description="rain since the window's start, up to this bar's end")


class RainTrend(BaseModel):
    station: str
    name: str
    hours: int
    watermark: str | None = Field(description="the rain feed's event time the window ends at")
    has_data: bool = Field(description="false: the station has not reported (no data is not zero)")
    stale: bool
    total_mm: float | None
    bars: list[RainBar]


class DossierDay(BaseModel):
    day: str = Field(description="local calendar day, YYYY-MM-DD")
    received: int | None
    processed: int | None
    on_time_rate: float | None = Field(description="processed on time / processed (null: none processed)")
    source: str | None = Field(description="live | demo (generated demo history) | null (no data)")


class DossierTrend(BaseModel):
    unit: str
    name: str
    days: list[DossierDay]
    watermark: str | None
    received_total: int
    processed_total: int


class QueueHour(BaseModel):
    hour: str = Field(description="start of the local hour, ISO 8601 +07:00")
    waiting_mean: float | None = Field(description="today's mean of people waiting at the site (sum over its cameras)")
    usual: float | None = Field(description="median of the same hour over the usual days")
    usual_days: int = Field(description="how many days the median used")


class QueueTrend(BaseModel):
    site: str
    name: str
    day: str | None
    watermark: str | None
    usual_days: int = Field(description="working days asked for")
    usual_from: list[str] = Field(description="the working days the usual is taken from")
    hours: list[QueueHour]


ERRORS = {**error_responses(401, 403, 404, 422),
          503: {"model": ErrorBody, "description": "This server keeps no trend data (`ioc api` over Redis)."}}
ROUTE = {"responses": ERRORS, "tags": ["trends"], "openapi_extra": secured("viewer")}


class _Refused(Exception):
    def __init__(self, status: int, reason: str, en: str, vi: str) -> None:
        super().__init__(en)
        self.status, self.reason, self.en, self.vi = status, reason, en, vi

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.en, "detail_vi": self.vi, "reason": self.reason}, status_code=self.status)


def _int_param(value: str | None, name: str, default: int, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    if value is None:
        return default
    v = value.strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 4) or not lo <= int(v) <= hi:
        raise _Refused(422, "invalid_value", f"{name} must be a whole number from {lo} to {hi}, not {value[:40]!r}",
                       f"{name} phải là số nguyên từ {lo} đến {hi}, không phải {value[:40]!r}")
    return int(v)


def _not_found(what_en: str, what_vi: str, ident: str) -> _Refused:
    return _Refused(404, "not_found", f"no {what_en} {ident[:80]!r} in the catalog",
                    f"không có {what_vi} {ident[:80]!r} trong danh mục")


def _pipeline(runtime: Any):
    pipeline = getattr(runtime, "pipeline", None)
    if pipeline is None or getattr(runtime, "history", None) is None:
        raise _Refused(503, "not_available", "this server keeps no trend data (trends need the embedded runtime, "
                                             "`ioc run`)",
                       "máy chủ này không lưu dữ liệu xu hướng (cần chạy `ioc run`)")
    return pipeline


def rain_trend(rain: Any, station: str, hours: int) -> dict:
    """Hourly bars of `station` from the rain processor's ring (see module docstring)."""
    from streams.rain import RING, STALE_S

    w, k = rain.watermark, getattr(rain, "_k", None)
    row = rain._index.get(station)
    has = row is not None and w is not None and k is not None and bool(rain._last_t[row] > -math.inf)
    out: dict[str, Any] = {"hours": hours, "watermark": format_ts(w) if w is not None else None,
                           "has_data": has, "stale": False, "total_mm": None, "bars": []}
    if not has:
        return out
    out["stale"] = bool(w - rain._last_t[row] >= STALE_S)
    nb = hours * HOUR_S // BUCKET_S
    ks = np.arange(k - nb + 1, k + 1, dtype=np.int64)
    vals = rain._buckets[ks % RING, row].astype(np.int64)  # hundredths of a mm
    per_hour = HOUR_S // BUCKET_S
    groups = -(-ks // per_hour)  # clock hour of each bucket: its end at groups * 3600
    window_start = (k - nb) * BUCKET_S
    bars, cum = [], 0
    for g in np.unique(groups).tolist():
        h = int(vals[groups == g].sum())
        cum += h
        bars.append({"start": format_ts(max((g - 1) * HOUR_S, window_start)), "end": format_ts(min(g * HOUR_S, w)),
                     "rain_mm": h / 100.0, "cumulative_mm": cum / 100.0})
    out["bars"] = bars
    out["total_mm"] = cum / 100.0
    return out


def _guarded(handler):
    """Answer a _Refused as {"detail", "detail_vi", "reason"} with its status (auth errors pass through)."""

    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except _Refused as exc:
            return exc.response()

    return wrapper


def _days_ending(last: date, n: int) -> list[str]:
    return [(last - timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]


def build_trends_router(runtime: Any) -> APIRouter:
    router = APIRouter(tags=["trends"])
    catalog = runtime.catalog

    @router.get("/api/trends/rain/{station}", response_model=RainTrend, summary="Rain of one station, hour by hour", **ROUTE)
    @_guarded
    async def trend_rain(request: Request, station: str,
                         hours: str | None = Query(None, description="window length in hours, 1–72 (default 24)")):
        """Hourly rain bars and the cumulative curve of one station (event time)."""
        require(request, "viewer")
        n = _int_param(hours, "hours", 24, RAIN_HOURS)
        st = catalog.stations.get(station)
        if st is None:
            raise _not_found("rain station", "trạm đo mưa", station)
        rain = _pipeline(runtime).processors["rain"]
        return {"station": station, "name": st.name, **rain_trend(rain, station, n)}

    @router.get("/api/trends/dossiers/{unit}", response_model=DossierTrend, summary="Dossiers of one unit, day by day", **ROUTE)
    @_guarded
    async def trend_dossiers(request: Request, unit: str,
                             days: str | None = Query(None, description="days ending today, 1–60 (default 30)")):
        """Dossiers received and processed, and the on-time rate, per local day of one unit."""
        require(request, "viewer")
        n = _int_param(days, "days", 30, DOSSIER_DAYS)
        u = catalog.units.get(unit)
        if u is None:
            raise _not_found("administrative unit or department", "đơn vị", unit)
        w = _pipeline(runtime).processors["dossier"].watermark
        out = {"unit": unit, "name": u.name, "watermark": format_ts(w) if w is not None else None,
               "days": [], "received_total": 0, "processed_total": 0}
        if w is None:
            return out
        labels = _days_ending(date.fromisoformat(period_key(w, "day")), n)
        rows = await asyncio.to_thread(runtime.history.dossier_days, unit, labels[0], labels[-1])
        for d in labels:
            rec, proc, rate, source = rows.get(d, (None, None, None, None))
            out["days"].append({"day": d, "received": rec, "processed": proc, "on_time_rate": rate,
                                "source": source})
            out["received_total"] += rec or 0
            out["processed_total"] += proc or 0
        return out

    @router.get("/api/trends/queue/{site}", response_model=QueueTrend, summary="Today's queue at one site against the usual", **ROUTE)
    @_guarded
    async def trend_queue(request: Request, site: str,
                          days: str | None = Query(None, description="working days the usual is taken from, "
                                                                      "1–30 (default 10)")):
        """Today's hourly mean queue at one site against the usual for each hour (median of earlier working days)."""
        require(request, "viewer")
        n = _int_param(days, "days", 10, USUAL_DAYS)
        s = catalog.sites.get(site)
        if s is None:
            raise _not_found("one-stop-shop site", "bộ phận một cửa", site)
        w = _pipeline(runtime).processors["camera"].watermark
        out = {"site": site, "name": s.name, "day": None, "watermark": format_ts(w) if w is not None else None,
               "usual_days": n, "usual_from": [], "hours": []}
        if w is None:
            return out
        today = local(w).replace(hour=0, minute=0, second=0, microsecond=0)
        t0 = today.timestamp()
        since = t0 - (n * 7 // 5 + 7) * 86400  # enough calendar days to hold n working days
        rows = await asyncio.to_thread(runtime.history.queue_hours, site, since, t0 + 86400)
        by_day: dict[str, dict[int, float]] = {}
        for hour_s, (mean, _minutes, _src) in rows.items():
            d = local(hour_s)
            by_day.setdefault(d.date().isoformat(), {})[d.hour] = mean
        tday = today.date().isoformat()
        usual_from = sorted(d for d in by_day if d < tday and date.fromisoformat(d).weekday() < 5)[-n:]
        out["day"], out["usual_from"] = tday, usual_from
        for h in range(24):
            past = [by_day[d][h] for d in usual_from if h in by_day[d]]
            out["hours"].append({"hour": format_ts(t0 + h * HOUR_S), "waiting_mean": by_day.get(tday, {}).get(h),
                                 "usual": round(statistics.median(past), 3) if past else None,
                                 "usual_days": len(past)})
        return out

    return router


__all__ = ["build_trends_router", "rain_trend"]
