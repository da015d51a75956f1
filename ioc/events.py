"""Typed input events (one JSON object each, JSONL in files), parsed once at the boundary.

msgspec decodes JSON straight into these structs and validates types and
ranges on the way, which is several times faster than json.loads + checks.
Each event carries `t`, its event time in epoch seconds, computed once here
so the core never touches datetimes.  Unknown extra fields are accepted
(not rejected); the raw bytes are what a dead letter keeps.

Validation is complete here: whatever bytes arrive, `parse_event` returns an
event whose every field is inside the bounds below, or a `Rejection` with a
reason — it never raises.  Downstream code (windows, checkpoints, journal
replay, `format_ts`) can therefore rely on:

- every number within its documented range (no inf/nan, no integer beyond
  64 bits, no bool where a number is expected);
- every timestamp with an explicit UTC offset of at most ±14 h and an
  instant in [`TS_MIN`, `TS_MAX`) (years 2000–2099), so `t` is a finite
  float that `datetime.fromtimestamp` and `ioc.timeutil.format_ts` round-trip
  in any offset.  Whether a timestamp is too far ahead of the wall clock or
  too old for the windows is decided later, by the stream (it depends on the
  watermark), not here;
- one event is at most `MAX_EVENT_BYTES` of JSON, nested at most
  `MAX_DEPTH` levels (an event is one level; nested extra fields count).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Iterable, Literal, Union

import msgspec
from msgspec import Meta, Struct

from ioc.errors import Reason, Rejection

# -- documented bounds (README, "Input validation") --------------------------
RAIN_MM_MAX = 100_000.0
"""Rain in one reading, mm: a bound on the encoding, not on physics.  A reading
that is valid JSON but physically implausible (the wettest hour ever measured
is ~305 mm; a broken gauge may send 5000 mm) is accepted and *quarantined* by
the rain processor, out of the sums, with a data-quality alert
(docs/architecture.md §4).  Above this bound the reading is refused as
`out_of_range` (below 0: `negative_value`)."""
WAITING_MAX = 10_000
"""People waiting at one camera's site (an integer, 0..10,000)."""
COUNTERS_OPEN_MAX = 1_000
"""Counters open at one site (an integer, 0..1,000)."""
TS_MIN = 946_684_800.0
"""2000-01-01T00:00:00Z: the earliest event time accepted (inclusive)."""
TS_MAX = 4_102_444_800.0
"""2100-01-01T00:00:00Z: the latest event time accepted (exclusive)."""
MAX_UTC_OFFSET_S = 14 * 3600
"""Largest UTC offset of a timestamp (real zones span -12:00..+14:00)."""
MAX_TEXT = 200
"""Longest id or text field (station, dossier, unit, camera, site, procedure)."""
MAX_EVENT_BYTES = 64 * 1024
"""Largest single event (one JSONL line or one array item), bytes: `too_large` beyond."""
MAX_DEPTH = 32
"""Deepest JSON nesting of one event (the event object is level 1): `too_deep` beyond."""

NonNegFloat = Annotated[float, Meta(ge=0.0)]
NonNegInt = Annotated[int, Meta(ge=0)]
Id = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT)]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
RainMm = Annotated[float, Meta(ge=0.0, le=RAIN_MM_MAX)]
Waiting = Annotated[int, Meta(ge=0, le=WAITING_MAX)]
CountersOpen = Annotated[int, Meta(ge=0, le=COUNTERS_OPEN_MAX)]

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


_tz_ok: dict[int, object] = {}  # id → tzinfo (kept alive, so ids are not reused) of offsets already checked


def _check_offset(ts: datetime, field: str) -> None:
    tz = ts.tzinfo
    off = ts.utcoffset()
    if off is None:
        raise ValueError(f"timestamp `{field}` has no UTC offset")
    if abs(off.days * 86400 + off.seconds) > MAX_UTC_OFFSET_S:
        raise ValueError(f"timestamp `{field}` has a UTC offset beyond ±14:00")
    if len(_tz_ok) < 256:
        _tz_ok[id(tz)] = tz


def _epoch(ts: datetime, field: str = "ts", _ok: dict = _tz_ok, _id=id, _lo: float = TS_MIN,
           _hi: float = TS_MAX) -> float:
    """Epoch seconds of an offset-aware timestamp inside the accepted window, else ValueError.
    (Hot path: once per event; the defaults bind globals as fast locals.)"""
    if _id(ts.tzinfo) not in _ok:  # msgspec shares one tzinfo per offset: each is checked once
        _check_offset(ts, field)
    try:
        t = ts.timestamp()
    except (OverflowError, OSError):  # the instant in UTC is beyond year 1..9999
        t = _hi
    if _lo <= t < _hi:
        return t
    raise ValueError(f"timestamp `{field}` {ts.isoformat()} is outside the years 2000..2099")


