"""Shared fixtures: free ports and a real `ioc run` process (uvicorn) per test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
# demo servers of the suite skip the month of demo trend history (~7 s of CPU each on 2 cores); the shared
# browser demo server, which the trend views are tested on, turns it back on (tests/browser/conftest.py)
os.environ.setdefault("IOC_DEMO_HISTORY", "0")
IOC = [sys.executable, "-m", "ioc.cli"]
VIEWER_TOKEN = "test-viewer-token"
OPERATOR_TOKEN = "test-operator-token"
ADMIN_TOKEN = "test-admin-token"
INGEST_TOKEN = "test-ingest-token"  # IOC_INGEST_TOKEN: an ingest principal for all feeds


def bearer(token: str) -> dict[str, str]:
    """Request headers carrying a token: httpx.post(url, json=ev, headers=bearer(INGEST_TOKEN))."""
    return {"Authorization": f"Bearer {token}"}


AS_VIEWER = bearer(VIEWER_TOKEN)
AS_OPERATOR = bearer(OPERATOR_TOKEN)
AS_ADMIN = bearer(ADMIN_TOKEN)
AS_INGEST = bearer(INGEST_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout_s` passes
    (then its last value is returned, for the caller's assertion to show)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return predicate()


class IocServer:
    """`ioc run` as a subprocess on a free port: start, wait healthy, kill, restart."""

    def __init__(self, data_dir: Path, port: int, args: list[str], env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = port
        self.args = args
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"server-{port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def spawn(self) -> None:
        """Start the process without waiting for it (a crash test may kill it while it restores)."""
        log = open(self.log_path, "ab")
        cmd = [*IOC, "run", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout_s: float = 20.0) -> "IocServer":
        self.spawn()
        self.wait_healthy(timeout_s)
        return self

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"ioc run exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"ioc run not healthy after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def ioc_server(tmp_path):
    """Factory: ioc_server(*args) starts `ioc run` with those args on a free port."""
    servers: list[IocServer] = []
    env = dict(os.environ, IOC_VIEWER_TOKEN=VIEWER_TOKEN, IOC_OPERATOR_TOKEN=OPERATOR_TOKEN, IOC_ADMIN_TOKEN=ADMIN_TOKEN,
               IOC_INGEST_TOKEN=INGEST_TOKEN, PYTHONUNBUFFERED="1")

    def start(*args: str, data_dir: Path | None = None, port: int | None = None, timeout_s: float = 20.0,
              extra_env: dict[str, str] | None = None) -> IocServer:
        server = IocServer(data_dir or tmp_path / "data", port or free_port(), list(args), {**env, **(extra_env or {})})
        servers.append(server)
        return server.start(timeout_s)

    yield start
    for s in servers:
        s.stop()


MOSQUITTO = "/usr/sbin/mosquitto"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mqtt_broker():
    """(host, port) of a real Mosquitto: the local one on 1883 when it answers, else one we start.

    IOC_TEST_OWN_MOSQUITTO=1 forces starting a private broker; so do parallel runs (pytest-xdist), where
    two processes' subscribers on one broker would receive each other's test messages.
    """
    own = os.environ.get("IOC_TEST_OWN_MOSQUITTO") or os.environ.get("PYTEST_XDIST_WORKER")
    if not own and _answers("127.0.0.1", 1883):
        yield ("127.0.0.1", 1883)
        return
    binary = MOSQUITTO if os.path.exists(MOSQUITTO) else shutil.which("mosquitto")
    if not binary:
        pytest.fail("mosquitto is not installed: ./scripts/test.sh installs it")
    port = free_port()
    proc = subprocess.Popen([binary, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not start on port {port}")
            time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis: the local one on 6379 when it answers, else a `redis-server` we start (docs/architecture.md §8).

    IOC_TEST_OWN_REDIS=1 forces starting a private server.
    """
    import redis

    if not os.environ.get("IOC_TEST_OWN_REDIS"):
        try:
            redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
            yield "redis://127.0.0.1:6379/0"
            return
        except redis.RedisError:
            pass
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: ./scripts/test.sh installs it")
    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
