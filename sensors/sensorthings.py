"""OGC SensorThings API (MQTT push) subscriber for rain observations.

Subscribes to `{topic_prefix}/Datastreams({id})/Observations` for every
configured Datastream and maps each Observation to a RainEvent through the
Datastream map (Datastream id → station id; `kind` is "rain", the only
kind a SensorThings rain gauge feeds here; `factor` converts the result to
mm, e.g. 0.1 for a count of 0.1 mm tips):

    datastreams:                       # e.g. in the runtime's YAML config
      "17": {kind: rain, station: VP-001}
      "18": {kind: rain, station: VP-002, factor: 0.2}

Observation payload (SensorThings 1.1 §8.2.2, only what we need):

    {"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 2.4,
     "resultTime": "2026-10-28T13:10:04+07:00", ...}

`phenomenonTime` may be an ISO 8601 interval "start/end"; the reading is
the rain that fell in it, so its end is the event time.  `result` is the
rain in the interval (mm after `factor`).  Invalid payloads become
Rejections (feed "rain"): BAD_JSON, NOT_AN_OBJECT, MISSING_FIELD (no
phenomenonTime or result, or a null result), WRONG_TYPE (result not a
number), NEGATIVE_VALUE, BAD_TIMESTAMP (unparseable or no offset),
INVALID_VALUE (a Datastream that is not in the map).

Messages are delivered to the sink in batches: at most `batch_max`, or
whatever arrived within `flush_s`.  The subscriber reconnects after a broker
failure (`reconnect_s`) until `stop` is set.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping

import aiomqtt
import msgspec

from ioc.errors import Reason, Rejection
from ioc.events import RainEvent

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


class _Observation(msgspec.Struct):
    phenomenonTime: str
    result: float | None


_obs_decoder = msgspec.json.Decoder(_Observation)


def datastream_of(topic: str) -> str | None:
    """'v1.1/Datastreams(17)/Observations' → '17'; quoted string ids are unquoted."""
    m = _TOPIC_RE.search(topic)
    if not m:
        return None
    return m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)


def _parse_time(text: str) -> datetime:
    end = text.split("/")[-1].strip()
    ts = datetime.fromisoformat(end.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError("no UTC offset")
    return ts


def convert(topic: str, payload: bytes, datastreams: Mapping[str, DatastreamTarget]) -> RainEvent | Rejection:
    """One MQTT message → a RainEvent or the reason it was refused (pure)."""
    ds = datastream_of(topic)
    target = datastreams.get(ds) if ds is not None else None
    if target is None:
        return Rejection(Reason.INVALID_VALUE, f"topic {topic!r}: Datastream {ds!r} is not mapped to a station", "rain", payload)
    try:
        obs = _obs_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        if "missing required field" in msg:
            reason = Reason.MISSING_FIELD
        elif "Expected `object`" in msg and "at `$" not in msg:
            reason = Reason.NOT_AN_OBJECT
        else:
            reason = Reason.WRONG_TYPE
        return Rejection(reason, f"Datastream {ds}: {msg}", "rain", payload)
    except msgspec.DecodeError as exc:
        return Rejection(Reason.BAD_JSON, f"Datastream {ds}: malformed JSON: {exc}", "rain", payload)
    if obs.result is None:
        return Rejection(Reason.MISSING_FIELD, f"Datastream {ds}: result is null", "rain", payload)
    if not math.isfinite(obs.result):
        return Rejection(Reason.INVALID_VALUE, f"Datastream {ds}: result {obs.result} is not finite", "rain", payload)
    if obs.result < 0:
        return Rejection(Reason.NEGATIVE_VALUE, f"Datastream {ds}: result {obs.result} is negative", "rain", payload)
    try:
        ts = _parse_time(obs.phenomenonTime)
    except ValueError as exc:
        return Rejection(Reason.BAD_TIMESTAMP, f"Datastream {ds}: phenomenonTime {obs.phenomenonTime!r}: {exc}", "rain", payload)
    return RainEvent(station=target.station, ts=ts, rain_mm=round(obs.result * target.factor, 6))


class SensorThingsSubscriber:
    def __init__(
        self,
        sink: Sink,
        datastreams: Mapping[Any, Any],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        topic_prefix: str = "v1.1",
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        qos: int = 1,
        batch_max: int = 1000,
        flush_s: float = 0.2,
        reconnect_s: float = 2.0,
    ) -> None:
        self.sink = sink
        self.datastreams = load_datastream_map(datastreams)
        self.host, self.port = host, port
        self.topic_prefix = topic_prefix.rstrip("/")
        self._username, self._password = username, password
        self.client_id = client_id
        self.qos = qos
        self.batch_max = batch_max
        self.flush_s = flush_s
        self.reconnect_s = reconnect_s
        self.ready = asyncio.Event()  # set while subscribed
        self.received = 0
        self.connects = 0
        self._events: list[RainEvent] = []
        self._rejections: list[Rejection] = []

    def topics(self) -> list[str]:
        out = []
        for ds in self.datastreams:
            ident = ds if ds.isdigit() else "'" + ds.replace("'", "''") + "'"
            out.append(f"{self.topic_prefix}/Datastreams({ident})/Observations")
        return out

    def _flush(self) -> None:
        if self._events or self._rejections:
            events, rejections = self._events, self._rejections
            self._events, self._rejections = [], []
            self.sink(list(events), rejections)

    def handle(self, topic: str, payload: bytes) -> None:
        """Convert one message into the pending batch (flushes when full)."""
        self.received += 1
        out = convert(topic, payload, self.datastreams)
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
