"""OGC SensorThings API (MQTT push) subscriber for rain observations.

Subscribes to `{prefix}/Datastreams({id})/Observations` for every
configured Datastream under every topic prefix (default both `v1.0` and
`v1.1`: a server publishes under its API version) and maps each
Observation to a RainEvent through the Datastream map (Datastream id → station id; `kind` is "rain", the only
kind a SensorThings rain gauge feeds here; `factor` converts the result to
mm, e.g. 0.1 for a count of 0.1 mm tips):

    datastreams:                       # e.g. in the runtime's YAML config
      "17": {kind: rain, station: VP-001}
      "18": {kind: rain, station: VP-002, factor: 0.2}

Observation payload (SensorThings 1.1 §8.2.2, only what we need):

    {"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 2.4,
     "resultTime": "2026-10-28T13:10:04+07:00", ...}

`phenomenonTime` may be an ISO 8601 interval: the reading is the rain that
fell in it, so its END is the event time (`start/end` → end, `start/PT5M`
→ start + 5 min, `PT5M/end` → end; durations in weeks, days, hours,
minutes, seconds; years and months are refused, their length varies).
The interval's length is checked but not kept: a RainEvent is "rain in
the interval ending at ts" and has no period field.  `result` is the rain
in the interval (mm after `factor`).  The event is then built through ioc.events.parse_event, so the
bounds of every other feed apply (rain per reading, timestamp window).

`convert` never raises: every payload becomes a RainEvent or a Rejection
(feed "rain") with a reason: INVALID_VALUE (a Datastream that is not in the
map), TOO_LARGE (payload over 64 KiB), TOO_DEEP (JSON nested over 32
levels), BAD_JSON, NOT_AN_OBJECT, MISSING_FIELD (no phenomenonTime or
result, or a null result), WRONG_TYPE (result not a number: a string, a
bool, an object), OUT_OF_RANGE (a result beyond the rain bound, or beyond
a float), NEGATIVE_VALUE, BAD_TIMESTAMP (unparseable, not a text, no
offset, an interval that ends before it starts, years/months durations,
outside the accepted years).

Identity: an Observation's natural key is its `@iot.id`.  The subscriber
keeps a bounded map @iot.id → (station, event time) (ObservationIdentity):
an Observation delivered again, or updated with a new result, is the same
(station, ts) reading for the core (a duplicate or a correction) — even if
the update moved its phenomenonTime (it stays at the original time).

Messages are delivered to the sink in batches: at most `batch_max`, or
whatever arrived within `flush_s`.  The subscriber reconnects after a broker
failure (`reconnect_s`) until `stop` is set.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Mapping, Sequence

import aiomqtt
import msgspec

from ioc.errors import Reason, Rejection
from ioc.events import RainEvent, parse_event

from .replay import MAX_DEPTH, OUT_OF_RANGE, TOO_DEEP, TOO_LARGE, nesting_depth
from .sink import Sink

log = logging.getLogger(__name__)

_TOPIC_RE = re.compile(r"Datastreams\((?:'((?:[^']|'')*)'|([^)']+))\)/Observations$")


@dataclass(frozen=True)
class DatastreamTarget:
    station: str
    kind: Literal["rain"] = "rain"
    factor: float = 1.0


def load_datastream_map(raw: Mapping[Any, Any]) -> dict[str, DatastreamTarget]:
    """{"17": {"kind": "rain", "station": "VP-001"}, ...} → typed map; ValueError names a bad entry."""
    out: dict[str, DatastreamTarget] = {}
    for key, value in raw.items():
        if isinstance(value, DatastreamTarget):
            out[str(key)] = value
            continue
        if not isinstance(value, Mapping) or not value.get("station"):
            raise ValueError(f"datastreams[{key}]: needs a mapping with a `station`")
        kind = value.get("kind", "rain")
        if kind != "rain":
            raise ValueError(f"datastreams[{key}]: kind {kind!r} is not supported (only 'rain')")
        factor = float(value.get("factor", 1.0))
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"datastreams[{key}]: factor must be a positive number")
        out[str(key)] = DatastreamTarget(station=str(value["station"]), factor=factor)
    return out


DEFAULT_PREFIXES = ("v1.0", "v1.1")  # SensorThings MQTT topics start with the API version


def load_prefixes(raw: Any) -> tuple[str, ...]:
    """'v1.1' or ['v1.0', 'v1.1'] → distinct prefixes without a trailing '/'; ValueError for MQTT wildcards."""
    items = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, (list, tuple)) else None
    if not items:
        raise ValueError("topic_prefixes: expected a text or a non-empty list of texts, e.g. [v1.0, v1.1]")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip("/ ") or any(c in item for c in "+#\0"):
            raise ValueError(f"topic_prefixes: {item!r} is not an MQTT topic prefix (no wildcards + or #)")
        p = item.strip().rstrip("/")
        if p not in out:
            out.append(p)
    return tuple(out)


MAX_PAYLOAD_BYTES = 64 * 1024  # an Observation is a few hundred bytes: `too_large` beyond
MAX_TIME_TEXT = 100  # longest phenomenonTime accepted (an interval of two timestamps is ~50)
MAX_ID_TEXT = 200  # longest @iot.id tracked for identity
IDENTITY_MAX = 65_536  # Observations remembered by @iot.id (see ObservationIdentity)


class _Observation(msgspec.Struct):
    phenomenonTime: Any = msgspec.UNSET
    result: Any = msgspec.UNSET
    iot_id: Any = msgspec.field(name="@iot.id", default=None)


_obs_decoder = msgspec.json.Decoder(_Observation)


def datastream_of(topic: str) -> str | None:
    """'v1.1/Datastreams(17)/Observations' → '17'; quoted string ids are unquoted."""
    m = _TOPIC_RE.search(topic)
    if not m:
        return None
    return m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)


_DURATION_RE = re.compile(
    r"P(?:(?P<w>\d{1,6}(?:[.,]\d{1,9})?)W)?(?:(?P<d>\d{1,6}(?:[.,]\d{1,9})?)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d{1,8}(?:[.,]\d{1,9})?)H)?(?:(?P<m>\d{1,10}(?:[.,]\d{1,9})?)M)?"
    r"(?:(?P<s>\d{1,12}(?:[.,]\d{1,9})?)S)?)?",
    re.ASCII,
)
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def _duration(text: str) -> timedelta:
    """ISO 8601 duration of weeks/days/hours/minutes/seconds ('PT5M', 'P1DT2H'); ValueError otherwise."""
    m = _DURATION_RE.fullmatch(text)
    if not m or text in ("P", "PT"):
        if re.fullmatch(r"P.*[YM].*", text.split("T")[0]):
            raise ValueError(f"duration {text!r}: years and months are not supported")
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    seconds = sum(float(v.replace(",", ".")) * _UNITS[k] for k, v in m.groupdict().items() if v)
    return timedelta(seconds=seconds)


def _instant(text: str) -> datetime:
    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("no UTC offset")
    return ts


def _parse_time(text: str) -> datetime:
    """phenomenonTime → the event time: an instant, or the end of an interval.

    Intervals (ISO 8601): `start/end` → end, `start/PT5M` → start + 5 min,
    `PT5M/end` → end.  ValueError (or OverflowError) on anything else.
    """
    if len(text) > MAX_TIME_TEXT:
        raise ValueError(f"longer than {MAX_TIME_TEXT} characters")
    parts = text.split("/")
    if len(parts) == 1:
        return _instant(parts[0])
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise ValueError("an interval is `start/end`, `start/duration` or `duration/end`")
    start, end = parts[0].strip(), parts[1].strip()
    if end.startswith("P"):
        if start.startswith("P"):
            raise ValueError("an interval cannot be two durations")
        return _instant(start) + _duration(end)
    if start.startswith("P"):
        _duration(start)  # well-formed, but the end is what counts
    else:
        if _instant(start) > _instant(end):
            raise ValueError("the interval ends before it starts")
    return _instant(end)


class ObservationIdentity:
    """Bounded LRU map: Observation `@iot.id` → the (station, event time) it was first read as.

    A SensorThings Observation's natural key is its `@iot.id`; the core's
    key for rain is (station, ts).  A re-delivered or updated Observation
    (same @iot.id, a new `result`) keeps its phenomenonTime, so it becomes
    the same (station, ts): a duplicate or a correction.  If an update also
    changes phenomenonTime, it is still a correction of the *original*
    reading: its time stays the first one seen (the core has no retraction,
    so moving it would count the rain twice, once at each time).  Only the
    last `max_entries` Observations are remembered; an older id updated with
    a new phenomenonTime counts as a new reading at the new time.  About
    250 bytes per entry: ~16 MB at the default 65,536.
    """

    def __init__(self, max_entries: int = IDENTITY_MAX) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[str, datetime]] = OrderedDict()
        self.updates = 0  # Observations seen again (same @iot.id)
        self.moved = 0  # ... whose phenomenonTime changed (kept at the original time)

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def key(iot_id: Any) -> str | None:
        """A hashable, bounded key for an @iot.id (an integer or a string), else None."""
        if type(iot_id) is int:
            return str(iot_id) if -(2**63) <= iot_id < 2**64 else None
        if type(iot_id) is str and 0 < len(iot_id) <= MAX_ID_TEXT:
            return iot_id
        return None

    def resolve(self, key: str, station: str, ts: datetime) -> datetime:
        """The event time to use for Observation `key` at `station` (its first one when seen before)."""
        seen = self._seen.get(key)
        if seen is not None and seen[0] == station:
            self._seen.move_to_end(key)
            self.updates += 1
            if seen[1] != ts:
                self.moved += 1
            return seen[1]
        return ts

    def remember(self, key: str, station: str, ts: datetime) -> None:
        if key in self._seen:
            self._seen.move_to_end(key)
            if self._seen[key][0] == station:
                return
        self._seen[key] = (station, ts)
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)


def _reject(reason: Reason, detail: str, payload: bytes) -> Rejection:
    return Rejection(reason, detail[:500], "rain", payload if len(payload) <= MAX_PAYLOAD_BYTES else payload[:4096])


def convert(topic: str, payload: bytes, datastreams: Mapping[str, DatastreamTarget],
            identity: ObservationIdentity | None = None) -> RainEvent | Rejection:
    """One MQTT message → a RainEvent or the reason it was refused; never raises.

    Pure unless `identity` is given (then it remembers accepted Observations
    by @iot.id, see ObservationIdentity).  The event is built through
    ioc.events.parse_event, so every bound of the JSONL/HTTP feeds applies.
    """
    try:
        return _convert(topic, payload, datastreams, identity)
    except Exception as exc:  # defensive: a message must never stop the subscriber
        raw = payload if isinstance(payload, bytes) else b""
        return _reject(Reason.INVALID_VALUE, f"cannot convert: {type(exc).__name__}: {exc}", raw)


def _convert(topic: str, payload: bytes, datastreams: Mapping[str, DatastreamTarget],
             identity: ObservationIdentity | None) -> RainEvent | Rejection:
    if not isinstance(payload, bytes):
        try:
            payload = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
        except Exception:
            return _reject(Reason.WRONG_TYPE, f"payload of type {type(payload).__name__} is not bytes", b"")
    ds = datastream_of(topic) if isinstance(topic, str) else None
    target = datastreams.get(ds) if ds is not None else None
    if target is None:
        return _reject(Reason.INVALID_VALUE, f"topic {topic!r}: Datastream {ds!r} is not mapped to a station", payload)
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _reject(TOO_LARGE, f"Datastream {ds}: payload of {len(payload)} bytes is over the "
                       f"{MAX_PAYLOAD_BYTES}-byte limit", payload)
    if payload.count(b"{") + payload.count(b"[") > MAX_DEPTH and nesting_depth(payload) > MAX_DEPTH:
        return _reject(TOO_DEEP, f"Datastream {ds}: JSON nested deeper than {MAX_DEPTH} levels", payload)
    try:
        obs = _obs_decoder.decode(payload)
    except msgspec.ValidationError as exc:  # the top level is not an object, or a number beyond a float
        msg = str(exc)
        reason = OUT_OF_RANGE if "out of range" in msg else Reason.NOT_AN_OBJECT if "at `$" not in msg else Reason.INVALID_VALUE
        return _reject(reason, f"Datastream {ds}: {msg}", payload)
    except msgspec.DecodeError as exc:
        return _reject(Reason.BAD_JSON, f"Datastream {ds}: malformed JSON: {exc}", payload)
    except RecursionError:
        return _reject(TOO_DEEP, f"Datastream {ds}: JSON nested too deep", payload)
    result = obs.result
    if result is msgspec.UNSET or result is None:
        what = "has no result" if result is msgspec.UNSET else "result is null"
        return _reject(Reason.MISSING_FIELD, f"Datastream {ds}: {what}", payload)
    if type(result) not in (int, float):  # bool, str, list, dict
        return _reject(Reason.WRONG_TYPE, f"Datastream {ds}: result is a {type(result).__name__}, not a number", payload)
    try:
        value = float(result)
    except OverflowError:
        return _reject(OUT_OF_RANGE, f"Datastream {ds}: result {str(result)[:40]}... is out of range", payload)
    if not math.isfinite(value):
        return _reject(Reason.INVALID_VALUE, f"Datastream {ds}: result {value} is not finite", payload)
    if value < 0:
        return _reject(Reason.NEGATIVE_VALUE, f"Datastream {ds}: result {value} is negative", payload)
    when = obs.phenomenonTime
    if when is msgspec.UNSET or when is None:
        return _reject(Reason.MISSING_FIELD, f"Datastream {ds}: has no phenomenonTime", payload)
    if type(when) is not str:
        return _reject(Reason.BAD_TIMESTAMP, f"Datastream {ds}: phenomenonTime is a {type(when).__name__}, "
                       "not an ISO 8601 text", payload)
    try:
        ts = _parse_time(when)
    except (ValueError, OverflowError) as exc:
        return _reject(Reason.BAD_TIMESTAMP, f"Datastream {ds}: phenomenonTime {when[:MAX_TIME_TEXT]!r}: {exc}", payload)
    key = identity.key(obs.iot_id) if identity is not None else None
    if key is not None:
        ts = identity.resolve(key, target.station, ts)  # type: ignore[union-attr]
    mm = round(value * target.factor, 6)
    if not math.isfinite(mm):
        return _reject(OUT_OF_RANGE, f"Datastream {ds}: result {value} × factor {target.factor} is out of range", payload)
    wire = {"kind": "rain", "station": target.station, "ts": ts.isoformat(), "rain_mm": mm}
    out = parse_event(msgspec.json.encode(wire))
    if isinstance(out, Rejection):
        return _reject(out.reason, f"Datastream {ds}: {out.detail}", payload)
    if key is not None:
        identity.remember(key, target.station, ts)  # type: ignore[union-attr]
    return out


class SensorThingsSubscriber:
    def __init__(
        self,
        sink: Sink,
        datastreams: Mapping[Any, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        topic_prefix: str | Sequence[str] = DEFAULT_PREFIXES,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        qos: int = 1,
        batch_max: int = 1000,
        flush_s: float = 0.2,
        reconnect_s: float = 2.0,
        identity_max: int = IDENTITY_MAX,
    ) -> None:
        self.sink = sink
        self.datastreams = load_datastream_map(datastreams)
        self.host, self.port = host, port
        self.topic_prefixes = load_prefixes(topic_prefix)
        self._username, self._password = username, password
        self.client_id = client_id
        self.qos = qos
        self.batch_max = batch_max
        self.flush_s = flush_s
        self.reconnect_s = reconnect_s
        self.identity = ObservationIdentity(identity_max)  # @iot.id → (station, ts): updates are corrections
        self.ready = asyncio.Event()  # set while subscribed
        self.received = 0
        self.connects = 0
        self._events: list[RainEvent] = []
        self._rejections: list[Rejection] = []

    def topics(self) -> list[str]:
        out = []
        for prefix in self.topic_prefixes:
            for ds in self.datastreams:
                ident = ds if ds.isdigit() else "'" + ds.replace("'", "''") + "'"
                out.append(f"{prefix}/Datastreams({ident})/Observations")
        return out

    def _flush(self) -> None:
        if self._events or self._rejections:
            events, rejections = self._events, self._rejections
            self._events, self._rejections = [], []
            self.sink(list(events), rejections)

    def handle(self, topic: str, payload: bytes) -> None:
        """Convert one message into the pending batch (flushes when full)."""
        self.received += 1
        out = convert(topic, payload, self.datastreams, self.identity)
        if isinstance(out, Rejection):
            self._rejections.append(out)
        else:
            self._events.append(out)
        if len(self._events) + len(self._rejections) >= self.batch_max:
            self._flush()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self._session(stop)
            except aiomqtt.MqttError as exc:
                self.ready.clear()
                self._flush()
                log.warning("SensorThings MQTT %s:%s: %s; reconnecting in %.1f s", self.host, self.port, exc, self.reconnect_s)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.reconnect_s)
                except asyncio.TimeoutError:
                    pass
        self._flush()

    async def _session(self, stop: asyncio.Event) -> None:
        async with aiomqtt.Client(
            self.host, self.port, username=self._username, password=self._password, identifier=self.client_id
        ) as client:
            self.connects += 1
            topics = self.topics()
            if topics:
                await client.subscribe([(t, self.qos) for t in topics])
            self.ready.set()
            messages = client.messages.__aiter__()
            loop = asyncio.get_running_loop()
            first_pending = 0.0
            try:
                while not stop.is_set():
                    pending = bool(self._events or self._rejections)
                    timeout = self.flush_s
                    if pending:
                        timeout = max(0.0, first_pending + self.flush_s - loop.time())
                        if timeout == 0.0:
                            self._flush()
                            continue
                    try:
                        msg = await asyncio.wait_for(messages.__anext__(), timeout=timeout)
                    except asyncio.TimeoutError:
                        self._flush()
                        continue
                    if not (self._events or self._rejections):
                        first_pending = loop.time()
                    payload = msg.payload if isinstance(msg.payload, (bytes, bytearray)) else str(msg.payload).encode()
                    self.handle(msg.topic.value, bytes(payload))
            finally:
                self.ready.clear()
                self._flush()
