"""Output records (docs/architecture.md §3.3): the one shape that goes to the WebSocket,
Redis/Kafka and `ioc replay --emit`.

`ts` is event time (the stream's watermark), formatted by ioc.timeutil, so a
replay writes the same bytes as the live run.  Field order is fixed by the
struct definitions, and optional fields are omitted when unset.
"""

from __future__ import annotations

from typing import Union

import msgspec
from msgspec import Struct


class Indicator(Struct, tag_field="type", tag="indicator", omit_defaults=True):
    # Not kw_only: the processors build hundreds of thousands of these per
    # second positionally (about half the cost of keywords).  Field order is
    # the wire order and positional argument order alike: append, never reorder.
    name: str
    window: str
    entity: str
    ts: str
    value: float | int | str | None
    # optional context, omitted when empty
    unit: str | None = None  # measurement unit, e.g. "mm", "ratio", "people", "s"
    period: str | None = None  # calendar period label for day/month/year windows
    stale: bool = False  # entity has not reported recently (no data is not zero)
    unknown: bool = False  # entity id is not in the catalog
    late: bool = False  # re-emitted because a late event changed it

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.window, self.entity)


class Alert(Struct, tag_field="type", tag="alert", omit_defaults=True, kw_only=True):
    rule: str
    entity: str
    state: str  # firing | resolved (acknowledged travels as a lifecycle update)
    severity: str  # info | warning | critical
    ts: str
    value: float | int | None = None
    labels: dict[str, str] = {}
    id: str = ""
    late: bool = False
    message: dict[str, str] = {}  # {"vi": ..., "en": ...}
    acknowledged: dict | None = None  # {"by":..., "at":..., "comment":...}
    started: str | None = None  # event time the alert first fired
    incident: str | None = None
    # operator actions, each naming the acting principal (appended: field order is the wire order)
    comments: list[dict] = []  # [{"by":..., "at":..., "text":...}], oldest first
    assignee: dict | None = None  # {"name":..., "by":..., "at":...}

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.entity)


Record = Union[Indicator, Alert]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode(record: Record) -> bytes:
    return _encoder.encode(record)


def decode(raw: bytes) -> Record:
    return _decoder.decode(raw)


def to_builtins(record: Record) -> dict:
    return msgspec.to_builtins(record)


def round_value(x: float, digits: int = 3) -> float:
    """Outputs are rounded so float noise never breaks byte-identical replays."""
    return round(float(x), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
