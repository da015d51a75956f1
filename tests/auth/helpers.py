"""Shared by the access-control tests: `ioc users` as a real subprocess, a rain storm, waiting."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import IOC, ROOT, wait_for  # noqa: F401 (wait_for: re-exported for the auth tests)


def users(data_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`ioc users ARGS --data-dir DATA_DIR` (or ARGS as given when they name --redis)."""
    where = [] if "--redis" in args else ["--data-dir", str(data_dir)]
    return subprocess.run([*IOC, "users", *args, *where], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=env)


def add_user(data_dir: Path, name: str, role: str, *extra: str) -> str:
    """Add a principal with the CLI; its token (the only line on stdout)."""
    r = users(data_dir, "add", name, "--role", role, *extra)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert len(token) >= 40 and "\n" not in token, r.stdout
    return token


def storm(station: str) -> list[dict]:
    """11 × 7.5 mm within 3 h at a catalog station → rain_3h_intense (critical)."""
    return [{"kind": "rain", "station": station, "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 7.5}
            for m in range(5, 60, 5)]


