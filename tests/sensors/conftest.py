"""Fixtures for the sensors tests: the demo catalog and a real Mosquitto broker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# tests/conftest.py puts tests/ on sys.path, where tests/sensors (no __init__.py) would shadow the
# real `sensors` package as a namespace package (the editable install's finder runs after the
# path finder).  Put the repository root first and drop a shadowing namespace module if any.
# (A project-wide fix: `pythonpath = ["."]` under [tool.pytest.ini_options].)
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if "sensors" in sys.modules and getattr(sys.modules["sensors"], "__file__", None) is None:
    for _name in [m for m in sys.modules if m == "sensors" or m.startswith("sensors.")]:
        del sys.modules[_name]

from ioc.catalog import demo_catalog  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"


@pytest.fixture(scope="session")
def catalog():
    return demo_catalog()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mqtt_broker():
    """(host, port) of a Mosquitto broker: the local one on 1883 when it answers, else our own.

    IOC_TEST_OWN_MOSQUITTO=1 forces starting a private broker.
    """
    if not os.environ.get("IOC_TEST_OWN_MOSQUITTO") and _answers("127.0.0.1", 1883):
        yield ("127.0.0.1", 1883)
        return
    binary = MOSQUITTO if os.path.exists(MOSQUITTO) else shutil.which("mosquitto")
    if not binary:
        pytest.skip("no mosquitto binary")
    port = _free_port()
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