class RainEvent(Struct, tag_field="kind", tag="rain", kw_only=True):
    """rain_mm fell at `station` in the interval ending at `ts`."""

    station: Id
    ts: datetime
    rain_mm: RainMm
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
    procedure: Text | None = None
    fee: bool | None = None
    paid_online: bool | None = None
    digitized: bool | None = None
    t: float = 0.0
    due_t: float | None = None

    def __post_init__(self) -> None:
        self.t = _epoch(self.ts)
        self.due_t = _epoch(self.due, "due") if self.due is not None else None


class CameraEvent(Struct, tag_field="kind", tag="camera", kw_only=True):
    """People waiting and counters open at a one-stop-shop site, seen by a camera."""

    camera: Id
    site: Id
    ts: datetime
    waiting: Waiting
    counters_open: CountersOpen
    t: float = 0.0

    def __post_init__(self) -> None:
        self.t = _epoch(self.ts)


Event = Union[RainEvent, DossierEvent, CameraEvent]
FEEDS = ("rain", "dossier", "camera")

_decoder = msgspec.json.Decoder(Event)
_kind_re = re.compile(rb'"kind"\s*:\s*"(rain|dossier|camera)"')
_string_re = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEAD_LETTER_MAX = 4096  # raw bytes kept of an oversized input


def feed_of(event: Event) -> str:
    return type(event).__struct_config__.tag  # type: ignore[return-value]


def _guess_feed(raw: bytes) -> str:
    m = _kind_re.search(raw, 0, _DEAD_LETTER_MAX)
    return m.group(1).decode() if m else "unknown"


def _classify(message: str) -> Reason:
    """Map a msgspec validation message onto our bounded reason vocabulary."""
    if "missing required field" in message:
        if "`kind`" in message:
            return Reason.UNKNOWN_KIND
        return Reason.MISSING_FIELD
    if "`$.kind`" in message:
        return Reason.UNKNOWN_KIND
    if message.startswith("timestamp") or "datetime" in message or "UTC offset" in message:
        return Reason.BAD_TIMESTAMP
    if "Invalid enum value" in message or "length" in message:
        return Reason.INVALID_VALUE
    if ">= 0" in message:
        return Reason.NEGATIVE_VALUE
    if "<= " in message or "Number out of range" in message or "Integer value out of range" in message:
        return Reason.OUT_OF_RANGE
    if "Expected `object`" in message and "at `$" not in message:
        return Reason.NOT_AN_OBJECT
    if message.startswith("Expected"):
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE


def json_depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of well-formed JSON (counting stops just past `limit`).

    Strings are removed (brackets inside them do not count), only the brackets
    are kept, and innermost pairs are removed one level per pass: every pass is a
    C-speed bytes operation, and there are at most `limit` + 1 of them."""
    s = _string_re.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    while s and depth <= limit:
        # "x" marks a removed pair, so no new pair forms within one pass (one pass = one level)
        s = s.replace(b"[]", b"x").replace(b"{}", b"x").replace(b"x", b"")
        depth += 1
    return depth


def _too_deep(raw: bytes) -> bool:
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and json_depth(raw) > MAX_DEPTH


def _as_bytes(raw: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8: bad_json
    return bytes(raw)


def _reject(reason: Reason, detail: str, raw: bytes, position: int) -> Rejection:
    kept = raw if len(raw) <= MAX_EVENT_BYTES else raw[:_DEAD_LETTER_MAX]
    return Rejection(reason, detail, _guess_feed(raw), kept, position)


def parse_event(raw: bytes | str, position: int = -1) -> Event | Rejection:
    """Decode one JSON event; never raises, returns the event or why it was refused."""
    try:
        raw = _as_bytes(raw)
    except Exception as exc:  # not bytes-like at all
        return Rejection(Reason.WRONG_TYPE, f"not a JSON text: {type(exc).__name__}", "unknown", b"", position)
    if len(raw) > MAX_EVENT_BYTES:
        return _reject(Reason.TOO_LARGE, f"event is {len(raw):,} bytes; the limit is {MAX_EVENT_BYTES:,}", raw, position)
    try:
        ev = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        return _reject(_classify(msg), msg, raw, position)
    except msgspec.DecodeError as exc:
        return _reject(Reason.BAD_JSON, f"malformed JSON: {exc}", raw, position)
    except RecursionError:
        return _reject(Reason.TOO_DEEP, f"JSON nested deeper than {MAX_DEPTH} levels", raw, position)
    except Exception as exc:  # defensive: parsing must never raise, whatever the bytes
        return _reject(Reason.INVALID_VALUE, f"undecodable event: {type(exc).__name__}: {exc}"[:500], raw, position)
    if _too_deep(raw):
        return _reject(Reason.TOO_DEEP, f"JSON nested deeper than {MAX_DEPTH} levels", raw, position)
    return ev


def parse_items(items: list[bytes], start: int = 0) -> tuple[list[Event], list[int], list[Rejection]]:
    """Decode a list of JSON texts (JSONL lines or array items) numbered from `start`.

    Returns the events, the position of each event, and the rejections (which
    carry their own positions).  Blank items are skipped but keep their number.
    Never raises."""
    n = len(items)
    if n:
        # Fast path: one decode_lines call over the whole batch saves a Python
        # call per line.  Only when every item is one line of bounded size;
        # any refusal (or a blank line, which decode_lines skips) falls back
        # to the exact per-item path below, which gives positions and reasons.
        try:
            buf = b"\n".join(items)
            simple = buf.count(b"\n") == n - 1 and max(map(len, items)) <= MAX_EVENT_BYTES
        except (TypeError, ValueError):
            simple = False
        if simple:
            try:
                events = _decoder.decode_lines(buf)
            except Exception:  # ValidationError, DecodeError, RecursionError: the slow path says which
                events = None
            if events is not None and len(events) == n:
                # depth: an event with one "{" and no "[" is flat; only others are measured
                if (b"[" not in buf and buf.count(b"{") == n) or not any(_too_deep(x) for x in items):
                    return events, list(range(start, start + n)), []
    events_out: list[Event] = []
    positions: list[int] = []
    rejections: list[Rejection] = []
    for i, line in enumerate(items, start):
        try:
            line = _as_bytes(line).strip()
        except Exception:
            pass
        if not line:
            continue
        out = parse_event(line, i)
        if isinstance(out, Rejection):
            rejections.append(out)
        else:
            events_out.append(out)
            positions.append(i)
    return events_out, positions, rejections


def parse_lines(lines: Iterable[bytes], start: int = 0) -> tuple[list[Event], list[Rejection]]:
    """Decode JSONL lines; blank lines are skipped, positions count every line."""
    events, _positions, rejections = parse_items(lines if isinstance(lines, list) else list(lines), start)
    return events, rejections


class BodyError(Exception):
    """A whole request body refused before any event is looked at (reason + words)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


