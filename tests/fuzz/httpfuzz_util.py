"""Servers for the HTTP fuzz and limit tests.

- `InProcessServer`: the real app (ioc.api.create_app over a real embedded
  Runtime, optionally the operator API) on real uvicorn with the project's
  limits (ioc.serve.config), in a thread with its own event loop, plus a
  ticker task on that loop that records how late it wakes up (the loop lag).
- `IocProcess`: `ioc run` as a subprocess on a free port (restartable).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import IocServer, free_port

ROOT = Path(__file__).resolve().parents[2]
VIEWER = "fuzz-viewer-token"
OPERATOR = "fuzz-operator-token"
INGEST = "fuzz-ingest-token"
AS_INGEST = {"Authorization": f"Bearer {INGEST}"}


class LagMeter:
    """A task that sleeps `tick` and records by how much each wake-up was late.

    Two figures per tick: wall-clock lateness (includes the OS descheduling the
    process on a busy machine, and this test process's other threads holding
    the GIL) and the CPU time the loop's thread spent between two ticks (what
    other callbacks — our request handling — held the loop for)."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self.samples: list[float] = []
        self.cpu_samples: list[float] = []
        self.recording = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t, c = loop.time(), time.thread_time()
            await asyncio.sleep(self.tick)
            if self.recording:
                self.samples.append(loop.time() - t - self.tick)
                self.cpu_samples.append(time.thread_time() - c)

    def start(self) -> None:
        self.samples = []
        self.cpu_samples = []
        self.recording = True

    def stop(self) -> tuple[float, float]:
        """(worst wall-clock lag, worst CPU time between two ticks), seconds."""
        self.recording = False
        return max(self.samples, default=0.0), max(self.cpu_samples, default=0.0)


class InProcessServer:
    def __init__(self, data_dir: Path, *, operator_api: bool = False, http: Any = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.operator_api = operator_api
        self.http = http
        self.lag = LagMeter()
        self._thread: threading.Thread | None = None
        self._server = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _build(self):
        from ioc.api import create_app
        from ioc.catalog import demo_catalog
        from ioc.config import Secret, build_config
        from ioc.runtime import Runtime
        from ioc.serve import Server, config
        from ioc.wiring import build_alerting, build_pipeline

        cfg = build_config(port=self.port, data_dir=self.data_dir, viewer_token=Secret(VIEWER),
                           operator_token=Secret(OPERATOR), ingest_token=Secret(INGEST))
        catalog = demo_catalog()
        alerting = build_alerting(cfg, catalog) if self.operator_api else None
        pipeline = build_pipeline(catalog, alerting.engine if alerting else None)
        runtime = Runtime(cfg, catalog, pipeline)
        if alerting is not None:
            alerting.attach(runtime)
        auth = alerting.authenticator(runtime) if alerting else None  # one authenticator for both
        app = create_app(runtime, alerts_router=alerting.router(runtime, auth) if alerting else None, auth=auth)
        overrides = {"http": self.http} if self.http is not None else {}
        class ThreadServer(Server):
            def capture_signals(self):  # signals belong to the main thread: the test's
                return contextlib.nullcontext()

        server = ThreadServer(config(app, "127.0.0.1", self.port, "warning", **overrides))
        return runtime, alerting, server

    def _main(self) -> None:
        async def main() -> None:
            runtime, alerting, server = self._build()
            self._server = server
            await runtime.start()
            if alerting is not None:
                alerting.start(runtime)
            ticker = asyncio.create_task(self.lag.run())
            from ioc.serve import settle_gc

            asyncio.get_running_loop().call_later(0.5, settle_gc)  # as `ioc run` does once serving
            try:
                await server.serve()
            finally:
                ticker.cancel()
                if alerting is not None:
                    await alerting.stop()
                await runtime.stop()
                if alerting is not None:
                    alerting.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._ready.set()

    def start(self, timeout_s: float = 20.0) -> "InProcessServer":
        self._thread = threading.Thread(target=self._main, daemon=True, name="fuzz-uvicorn")
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError(f"in-process server failed: {self._error!r}") from self._error
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("in-process server did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(20)


class IocProcess(IocServer):
    """`ioc run` (no demo: nothing changes the state but our requests) on a free port, restartable."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ, IOC_VIEWER_TOKEN=VIEWER, IOC_OPERATOR_TOKEN=OPERATOR, IOC_INGEST_TOKEN=INGEST,
                   PYTHONUNBUFFERED="1")
        super().__init__(data_dir, free_port(), [], env)

    def start(self, timeout_s: float = 30.0) -> "IocProcess":
        super().start(timeout_s)
        return self
