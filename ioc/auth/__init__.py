"""Access control: principals (people and machines) with a role and tokens.

Roles: viewer < operator < admin (each implies the ones before) for people;
`ingest` for feeds (it writes events, it cannot read).  Tokens are stored only
as SHA-256 hashes (SQLite in the data dir, or Redis for `ioc api` replicas);
tokens from the environment (IOC_VIEWER_TOKEN, IOC_OPERATOR_TOKEN,
IOC_ADMIN_TOKEN, IOC_INGEST_TOKEN) are principals named after their role.
"""

from ioc.auth.authenticator import Authenticator
from ioc.auth.principal import FEEDS, ROLES, AuthInputError, Principal
from ioc.auth.sqlite_store import SqlitePrincipalStore
from ioc.auth.store import DuplicatePrincipal, PrincipalRecord, PrincipalStore, UnknownPrincipal

__all__ = [
    "FEEDS", "ROLES", "AuthInputError", "Authenticator", "DuplicatePrincipal", "Principal", "PrincipalRecord",
    "PrincipalStore", "SqlitePrincipalStore", "UnknownPrincipal", "RedisPrincipalStore",
]


def __getattr__(name: str):  # redis-py is imported only when the distributed store is used
    if name == "RedisPrincipalStore":
        from ioc.auth.redis_store import RedisPrincipalStore

        return RedisPrincipalStore
    raise AttributeError(name)
