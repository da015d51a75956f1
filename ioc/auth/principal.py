"""Who is acting: a principal's name, role and (for ingest) scope."""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("viewer", "operator", "admin", "ingest")
_RANK = {"viewer": 0, "operator": 1, "admin": 2}
FEEDS = ("rain", "dossier", "camera")  # ioc.events.feed_of
ENV_NAMES = ROLES
"""Names of the environment-token principals: reserved, a stored principal cannot take them."""
MAX_NAME = 64
MAX_SCOPE_IDS = 10_000
_NAME_RE = re.compile(r"^[\w][\w.@-]*$")  # letters (Vietnamese too), digits, _ . @ -


class AuthInputError(ValueError):
    """A principal definition that cannot be used; the message says why (CLI exit 2, API 422)."""


@dataclass(frozen=True)
class Principal:
    """A person or machine. `feeds`/`entities` scope an ingest principal (None: all)."""

    name: str
    role: str
    feeds: frozenset[str] | None = None
    entities: frozenset[str] | None = None

    def allows(self, need: str) -> bool:
        """viewer < operator < admin; `ingest` is separate: an ingest principal cannot read, and
        people cannot ingest."""
        if need == "ingest" or self.role == "ingest":
            return need == self.role
        return _RANK.get(self.role, -1) >= _RANK[need]

    def may_write(self, feed: str, entity: str | None = None) -> bool:
        """Whether this (ingest) principal may send an event of `feed` for `entity`."""
        if self.role != "ingest":
            return False
        if self.feeds is not None and feed not in self.feeds:
            return False
        return self.entities is None or entity is None or entity in self.entities

    def public(self) -> dict:
        """What the API shows of a principal (never a token or hash)."""
        return {"name": self.name, "role": self.role,
                "feeds": sorted(self.feeds) if self.feeds is not None else None,
                "entities": sorted(self.entities) if self.entities is not None else None}


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise AuthInputError("name: give a non-empty name, e.g. 'nguyen.van.an'")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise AuthInputError(f"name: at most {MAX_NAME} characters")
    if not _NAME_RE.match(name):
        raise AuthInputError(f"name {name!r}: use letters, digits and _ . @ - (no spaces)")
    if name in ENV_NAMES:
        raise AuthInputError(f"name {name!r} is reserved for the IOC_{name.upper()}_TOKEN principal; choose another")
    return name


def check_role(role: object) -> str:
    if role not in ROLES:
        raise AuthInputError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return str(role)


def _ids(values: object, what: str) -> list[str]:
    if isinstance(values, str):
        values = [v for v in (x.strip() for x in values.split(",")) if v]
    if not isinstance(values, (list, tuple, set, frozenset)) or not all(isinstance(v, str) and v for v in values):
        raise AuthInputError(f"{what}: give a list of ids (comma-separated on the command line)")
    if len(values) > MAX_SCOPE_IDS or any(len(v) > 200 for v in values):
        raise AuthInputError(f"{what}: at most {MAX_SCOPE_IDS:,} ids of at most 200 characters")
    return list(values)


def make_principal(name: object, role: object, feeds: object = None, entities: object = None) -> Principal:
    """A checked principal; a scope is only for ingest principals."""
    name, role = check_name(name), check_role(role)
    feed_set = entity_set = None
    if feeds is not None:
        feed_set = frozenset(_ids(feeds, "feeds"))
        bad = sorted(feed_set.difference(FEEDS))
        if bad:
            raise AuthInputError(f"unknown feed {', '.join(map(repr, bad))}: use {', '.join(FEEDS)}")
        if not feed_set:
            raise AuthInputError("feeds: give at least one feed, or leave it out for all feeds")
    if entities is not None:
        entity_set = frozenset(_ids(entities, "entities"))
        if not entity_set:
            raise AuthInputError("entities: give at least one id, or leave it out for all")
    if role != "ingest" and (feed_set is not None or entity_set is not None):
        raise AuthInputError("feeds and entities scope an ingest principal; other roles have none")
    return Principal(name, role, feed_set, entity_set)
