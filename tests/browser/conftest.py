"""Shared fixtures for the browser tests: a free port, an `ioc run --demo`
server subprocess (restartable on the same port and data directory), and a
headless Chromium driven by Playwright.

The server command can be overridden for development with
IOC_BROWSER_SERVER_CMD, a shell-style command with {port} and {data_dir}
placeholders (e.g. a local stand-in server).  Chromium is the Debian
package at /usr/bin/chromium (override with IOC_CHROMIUM); `playwright
install` is never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("IOC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ioc_command(port: int, data_dir: Path) -> list[str]:
    custom = os.environ.get("IOC_BROWSER_SERVER_CMD")
    if custom:
        return shlex.split(custom.format(port=port, data_dir=data_dir))
    exe = Path(sys.executable).with_name("ioc")
    ioc = str(exe) if exe.exists() else shutil.which("ioc")
    if not ioc:
        pytest.fail("the `ioc` console script is not installed: ./scripts/test.sh installs it")
    return [ioc, "run", "--demo", "--port", str(port), "--data-dir", str(data_dir)]


def _cli_available() -> bool:
    if os.environ.get("IOC_BROWSER_SERVER_CMD"):
        return True
    import importlib.util

    try:
        return importlib.util.find_spec("ioc.cli") is not None
    except (ImportError, ValueError):
        return False


class IocServer:
    """`ioc run --demo` on a fixed port and data dir; stop() and start() again to restart."""

    def __init__(self, port: int, data_dir: Path, log_dir: Path, demo_history: bool = False) -> None:
        self.demo_history = demo_history  # the month of demo trend history (ioc.demo_history)
        self.port = port
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.base = f"http://127.0.0.1:{port}"
        self.operator_token = "op-" + secrets.token_hex(12)
        self.viewer_token = "view-" + secrets.token_hex(12)
        self.admin_token = "admin-" + secrets.token_hex(12)
        self.ingest_token = "ingest-" + secrets.token_hex(12)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout_s: float = 45.0) -> None:
        self.starts += 1
        env = dict(os.environ, IOC_OPERATOR_TOKEN=self.operator_token, IOC_VIEWER_TOKEN=self.viewer_token,
                   IOC_ADMIN_TOKEN=self.admin_token, IOC_INGEST_TOKEN=self.ingest_token, PYTHONUNBUFFERED="1",
                   IOC_DEMO_HISTORY="1" if self.demo_history else "0")
        self.log_path = self.log_dir / f"server-{self.port}-{self.starts}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            _ioc_command(self.port, self.data_dir), cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ioc server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                req = urllib.request.Request(self.base + "/api/catalog", headers={"Authorization": f"Bearer {self.viewer_token}"})
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ioc server did not answer /api/catalog within {timeout_s} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # --- small HTTP helpers (stdlib only) ---
    def get_json(self, path: str, token: str | None = None):
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def post_json(self, path: str, body, token: str | None = None) -> tuple[int, object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def catalog(self) -> dict:
        return self.get_json("/api/catalog", token=self.viewer_token)

    def kiosk_url(self, path: str = "/", token: str | None = None) -> str:
        """The URL a wall display is started with: the page, signed in once by `?token=` (ioc/pages.py)."""
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={token or self.viewer_token}"


def _require_runtime() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: ./scripts/test.sh installs it (apt-get install chromium)")
    if not _cli_available():
        pytest.fail("ioc.cli is not importable: install the project (./scripts/test.sh)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def ioc_server(tmp_path_factory, artifacts):
    """One demo server shared by the read-only tests of the session."""
    _require_runtime()
    srv = IocServer(free_port(), tmp_path_factory.mktemp("ioc-data"), artifacts, demo_history=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path, artifacts):
    """A demo server of its own, for tests that change state or restart it."""
    _require_runtime()
    srv = IocServer(free_port(), tmp_path / "ioc-data", artifacts)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="package")
def browser():
    """Package scope: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would break every later test that calls asyncio.run()."""
    _require_runtime()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class OutsideRequests(list):
    """Requests the page tried to send to any host but the local server (they are aborted)."""


@pytest.fixture
def new_page(browser):
    """Factory: new_page(width, height) → a page in a fresh context that blocks and records outside requests."""
    contexts = []
    outside = OutsideRequests()
    errors: list[str] = []

    def make(width: int = 1920, height: int = 1080, locale: str = "vi-VN"):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale=locale, timezone_id="Asia/Ho_Chi_Minh")
        contexts.append(ctx)

        def guard(route):
            url = route.request.url
            host = urlparse(url).hostname
            if url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
                route.continue_()
            else:
                outside.append(url)
                route.abort()

        ctx.route("**/*", guard)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None)
        return page

    make.outside = outside
    make.errors = errors
    yield make
    for ctx in contexts:
        ctx.close()
    assert not outside, f"pages tried to reach outside hosts: {outside}"
    assert not errors, f"uncaught page errors or Content-Security-Policy violations: {errors}"
