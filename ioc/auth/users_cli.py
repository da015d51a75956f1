"""`ioc users add|list|revoke|rotate`: manage principals in a data dir (SQLite) or Redis.

Local file access (or the Redis URL) is the trust root: whoever can write
the data dir can create the first admin (`ioc users add NAME --role admin`).
`add` and `rotate` print the new token once, on stdout, alone on its line
(so scripts can capture it); nothing else ever prints a token or a hash.
Exit codes: 0 done, 2 refused (duplicate or unknown name, unknown role or
feed, bad settings), with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ioc.auth.principal import AuthInputError, FEEDS, ROLES
from ioc.auth.store import DuplicatePrincipal, UnknownPrincipal
from ioc.cli_types import writable_dir, writable_dir_problem
from ioc.errors import UserError

EXIT_REFUSED = 2


def _authenticator(args: argparse.Namespace):
    from ioc.auth.authenticator import Authenticator

    if args.redis_url:
        from ioc.auth.redis_store import RedisPrincipalStore

        prefix = args.redis_prefix or os.environ.get("IOC_REDIS_PREFIX") or "ioc"
        return Authenticator(RedisPrincipalStore(args.redis_url, prefix))
    from ioc.auth.sqlite_store import SqlitePrincipalStore

    data_dir = args.data_dir
    if data_dir is None and os.environ.get("IOC_DATA_DIR"):
        raw = os.environ["IOC_DATA_DIR"]
        problem = writable_dir_problem(Path(raw))
        if problem:
            raise UserError(f"IOC_DATA_DIR={raw}: {problem}; fix the path or unset IOC_DATA_DIR")
        data_dir = Path(raw)
    data_dir = data_dir or Path("ioc-data")
    return Authenticator(SqlitePrincipalStore(data_dir))


def _where(args: argparse.Namespace) -> str:
    return f"Redis {args.redis_url}" if args.redis_url else str(args.data_dir or os.environ.get("IOC_DATA_DIR")
                                                                 or "ioc-data")


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    from ioc.timeutil import format_ts

    return format_ts(t)[:19].replace("T", " ")


def cmd_users(args: argparse.Namespace) -> int:
    try:
        auth = _authenticator(args)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a store that cannot be opened: one clear line
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"ioc users: cannot open the principals in {_where(args)}: {why}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        if args.action == "add":
            feeds = args.feeds.split(",") if args.feeds is not None else None
            entities = args.entities.split(",") if args.entities is not None else None
            p, token = auth.add(args.name, args.role, feeds, entities)
            print(f"added {p.name} ({p.role}) in {_where(args)}; its token, shown only now:", file=sys.stderr)
            print(token, flush=True)
        elif args.action == "rotate":
            p, token = auth.rotate(args.name)
            print(f"rotated {p.name}: the old token and its sessions no longer work; the new token, shown only now:",
                  file=sys.stderr)
            print(token, flush=True)
        elif args.action == "revoke":
            auth.revoke(args.name)
            print(f"revoked {args.name}: its tokens and sessions no longer work (connected walls close within ~1 s)")
        else:
            rows = [r for r in auth.listing() if r["source"] == "stored" and (args.all or r["active"])]
            if not rows:
                print(f"no principals in {_where(args)} (add one: ioc users add NAME --role admin)")
            else:
                print(f"{'NAME':24} {'ROLE':9} {'STATE':8} {'CREATED (+07:00)':20} SCOPE")
                for r in rows:
                    scope = ""
                    if r["role"] == "ingest":
                        scope = "feeds=" + (",".join(r["feeds"]) if r["feeds"] else "all")
                        scope += " entities=" + (",".join(r["entities"]) if r["entities"] else "all")
                    state = "active" if r["active"] else "revoked"
                    print(f"{r['name']:24} {r['role']:9} {state:8} {_fmt_time(r['created_at']):20} {scope}")
    except (AuthInputError, DuplicatePrincipal, UnknownPrincipal) as exc:
        print(f"ioc users: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        auth.close()
    return 0


def add_commands(sub) -> None:
    u = sub.add_parser(
        "users",
        help="manage principals (people and feeds) and their tokens: add, list, revoke, rotate",
        description="Principals and their roles (viewer < operator < admin; ingest for feeds), stored in the data "
                    "dir (principals.sqlite3) or, with --redis, where every `ioc api` replica sees them. Tokens are "
                    "printed once and stored only as SHA-256 hashes.",
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--data-dir", type=writable_dir, default=None,
                       help="data directory of `ioc run` (default ./ioc-data or $IOC_DATA_DIR)")
    where.add_argument("--redis", dest="redis_url", default=None,
                       help="Redis URL of the distributed mode (instead of --data-dir)")
    where.add_argument("--redis-prefix", default=None, help="Redis key prefix (default $IOC_REDIS_PREFIX or 'ioc')")
    acts = u.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = acts.add_parser("add", parents=[where], help="add a principal and print its token once")
    add.add_argument("name", help="a person's or gateway's name, e.g. nguyen.van.an or gateway-tam-dao")
    add.add_argument("--role", required=True, help=f"one of {', '.join(ROLES)}")
    add.add_argument("--feeds", default=None, help=f"ingest only: feeds it may write, comma-separated ({','.join(FEEDS)}; "
                                                   "default all)")
    add.add_argument("--entities", default=None,
                     help="ingest only: station/site/camera/unit ids it may write, comma-separated (default all)")
    lst = acts.add_parser("list", parents=[where], help="list principals (never tokens)")
    lst.add_argument("--all", action="store_true", help="include revoked principals")
    rev = acts.add_parser("revoke", parents=[where], help="revoke a principal: its tokens and sessions stop working")
    rev.add_argument("name")
    rot = acts.add_parser("rotate", parents=[where], help="replace a principal's token; prints the new one once")
    rot.add_argument("name")
    u.set_defaults(func=cmd_users)
