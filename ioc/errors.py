"""Rejection reasons: a bounded vocabulary, because each is a metric label."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Reason(StrEnum):
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_KIND = "unknown_kind"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    NEGATIVE_VALUE = "negative_value"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_LATE = "too_late"
    OUT_OF_RANGE = "out_of_range"  # a number beyond its documented bound (ioc.events)
    TOO_LARGE = "too_large"  # one event (line / array item) over ioc.events.MAX_EVENT_BYTES
    TOO_DEEP = "too_deep"  # JSON nested deeper than ioc.events.MAX_DEPTH
    INTERNAL_ERROR = "internal_error"  # the server failed on a valid event; it was not processed, retry it
    UNKNOWN_ENTITY_LIMIT = "unknown_entity_limit"  # a new id missing from the catalog, past the feed's cap (streams.window)
    TOO_FREQUENT = "too_frequent"  # more distinct readings of one station in one 5-minute bucket than kept (streams.rain)
    FORBIDDEN_FEED = "forbidden_feed"  # an ingest principal sent an event of a feed outside its scope (ioc.auth)
    FORBIDDEN_ENTITY = "forbidden_entity"  # ... or for a station/site/camera/unit outside its scope
    UNREADABLE = "unreadable"  # an input file that cannot be opened or read to its end (sensors.replay)


class Rejection(msgspec.Struct, frozen=True):
    """An input that was refused: why, in words and as a metric label, and the raw bytes."""

    reason: Reason
    detail: str
    feed: str = "unknown"  # rain | dossier | camera | unknown
    raw: bytes = b""
    position: int = -1  # index in the submitted batch/file, when known

    def to_dead_letter(self, source: str) -> dict:
        return {
            "source": source,
            "feed": self.feed,
            "reason": str(self.reason),
            "detail": self.detail,
            "position": self.position,
            "raw": self.raw.decode("utf-8", "replace"),
        }


class UserError(ValueError):
    """A mistake in what the user gave (a flag, an IOC_* variable, a catalog or rules file).

    `ioc` prints it as one line `ioc: error: MESSAGE` and exits 2 (ioc.cli.main), so
    the message says what is wrong, where (file, entry, field) and how to fix it."""
