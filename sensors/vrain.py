"""Vrain-style poller: GET a JSON endpoint of per-station rain accumulated
since 19:00 local, difference successive polls into RainEvents, deliver to
a sink.  The differencing rules live in sensors.vrain_diff (pure).

Response schema (our documented stand-in for the Vrain public feed):

    {
      "time": "2026-10-28T13:10:00+07:00",        # when the snapshot was taken (offset required)
      "stations": [
        {"id": "VP-001", "name": "Trạm đo mưa Liên Bảo", "lat": 21.3052, "lon": 105.6001,
         "rain_since_19h_mm": 12.4,                 # accumulation since 19:00 of the rain day
         "time": "2026-10-28T13:08:00+07:00"}       # optional: the station's own last update
      ]
    }

A station's reading is timed by its own `time` when present, else the
snapshot's.  Station ids are mapped through `station_ids` (feed id →
catalog id; unmapped ids pass through and the core flags them unknown).
Bad entries become Rejections (feed "rain", position = index in
`stations`); a bad body is one Rejection (position -1): malformed, over
`MAX_BODY_BYTES` (too_large), nested too deep (too_deep), or a snapshot
time outside the accepted years (bad_timestamp).  Parsing never raises.  HTTP failures are
not rejections: they are counted in `stats` and logged (without headers,
which may carry an API key), and polling goes on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Mapping

import httpx
import msgspec

from ioc.errors import Reason, Rejection
from ioc.events import RainEvent

from .replay import MAX_DEPTH, T_MAX, T_MIN, TOO_DEEP, TOO_LARGE, nesting_depth
from .sink import Sink
from .vrain_diff import VrainDiffer

log = logging.getLogger(__name__)

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class VrainStation(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    rain_since_19h_mm: float
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    time: AwareDatetime | None = None


class VrainSnapshot(msgspec.Struct, kw_only=True):
    time: AwareDatetime
    stations: list[msgspec.Raw]


def _reason(message: str) -> Reason:
    if "missing required field" in message:
        return Reason.MISSING_FIELD
    if "datetime" in message or "timezone" in message:
        return Reason.BAD_TIMESTAMP
    if "Expected `object`" in message and "at `$" not in message:
        return Reason.NOT_AN_OBJECT
    if message.startswith("Expected"):
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE


_station_decoder = msgspec.json.Decoder(VrainStation)
_snapshot_decoder = msgspec.json.Decoder(VrainSnapshot)
MAX_BODY_BYTES = 16 << 20  # ~200 bytes a station: room for 80,000 stations


def _body_rejection(body: bytes) -> Rejection | None:
    if len(body) > MAX_BODY_BYTES:
        return Rejection(TOO_LARGE, f"vrain snapshot: {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit",
                         "rain", body[:2000], -1)
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and nesting_depth(body) > MAX_DEPTH:
        return Rejection(TOO_DEEP, f"vrain snapshot: JSON nested deeper than {MAX_DEPTH} levels", "rain", body[:2000], -1)
    return None


def _in_window(t: float) -> bool:
    return T_MIN <= t < T_MAX


def parse_snapshot(
    body: bytes, station_ids: Mapping[str, str] | None = None
) -> tuple[dict[float, dict[str, float]], dict[str, bytes], list[Rejection]]:
    """Body → ({reading time: {catalog station id: accumulation mm}}, raw per station, rejections); never raises."""
    refused = _body_rejection(body)
    if refused is not None:
        return {}, {}, [refused]
    try:
        snap = _snapshot_decoder.decode(body)
    except msgspec.ValidationError as exc:
        return {}, {}, [Rejection(_reason(str(exc)), f"vrain snapshot: {exc}", "rain", body[:2000], -1)]
    except msgspec.DecodeError as exc:
        return {}, {}, [Rejection(Reason.BAD_JSON, f"vrain snapshot: malformed JSON: {exc}", "rain", body[:2000], -1)]
    except Exception as exc:  # RecursionError and anything unforeseen: a bad body, not a crash
        return {}, {}, [Rejection(Reason.INVALID_VALUE, f"vrain snapshot: {type(exc).__name__}: {exc}", "rain",
                                  body[:2000], -1)]
    poll_t = snap.time.timestamp()
    if not _in_window(poll_t):
        return {}, {}, [Rejection(Reason.BAD_TIMESTAMP, f"vrain snapshot: time {snap.time.isoformat()} is outside "
                                  "the years 2000..2099", "rain", body[:2000], -1)]
    by_time: dict[float, dict[str, float]] = {}
    raws: dict[str, bytes] = {}
    rejections: list[Rejection] = []
    for i, raw in enumerate(snap.stations):
        raw_b = bytes(raw)
        try:
            st = _station_decoder.decode(raw_b)
        except msgspec.ValidationError as exc:
            rejections.append(Rejection(_reason(str(exc)), f"vrain station: {exc}", "rain", raw_b, i))
            continue
        except Exception as exc:
            rejections.append(Rejection(Reason.INVALID_VALUE, f"vrain station: {type(exc).__name__}: {exc}", "rain", raw_b, i))
            continue
        sid = station_ids.get(st.id, st.id) if station_ids else st.id
        t = st.time.timestamp() if st.time is not None else poll_t
        if not _in_window(t):
            rejections.append(Rejection(Reason.BAD_TIMESTAMP, f"vrain station {st.id}: time {st.time.isoformat()} "  # type: ignore[union-attr]
                                        "is outside the years 2000..2099", "rain", raw_b, i))
            continue
        by_time.setdefault(t, {})[sid] = st.rain_since_19h_mm
        raws[sid] = raw_b
    return by_time, raws, rejections


@dataclass
class PollStats:
    polls: int = 0
    http_errors: int = 0
    ingest_errors: int = 0  # a response that failed to process (a bug; logged, polling goes on)
    last_error: str = ""


class VrainPoller:
    """Poll `url` every `interval_s` and deliver differenced readings to `sink`."""

    def __init__(
        self,
        url: str,
        sink: Sink,
        *,
        interval_s: float = 300.0,
        differ: VrainDiffer | None = None,
        station_ids: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.sink = sink
        self.interval_s = interval_s
        self.differ = differ or VrainDiffer()
        self.station_ids = dict(station_ids) if station_ids else None
        self._client = client
        self._own_client = client is None
        self._timeout_s = timeout_s
        self._headers = dict(headers) if headers else None
        self.stats = PollStats()

    async def _fetch(self) -> bytes:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        async with self._client.stream("GET", self.url, headers=self._headers) as resp:
            resp.raise_for_status()
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:  # stop reading: parse_snapshot refuses it as too_large
                    break
            return bytes(body)

    def ingest(self, body: bytes) -> tuple[list[RainEvent], list[Rejection]]:
        """Parse + difference one response body (no I/O, no sink)."""
        by_time, raws, rejections = parse_snapshot(body, self.station_ids)
        events: list[RainEvent] = []
        for t in sorted(by_time):
            ev, rej = self.differ.update(t, by_time[t], raws)
            events.extend(ev)
            rejections.extend(rej)
        return events, rejections

    async def poll_once(self) -> tuple[list[RainEvent], list[Rejection]]:
        """One GET → sink. Raises httpx.HTTPError when the endpoint fails."""
        body = await self._fetch()
        self.stats.polls += 1
        events, rejections = self.ingest(body)
        if events or rejections:
            self.sink(list(events), rejections)
        return events, rejections

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll until `stop` is set (or the task is cancelled); HTTP errors are logged and survived."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                began = loop.time()
                try:
                    await self.poll_once()
                except httpx.HTTPError as exc:
                    self.stats.http_errors += 1
                    self.stats.last_error = _describe(exc)
                    log.warning("vrain poll of %s failed: %s", _redact(self.url), self.stats.last_error)
                except Exception as exc:  # never let one response stop the feed
                    self.stats.ingest_errors += 1
                    self.stats.last_error = type(exc).__name__
                    log.exception("vrain poll of %s: processing the response failed", _redact(self.url))
                delay = max(0.0, self.interval_s - (loop.time() - began))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def _redact(url: str) -> str:
    """The URL without query or credentials (an API key may travel there)."""
    try:
        u = httpx.URL(url)
        return str(u.copy_with(query=None, fragment=None, userinfo=b""))
    except Exception:  # pragma: no cover - malformed URL
        return "<url>"


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__
