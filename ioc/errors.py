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
