"""Fixtures for the sensors tests: the demo catalog and a real Mosquitto broker."""

from __future__ import annotations

import pytest

from ioc.catalog import demo_catalog

@pytest.fixture(scope="session")
def catalog():
    return demo_catalog()
