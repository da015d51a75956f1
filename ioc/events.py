"""Typed input events (DESIGN §3.1), parsed once at the boundary.

msgspec decodes JSON straight into these structs and validates types and
ranges on the way, which is several times faster than json.loads + checks.
Each event carries `t`, its event time in epoch seconds, computed once here
so the core never touches datetimes.  Unknown extra fields are accepted
(not rejected); the raw bytes are what a dead letter keeps.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Iterable, Literal, Union

import msgspec
from msgspec import Meta, Struct

from ioc.errors import Reason, Rejection

NonNegFloat = Annotated[float, Meta(ge=0.0)]
NonNegInt = Annotated[int, Meta(ge=0)]
Id = Annotated[str, Meta(min_length=1, max_length=200)]

DossierStatus = Literal[
    "received",
    "in_process",
    "supplement_requested",
    "fee_due",
    "processed",
    "returned",
    "rejected",
    "withdrawn",
]
Channel = Literal["online", "direct", "postal"]


def _epoch(ts: datetime) -> float:
    if ts.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return ts.timestamp()


class RainEvent(Struct, tag_field="kind", tag="rain", kw_only=True):
    """rain_mm fell at `station` in the interval ending at `ts`."""

    station: Id
    ts: datetime
    rain_mm: NonNegFloat
    t: float = 0.0

    def __post_init__(self) -> None:
        self.t = _epoch(self.ts)


class DossierEvent(Struct, tag_field="kind", tag="dossier", kw_only=True):
    """One status change of one administrative-procedure dossier."""

    dossier: Id
    unit: Id
    ts: datetime
    status: DossierStatus
    channel: Channel | None = None
    due: datetime | None = None
    procedure: str | None = None
    fee: bool | None = None
    paid_online: bool | None = None
    digitized: bool | None = None
    t: float = 0.0
    due_t: float | None = None

    def __post_init__(self) -> None:
        self.t = _epoch(self.ts)
        self.due_t = _epoch(self.due) if self.due is not None else None


class CameraEvent(Struct, tag_field="kind", tag="camera", kw_only=True):
    """People waiting and counters open at a one-stop-shop site, seen by a camera."""

    camera: Id
    site: Id
    ts: datetime
    waiting: NonNegInt
    counters_open: NonNegInt
    t: float = 0.0

    def __post_init__(self) -> None:
        self.t = _epoch(self.ts)


Event = Union[RainEvent, DossierEvent, CameraEvent]
FEEDS = ("rain", "dossier", "camera")

_decoder = msgspec.json.Decoder(Event)
_kind_re = re.compile(rb'"kind"\s*:\s*"(rain|dossier|camera)"')


def feed_of(event: Event) -> str:
    return type(event).__struct_config__.tag  # type: ignore[return-value]


def _guess_feed(raw: bytes) -> str:
    m = _kind_re.search(raw)
    return m.group(1).decode() if m else "unknown"


def _classify(message: str) -> Reason:
    """Map a msgspec validation message onto our bounded reason vocabulary."""
    if "missing required field" in message:
        if "`kind`" in message:
            return Reason.UNKNOWN_KIND
        return Reason.MISSING_FIELD
    if "`$.kind`" in message:
        return Reason.UNKNOWN_KIND
    if "datetime" in message or "UTC offset" in message:
        return Reason.BAD_TIMESTAMP
    if ">= 0" in message:
        return Reason.NEGATIVE_VALUE
    if "Expected `object`" in message and "at `$" not in message:
        return Reason.NOT_AN_OBJECT
    if "Invalid enum value" in message or "length" in message:
        return Reason.INVALID_VALUE
    if message.startswith("Expected"):
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE


def parse_event(raw: bytes | str, position: int = -1) -> Event | Rejection:
    """Decode one JSON event; never raises, returns the event or why it was refused."""
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        return Rejection(_classify(msg), msg, _guess_feed(raw), raw, position)
    except msgspec.DecodeError as exc:
        return Rejection(Reason.BAD_JSON, f"malformed JSON: {exc}", _guess_feed(raw), raw, position)


def parse_lines(lines: Iterable[bytes], start: int = 0) -> tuple[list[Event], list[Rejection]]:
    """Decode JSONL lines; blank lines are skipped, positions count every line."""
    if isinstance(lines, list) and lines:
        # Fast path: one decode_lines call over the whole batch saves a Python
        # call per line.  Only when no line holds a newline of its own (so each
        # input line is one JSONL line); any refusal falls back to the exact
        # per-line path below, which gives positions and reasons.
        try:
            buf = b"\n".join(lines)
        except TypeError:
            buf = None
        if buf is not None and buf.count(b"\n") == len(lines) - 1:
            try:
                return _decoder.decode_lines(buf), []
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass
    events: list[Event] = []
    rejections: list[Rejection] = []
    for i, line in enumerate(lines, start):
        line = line.strip()
        if not line:
            continue
        out = parse_event(line, i)
        if isinstance(out, Rejection):
            rejections.append(out)
        else:
            events.append(out)
    return events, rejections


def parse_body(body: bytes) -> tuple[list[Event], list[Rejection]]:
    """Decode an HTTP body: one JSON object, a JSON array of objects, or JSONL."""
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            items = msgspec.json.decode(stripped, type=list[msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return [], [Rejection(Reason.BAD_JSON, f"malformed JSON array: {exc}", "unknown", body, 0)]
        return parse_lines((bytes(item) for item in items))
    return parse_lines(body.splitlines())


def encode_event(event: Event) -> bytes:
    """Wire form of an event (without the derived `t` fields)."""
    d = msgspec.structs.asdict(event)
    d.pop("t", None)
    d.pop("due_t", None)
    out = {"kind": feed_of(event)}
    out.update({k: v for k, v in d.items() if v is not None})
    return msgspec.json.encode(out)
