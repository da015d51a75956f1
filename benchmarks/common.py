"""Shared result shape and helpers for the benchmarks."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    budget: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline

    def to_json(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def machine() -> str:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def table(results: list[Result]) -> str:
    rows = [("benchmark", "value", "unit", "baseline", "ratio", "budget")]
    for r in results:
        rows.append(
            (
                r.name,
                f"{r.value:,.1f}" if r.value >= 100 else f"{r.value:.3g}",
                r.unit,
                (f"{r.baseline:,.1f}" if r.baseline and r.baseline >= 100 else f"{r.baseline:.3g}") + f" ({r.baseline_name})" if r.baseline else "",
                f"{r.ratio:.2f}" if r.ratio is not None else "",
                r.budget,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# the benchmarks' principals (ioc/auth): every surface of `ioc run` needs a token
VIEWER_TOKEN = "bench-viewer-token"
INGEST_TOKEN = "bench-ingest-token"
AS_VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
AS_INGEST = {"Authorization": f"Bearer {INGEST_TOKEN}"}


def start_ioc(data_dir: Path, port: int, *args: str, env: dict | None = None) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "ioc.cli", "run", "--port", str(port), "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        env=dict(os.environ, IOC_VIEWER_TOKEN=VIEWER_TOKEN, IOC_INGEST_TOKEN=INGEST_TOKEN, **(env or {})),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("ioc run did not start")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]
