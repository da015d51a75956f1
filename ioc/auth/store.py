"""The principal store protocol: SQLite (embedded) and Redis (distributed) keep the same records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ioc.auth.principal import Principal


class DuplicatePrincipal(ValueError):
    """`add` of a name that is already an active principal."""


class UnknownPrincipal(KeyError):
    """`revoke`/`rotate` of a name that is not an active principal."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown principal"


@dataclass(frozen=True)
class PrincipalRecord:
    """A stored principal. `generation` grows on rotate/revoke: sessions opened before it die."""

    principal: Principal
    generation: int
    created_at: float
    revoked_at: float | None
    token_hashes: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class SessionRecord:
    name: str
    generation: int
    expires_at: float


class PrincipalStore(Protocol):
    def add(self, principal: Principal, token_hash: str, at: float) -> None:
        """Raises DuplicatePrincipal for an active name (a revoked one is replaced)."""

    def revoke(self, name: str, at: float) -> None:
        """Raises UnknownPrincipal. Keeps the record (and its hashes, so a revoked token is told apart)."""

    def rotate(self, name: str, token_hash: str, at: float) -> None:
        """Replaces every token of an active principal by one new token. Raises UnknownPrincipal."""

    def records(self) -> list[PrincipalRecord]: ...

    def revision(self) -> int:
        """A counter bumped by every add/revoke/rotate: cheap to read."""

    def add_session(self, session_hash: str, session: SessionRecord, now: float) -> None:
        """Stores a session (and drops the expired ones)."""

    def session(self, session_hash: str) -> SessionRecord | None: ...

    def end_session(self, session_hash: str) -> None:
        """Sign-out of one session (bumps the revision)."""

    def close(self) -> None: ...
