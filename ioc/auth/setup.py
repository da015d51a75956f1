"""Building the authenticator for `ioc run` / `ioc api`, and the demo's principals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ioc.auth.authenticator import Authenticator
from ioc.auth.store import DuplicatePrincipal

DEMO_PRINCIPALS = (("demo-viewer", "viewer"), ("demo-operator", "operator"), ("demo-admin", "admin"),
                   ("demo-ingest", "ingest"))


def embedded_authenticator(config: Any, metrics: Any = None) -> Authenticator:
    """Principals in DATA_DIR/principals.sqlite3 plus the IOC_*_TOKEN principals."""
    from ioc.auth.sqlite_store import SqlitePrincipalStore

    failures = getattr(metrics, "auth_failures", None)
    return Authenticator(SqlitePrincipalStore(Path(config.data_dir)), config.env_tokens(), failures=failures)


def redis_authenticator(redis_url: str, prefix: str, env_tokens: dict[str, str], metrics: Any = None) -> Authenticator:
    """Principals in Redis (every `ioc api` replica sees them) plus the IOC_*_TOKEN principals."""
    from ioc.auth.redis_store import RedisPrincipalStore

    failures = getattr(metrics, "auth_failures", None)
    return Authenticator(RedisPrincipalStore(redis_url, prefix), env_tokens, failures=failures)


def ensure_demo_principals(auth: Authenticator) -> dict[str, str]:
    """Create the demo's principals (one per role) if missing: name → token of those created now.

    Tokens are kept only as hashes, so those of an earlier run cannot be shown again
    (`ioc users rotate NAME` gives a new one)."""
    created: dict[str, str] = {}
    active = {p["name"] for p in auth.listing() if p["active"]}
    for name, role in DEMO_PRINCIPALS:
        if name in active:
            continue
        try:
            _, token = auth.add(name, role)
        except DuplicatePrincipal:  # created meanwhile by another process
            continue
        created[name] = token
    return created
