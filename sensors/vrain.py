"""Vrain poller: GET a JSON endpoint of per-station rain accumulated since
19:00 local, difference successive polls into RainEvents, deliver to a sink.
The differencing rules live in sensors.vrain_diff (pure).

Two body shapes are read (told apart by the first byte: `[` or `{`):

1. The Vrain public per-province shape (also what the partner API returns,
   with an `x-api-key` header) — a JSON array, one item per station:

       [{"station": {"uuid": "3f0c…", "name": "Liên Bảo", "address": "…", "lat": 21.30, "lng": 105.60},
         "sumDepth": 12.4,                 # mm accumulated since 19:00 of the rain day
         "level": 1, "color": "#…"}]       # Vrain's own classification: ignored

   It carries no time: the reading time is the poll time (the local clock
   when the response arrived, whole seconds).  Station uuids are mapped to
   catalog station ids through `station_ids` (a small YAML file, see
   `load_station_map`); a uuid that is already a catalog station id maps to
   itself.  An unmapped uuid is counted (`stats.unmapped_readings`) on every
   poll and reported once per process: one Rejection (invalid_value,
   "not mapped") and one log line.  `sumDepth: null` (a station without
   data) is skipped and counted (`stats.no_data`): no data is not 0 mm.

2. Our older stand-in shape, kept for the demo peers and tests:

       {"time": "2026-10-28T13:10:00+07:00",        # when the snapshot was taken (offset required)
        "stations": [{"id": "VP-001", "rain_since_19h_mm": 12.4,
                      "time": "2026-10-28T13:08:00+07:00"}]}   # optional: the station's last update

   A station's reading is timed by its own `time` when present, else the
   snapshot's; unmapped ids pass through (the core flags them unknown).

With `state_path` (`ioc run` uses <data dir>/vrain-state.json) the previous
accumulation per station is written after each poll, before delivery, and
read at start: after a restart the next poll is differenced against it (no
day re-counted, no interval skipped); a crash between the write and the
journal loses that one interval rather than counting it twice.

Bad entries become Rejections (feed "rain", position = index in the array /
`stations`); the other entries of the same poll are processed.  A bad body
is one Rejection (position -1): malformed, over `MAX_BODY_BYTES`
(too_large), nested too deep (too_deep), or a snapshot time outside the
accepted years (bad_timestamp).  Parsing never raises.  HTTP failures are
not rejections: they are counted in `stats`, logged once per change of the
error (never with headers or the API key: see `_MaskSecrets`), and retried
with a doubling backoff (`retry_min_s` … `retry_max_s`); a 401/403 says
whether a key was sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Callable, Collection, Mapping

import httpx
import msgspec
import yaml

from ioc.errors import Reason, Rejection
from ioc.events import RainEvent

from .replay import MAX_DEPTH, T_MAX, T_MIN, TOO_DEEP, TOO_LARGE, nesting_depth
from .sink import Sink
from .vrain_diff import VrainDiffer

log = logging.getLogger(__name__)

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
API_KEY_ENV = "IOC_VRAIN_API_KEY"  # where `ioc run` reads the partner API key from
API_KEY_HEADER = "x-api-key"
UuidText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


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


class PublicStation(msgspec.Struct, kw_only=True):
    uuid: UuidText | int
    name: str | None = None
    address: str | None = None
    lat: float | None = None
    lng: float | None = None


class PublicItem(msgspec.Struct, kw_only=True):
    """One item of the public per-province array; `level`/`color` are Vrain's and ignored."""

    station: PublicStation
    sumDepth: float | None  # required; null = the station has no data now


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
_public_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_item_decoder = msgspec.json.Decoder(PublicItem)
MAX_BODY_BYTES = 16 << 20  # ~200 bytes a station: room for 80,000 stations


