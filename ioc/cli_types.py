"""Checks of what a user types: ports, numbers, paths, listening sockets.

Each check says what is wrong in words a user can act on.  The same checks
serve flags (as argparse `type=`, whose error ioc.cli prints as one line)
and IOC_* variables (ioc.config names the variable), so a bad value fails
before anything starts, never with a traceback halfway through.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
from pathlib import Path

from ioc.errors import UserError

PORT_MIN, PORT_MAX = 1, 65535
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's; the worker's without trace


# -- problems: None when fine, else a phrase that follows the value -------------------
def port_problem(value: int, allow_zero: bool = False) -> str | None:
    lo = 0 if allow_zero else PORT_MIN
    if lo <= value <= PORT_MAX:
        return None
    return f"is not a TCP port ({lo}-{PORT_MAX}{', 0: off' if allow_zero else ''})"


def file_problem(path: Path) -> str | None:
    """An input file that cannot be read, in words."""
    if not path.exists():
        return "no such file (check the path)"
    if path.is_dir():
        return "is a directory, expected a file"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def rules_problem(path: Path) -> str | None:
    """A rules directory (or one rules file) that cannot be used."""
    if not path.exists():
        return "no such rules directory (give a directory of *.yaml rule files)"
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            return "cannot be read (permission denied)"
        if not any(q.suffix in (".yaml", ".yml") for q in path.iterdir()):
            return "has no *.yaml rule files"
        return None
    return file_problem(path)


def writable_dir_problem(path: Path) -> str | None:
    """A directory that is or can be created writable (a data dir)."""
    if path.exists():
        if not path.is_dir():
            return "is not a directory (give a directory; it is created if missing)"
        if not os.access(path, os.W_OK | os.X_OK):
            return "is not writable (permission denied)"
        return None
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not a writable directory"
    return None


def output_problem(path: Path) -> str | None:
    """A file to write: its directory exists and is writable."""
    if path.is_dir():
        return "is a directory, expected a file name"
    parent = path.absolute().parent
    if not parent.is_dir():
        return f"cannot be written: no directory {parent}"
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "cannot be written (permission denied)"
    return None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number") from None


# -- argparse types ----------------------------------------------------------------
def tcp_port(text: str) -> int:
    value = _integer(text)
    problem = port_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{text} {problem}")
    return value


def tcp_port_or_off(text: str) -> int:
    value = _integer(text)
    problem = port_problem(value, allow_zero=True)
    if problem:
        raise argparse.ArgumentTypeError(f"{text} {problem}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number above 0")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number of 1 or more")
    return value


def fraction(text: str) -> float:
    """A score threshold in (0, 1]."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and at most 1 (e.g. 0.5)")
    return value


def _path_type(check):
    def convert(text: str) -> Path:
        path = Path(text)
        problem = check(path)
        if problem:
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        return path

    convert.__name__ = check.__name__.replace("_problem", "")
    return convert


readable_file = _path_type(file_problem)
rules_path = _path_type(rules_problem)
writable_dir = _path_type(writable_dir_problem)
output_file = _path_type(output_problem)


def host_port(default_port: int):
    """HOST:PORT (or HOST alone) → (host, port)."""
    def convert(text: str) -> tuple[str, int]:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, str(default_port)
        try:
            value = int(port)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text}: expected HOST:PORT, e.g. 127.0.0.1:{default_port}") from None
        problem = port_problem(value)
        if problem or not host:
            raise argparse.ArgumentTypeError(f"{text}: expected HOST:PORT with a port 1-{PORT_MAX}")
        return host, value

    convert.__name__ = "host_port"
    return convert


def http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text}: expected an http:// or https:// URL")
    return text


# -- listening socket ----------------------------------------------------------------
def bind_listener(host: str, port: int, flag: str = "--port") -> socket.socket:
    """The server's listening socket, bound now, so a port in use is a clear error before anything is
    printed or created (uvicorn serves on it: Server.serve(sockets=[...]))."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses a port in TIME_WAIT
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"{flag} {port}: port {port} on {host} is already in use (is another ioc running? "
                            f"stop it or choose another port with {flag})") from None
        if exc.errno == errno.EACCES:
            raise UserError(f"{flag} {port}: not allowed to listen on port {port} (ports below 1024 need root; "
                            "choose a port above 1023)") from None
        raise UserError(f"--host {host} {flag} {port}: cannot listen there ({exc.strerror})") from None
    return sock  # not inheritable (PEP 446): a child process (the demo history) must not hold the port