MAX_ARRAY_BODY_BYTES = 1024 * 1024
"""A JSON-array body is parsed in one piece, so it is limited to 1 MiB (≈10,000
events, a few ms of decoding); larger batches go as JSONL, which is split
and parsed in slices."""


def split_body(body: bytes, max_items: int | None = None) -> list[bytes]:
    """The items of an HTTP body: one JSON object, a JSON array of objects, or JSONL.

    Returns one bytes per position (JSONL: every line, blank ones included, so
    positions are line numbers from 0; an array: every element).  Raises
    BodyError when the body as a whole is unusable (a malformed or oversized
    array, more than `max_items` items)."""
    stripped = body.strip()
    if not stripped:
        return []
    if stripped.startswith(b"["):
        if len(stripped) > MAX_ARRAY_BODY_BYTES:
            raise BodyError(Reason.TOO_LARGE, f"a JSON array body is limited to {MAX_ARRAY_BODY_BYTES:,} bytes; "
                                              "send larger batches as JSONL (one event per line)")
        try:
            raws = msgspec.json.decode(stripped, type=list[msgspec.Raw])
        except RecursionError:
            raise BodyError(Reason.TOO_DEEP, f"JSON nested deeper than {MAX_DEPTH} levels") from None
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BodyError(Reason.BAD_JSON, f"malformed JSON array: {exc}") from None
        if max_items is not None and len(raws) > max_items:
            raise BodyError(Reason.TOO_LARGE, f"{len(raws):,} items; the limit is {max_items:,} per request")
        return [bytes(r) for r in raws]
    if len(stripped) <= MAX_EVENT_BYTES and stripped.startswith(b"{") and (b"\n" in stripped or b"\r" in stripped):
        # one pretty-printed object spread over lines, rather than JSONL?
        try:
            msgspec.json.decode(stripped, type=msgspec.Raw)
        except Exception:
            pass
        else:
            return [stripped]
    if max_items is not None and max(body.count(b"\n"), body.count(b"\r")) > max_items:
        raise BodyError(Reason.TOO_LARGE, f"more than {max_items:,} lines; the limit is {max_items:,} per request")
    lines = body.splitlines()
    if max_items is not None and len(lines) > max_items:
        raise BodyError(Reason.TOO_LARGE, f"{len(lines):,} lines; the limit is {max_items:,} per request")
    return lines


def parse_body(body: bytes) -> tuple[list[Event], list[Rejection]]:
    """Decode an HTTP body: one JSON object, a JSON array of objects, or JSONL."""
    try:
        items = split_body(body)
    except BodyError as exc:
        return [], [_reject(exc.reason, exc.detail, body, 0)]
    return parse_lines(items)


def encode_event(event: Event) -> bytes:
    """Wire form of an event (without the derived `t` fields)."""
    d = msgspec.structs.asdict(event)
    d.pop("t", None)
    d.pop("due_t", None)
    out = {"kind": feed_of(event)}
    out.update({k: v for k, v in d.items() if v is not None})
    return msgspec.json.encode(out)
