"""Fixtures for the alert tests (helpers live in alerttest_util.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import alerttest_util as u  # noqa: E402


@pytest.fixture
def catalog():
    return u.make_catalog()


@pytest.fixture(scope="session")
def rules():
    return u.builtin_rules()


@pytest.fixture
def receiver():
    made: list[u.Receiver] = []

    def make(fail_first: int = 0, fail_status: int = 503) -> u.Receiver:
        r = u.Receiver(fail_first, fail_status)
        made.append(r)
        return r.__enter__()

    yield make
    for r in made:
        r.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _every_cap_message_is_schema_valid(monkeypatch):
    """Every CAP message rendered in-process by an alert test is checked against the OASIS schema."""
    import alerts.cap as cap
    from captest_util import validate_cap

    real = cap.render_cap

    def checked(*args, **kwargs):
        xml = real(*args, **kwargs)
        validate_cap(xml)
        return xml

    monkeypatch.setattr(cap, "render_cap", checked)