def load_station_map(path: Path | str) -> dict[str, str]:
    """YAML `{stations: {<vrain uuid>: <catalog station id>}}` (or the bare mapping); ValueError names a bad entry."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"vrain station map {path}: {exc}") from None
    if isinstance(raw, Mapping) and isinstance(raw.get("stations"), Mapping):
        raw = raw["stations"]
    if not isinstance(raw, Mapping):
        raise ValueError(f"vrain station map {path}: expected a mapping of Vrain uuid → station id")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
            raise ValueError(f"vrain station map {path}: stations[{key}] must be a catalog station id")
        out[str(key)] = str(value)
    return out


def _body_rejection(body: bytes) -> Rejection | None:
    if len(body) > MAX_BODY_BYTES:
        return Rejection(TOO_LARGE, f"vrain snapshot: {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit",
                         "rain", body[:2000], -1)
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and nesting_depth(body) > MAX_DEPTH:
        return Rejection(TOO_DEEP, f"vrain snapshot: JSON nested deeper than {MAX_DEPTH} levels", "rain", body[:2000], -1)
    return None


def _in_window(t: float) -> bool:
    return T_MIN <= t < T_MAX


def is_public_shape(body: bytes) -> bool:
    """The public shape is a JSON array; the stand-in an object."""
    return body.lstrip()[:1] == b"["


@dataclass
class PublicParse:
    readings: dict[str, float]  # catalog station id → mm since 19:00
    raws: dict[str, bytes]
    rejections: list[Rejection]
    unmapped: dict[str, tuple[str, int, bytes]]  # uuid → (name, position, raw item)
    no_data: int = 0


def parse_public(body: bytes, station_ids: Mapping[str, str] | None = None,
                 known: Collection[str] | None = None) -> PublicParse:
    """Public-shape body → readings by catalog station id (the poll time is the caller's); never raises.

    A uuid maps through `station_ids`, else to itself when it is in `known`
    (the catalog's station ids); anything else is returned in `unmapped`.
    """
    out = PublicParse({}, {}, [], {})
    refused = _body_rejection(body)
    if refused is not None:
        out.rejections.append(refused)
        return out
    try:
        items = _public_decoder.decode(body)
    except msgspec.ValidationError as exc:
        out.rejections.append(Rejection(Reason.NOT_AN_OBJECT, f"vrain: expected a JSON array of stations: {exc}",
                                        "rain", body[:2000], -1))
        return out
    except msgspec.DecodeError as exc:
        out.rejections.append(Rejection(Reason.BAD_JSON, f"vrain: malformed JSON: {exc}", "rain", body[:2000], -1))
        return out
    except Exception as exc:  # RecursionError and anything unforeseen: a bad body, not a crash
        out.rejections.append(Rejection(Reason.INVALID_VALUE, f"vrain: {type(exc).__name__}: {exc}", "rain",
                                        body[:2000], -1))
        return out
    ids = station_ids or {}
    for i, raw in enumerate(items):
        raw_b = bytes(raw)
        try:
            item = _item_decoder.decode(raw_b)
        except msgspec.ValidationError as exc:
            out.rejections.append(Rejection(_reason(str(exc)), f"vrain station item: {exc}", "rain", raw_b, i))
            continue
        except Exception as exc:
            out.rejections.append(Rejection(Reason.INVALID_VALUE, f"vrain station item: {type(exc).__name__}: {exc}",
                                            "rain", raw_b, i))
            continue
        uuid = str(item.station.uuid)
        sid = ids.get(uuid) or (uuid if known is not None and uuid in known else None)
        if sid is None:
            out.unmapped.setdefault(uuid, ((item.station.name or "")[:100], i, raw_b))
            continue
        if item.sumDepth is None:
            out.no_data += 1
            continue
        if sid in out.readings:
            out.rejections.append(Rejection(Reason.INVALID_VALUE, f"vrain station {uuid}: station {sid} appears twice "
                                            "in one response; the first is kept", "rain", raw_b, i))
            continue
        out.readings[sid] = item.sumDepth
        out.raws[sid] = raw_b
    return out


def parse_snapshot(
    body: bytes, station_ids: Mapping[str, str] | None = None
) -> tuple[dict[float, dict[str, float]], dict[str, bytes], list[Rejection]]:
    """Stand-in body → ({reading time: {catalog station id: accumulation mm}}, raw per station, rejections); never raises."""
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
    consecutive_failures: int = 0
    last_error: str = ""
    unmapped_readings: int = 0  # items of unmapped uuids, every poll
    no_data: int = 0  # items with sumDepth null


class _MaskSecrets(logging.Filter):
    """Replaces the API key in every record of the loggers it sits on (httpx logs full URLs)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # pragma: no cover - a broken record is not ours to fix
            return True
        if self.secret in text:
            record.msg, record.args = text.replace(self.secret, "***"), ()
        return True


_MASKED_LOGGERS = ("httpx", "httpcore", __name__)


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
        known_stations: Collection[str] | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        api_key_header: str = API_KEY_HEADER,
        retry_min_s: float | None = None,
        retry_max_s: float = 1800.0,
        clock: Callable[[], float] = time.time,
        state_path: Path | None = None,
    ) -> None:
        self.url = url
        self.sink = sink
        self.interval_s = interval_s
        self.differ = differ or VrainDiffer()
        self.station_ids = dict(station_ids) if station_ids else None
        self.known_stations = frozenset(known_stations) if known_stations is not None else None
        self._client = client
        self._own_client = client is None
        self._timeout_s = timeout_s
        self._headers = dict(headers) if headers else {}
        self._api_key = api_key or None
        if self._api_key:
            self._headers[api_key_header] = self._api_key
        self.retry_min_s = min(30.0, interval_s) if retry_min_s is None else retry_min_s
        self.retry_max_s = max(retry_max_s, self.retry_min_s)
        self.clock = clock
        self.unmapped: dict[str, str] = {}  # uuid → station name, reported once each
        self.stats = PollStats()
        self.state_path = Path(state_path) if state_path is not None else None
        self._load_state()
        self._masks: list[tuple[logging.Logger, _MaskSecrets]] = []
        if self._api_key:
            for name in _MASKED_LOGGERS:
                lg = logging.getLogger(name)
                mask = _MaskSecrets(self._api_key)
                lg.addFilter(mask)
                self._masks.append((lg, mask))

    def __repr__(self) -> str:
        return f"VrainPoller({_redact(self.url)!r}, api_key={'***' if self._api_key else None})"

    async def _fetch(self) -> bytes:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        async with self._client.stream("GET", self.url, headers=self._headers or None) as resp:
            resp.raise_for_status()
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:  # stop reading: the parser refuses it as too_large
                    break
            return bytes(body)

    def ingest(self, body: bytes, poll_t: float | None = None) -> tuple[list[RainEvent], list[Rejection]]:
        """Parse + difference one response body (no I/O, no sink); `poll_t` times the public shape."""
        if is_public_shape(body):
            return self._ingest_public(body, float(int(self.clock() if poll_t is None else poll_t)))
        by_time, raws, rejections = parse_snapshot(body, self.station_ids)
        events: list[RainEvent] = []
        for t in sorted(by_time):
            ev, rej = self.differ.update(t, by_time[t], raws)
            events.extend(ev)
            rejections.extend(rej)
        return events, rejections

    def _ingest_public(self, body: bytes, poll_t: float) -> tuple[list[RainEvent], list[Rejection]]:
        parsed = parse_public(body, self.station_ids, self.known_stations)
        rejections = parsed.rejections
        self.stats.no_data += parsed.no_data
        self.stats.unmapped_readings += len(parsed.unmapped)
        for uuid, (name, pos, raw_b) in parsed.unmapped.items():
            if uuid in self.unmapped or len(self.unmapped) >= 10_000:
                continue
            self.unmapped[uuid] = name
            log.warning("vrain station %s (%s) is not mapped to a catalog station; its readings are skipped", uuid, name)
            rejections.append(Rejection(Reason.INVALID_VALUE, f"vrain station {uuid} ({name}) is not mapped to a "
                                        "catalog station: add it to the station map (reported once)", "rain", raw_b, pos))
        events, rej = self.differ.update(poll_t, parsed.readings, parsed.raws)
        return events, rejections + rej

    async def poll_once(self) -> tuple[list[RainEvent], list[Rejection]]:
        """One GET → sink. Raises httpx.HTTPError when the endpoint fails."""
        body = await self._fetch()
        self.stats.polls += 1
        events, rejections = self.ingest(body)
        self._save_state()  # before delivery: a crash in between loses this interval, never counts it twice
        if events or rejections:
            self.sink(list(events), rejections)
        return events, rejections

    def _load_state(self) -> None:
        """The previous accumulation per station, from the last run; an unreadable file is set aside, not fatal."""
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            kept = self.differ.set_state(state.get("stations", {}))
            log.info("vrain: restored the previous accumulation of %d station(s) from %s", kept, self.state_path)
        except (OSError, ValueError, AttributeError) as exc:
            bad = self.state_path.with_name(self.state_path.name + ".unreadable")
            log.warning("vrain state %s is unreadable (%s); moved to %s, stations start afresh", self.state_path,
                        exc, bad.name)
            try:
                os.replace(self.state_path, bad)
            except OSError:
                pass

    def _save_state(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"version": 1, "stations": self.differ.get_state()}, sort_keys=True),
                           encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as exc:  # the poll still counts; a restart would then skip one interval
            log.warning("vrain state %s could not be written: %s", self.state_path, exc)

    def retry_delay_s(self) -> float:
        """Backoff after the n-th failure in a row: retry_min_s · 2^(n-1), at most retry_max_s."""
        n = max(1, self.stats.consecutive_failures)
        return min(self.retry_max_s, self.retry_min_s * 2.0 ** min(n - 1, 60))

    def _failed(self, error: str, exc: BaseException | None = None) -> None:
        self.stats.consecutive_failures += 1
        changed = error != self.stats.last_error
        self.stats.last_error = error
        if exc is not None:
            log.error("vrain poll of %s: processing the response failed: %s", _redact(self.url), error, exc_info=exc)
        elif changed or self.stats.consecutive_failures in (1, 10, 100):
            log.warning("vrain poll of %s failed: %s (failure %d in a row; retrying in %.0f s)", _redact(self.url),
                        error, self.stats.consecutive_failures, self.retry_delay_s())

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll until `stop` is set (or the task is cancelled); failures are logged and retried with backoff."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                began = loop.time()
                try:
                    await self.poll_once()
                except httpx.HTTPError as exc:
                    self.stats.http_errors += 1
                    self._failed(self._describe(exc))
                except Exception as exc:  # never let one response stop the feed
                    self.stats.ingest_errors += 1
                    self._failed(type(exc).__name__, exc)
                else:
                    if self.stats.consecutive_failures:
                        log.info("vrain poll of %s works again after %d failure(s)", _redact(self.url),
                                 self.stats.consecutive_failures)
                    self.stats.consecutive_failures = 0
                if self.stats.consecutive_failures:
                    delay = self.retry_delay_s()
                else:
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

    def close_log_masks(self) -> None:
        """Remove the API-key log filters (the poller is done for good)."""
        for lg, mask in self._masks:
            lg.removeFilter(mask)
        self._masks = []

    def _describe(self, exc: httpx.HTTPError) -> str:
        if isinstance(exc, httpx.HTTPStatusError):
            code = exc.response.status_code
            if code in (401, 403):
                told = (f"the API key was refused ({API_KEY_HEADER} header)" if self._api_key
                        else f"no API key was sent: set {API_KEY_ENV}")
                return f"HTTP {code}: {told}"
            return f"HTTP {code}"
        return type(exc).__name__


def _redact(url: str) -> str:
    """The URL without query or credentials (an API key may travel there)."""
    try:
        u = httpx.URL(url)
        return str(u.copy_with(query=None, fragment=None, userinfo=b""))
    except Exception:  # pragma: no cover - malformed URL
        return "<url>"
