"""The browser-origin allowlist (ioc/origins.py) behind the /ws check and the CSRF guard."""

from __future__ import annotations

import pytest

from ioc.config import ConfigError
from ioc.origins import OriginPolicy, normalise


@pytest.mark.parametrize("raw,norm", [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("HTTP://IOC.VinhPhuc.gov.vn", "http://ioc.vinhphuc.gov.vn"),
    ("https://ioc.example.vn:443", "https://ioc.example.vn"),
    ("http://ioc.example.vn:80/", "http://ioc.example.vn"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("null", None), ("file://", None), ("javascript:alert(1)", None), ("ws://127.0.0.1", None),
    ("http://127.0.0.1:99999", None), ("http://user:pw@host", None), ("http://host/path", None), ("", None),
])
def test_normalise(raw, norm):
    assert normalise(raw) == norm


def test_the_serving_host_and_the_listed_origins_are_allowed():
    policy = OriginPolicy.from_env({"IOC_ALLOWED_ORIGINS": " https://ioc.vinhphuc.gov.vn ,http://10.0.0.5:8080,"})
    assert policy.extra == {"https://ioc.vinhphuc.gov.vn", "http://10.0.0.5:8080"}
    assert policy.allows("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert policy.allows("https://wall.local", "wall.local", "wss")  # the page came over https
    assert not policy.allows("http://wall.local", "wall.local", "wss")
    assert not policy.allows("http://127.0.0.1:8001", "127.0.0.1:8000")
    assert not policy.allows("http://127.0.0.1:8000.evil.example", "127.0.0.1:8000")
    assert policy.allows("https://ioc.vinhphuc.gov.vn", "10.1.2.3:8000")
    assert not policy.allows("http://ioc.vinhphuc.gov.vn", "10.1.2.3:8000")
    assert policy.allows(None, "127.0.0.1:8000")  # not a browser: judged by its credentials alone
    assert not policy.allows("null", "127.0.0.1:8000")
    assert not policy.allows("http://127.0.0.1:8000", None)


def test_a_bad_allowlist_entry_is_a_clear_configuration_error():
    with pytest.raises(ConfigError, match=r"IOC_ALLOWED_ORIGINS: 'ioc\.vinhphuc\.gov\.vn' is not an origin"):
        OriginPolicy.from_env({"IOC_ALLOWED_ORIGINS": "ioc.vinhphuc.gov.vn"})
