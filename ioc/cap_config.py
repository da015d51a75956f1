"""CAP settings from the environment: who the messages say they are from, where they point.

Aggregators identify a message by (sender, identifier), so the sender must be a
stable, domain-based name the province owns — never `@localhost`:

- `IOC_CAP_SENDER`        e.g. `ioc@monitor.vinhphuc.gov.vn`; default `ioc@` + the
                           host of `IOC_PUBLIC_URL`, else of the machine's FQDN
- `IOC_CAP_SENDER_NAME`   Vietnamese sender name (`senderName` of the vi-VN info);
                           default "Trung tâm Điều hành thông minh" + the catalog's province
- `IOC_CAP_SENDER_NAME_EN` English sender name (en-US info)
- `IOC_PUBLIC_URL`        the public base URL of this server (`web` links, the Atom feed's links)
- `IOC_CAP_CONTACT`       default `contact` (a rule's `cap.contact` wins)
- `IOC_CAP_RESTRICTION`   the `restriction` text of Restricted (internal) messages

A value that cannot be used raises ConfigError naming the variable.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ioc.config import ConfigError

log = logging.getLogger("ioc.cap_config")

# CAP 1.2 §3.2.1: sender and identifier must not contain spaces, commas or < &
_CAP_ID_RE = re.compile(r"^[^\s,<&]+$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
DEFAULT_RESTRICTION = ("Nội bộ Trung tâm IOC và cán bộ được phân công; không công bố ra công chúng. "
                       "Internal to the IOC and assigned staff; not for public release.")
MAX_TEXT = 500


@dataclass(frozen=True)
class CapSettings:
    sender: str
    sender_name: dict[str, str]  # {"vi": ..., "en": ...}
    public_url: str | None = None  # no trailing slash
    contact: str | None = None
    restriction: str = DEFAULT_RESTRICTION

    def web(self, alert_id: str, base_url: str | None = None) -> str | None:
        """The alert's page: PUBLIC_URL/console#alert=ID (else the request's base URL)."""
        base = self.public_url or (base_url.rstrip("/") if base_url else None)
        return f"{base}/console#alert={alert_id}" if base else None


def check_sender(sender: str, name: str = "IOC_CAP_SENDER") -> str:
    """A CAP sender: no spaces, commas, < or &; an address at a real domain (user@host.tld)."""
    sender = sender.strip()
    if not _CAP_ID_RE.match(sender):
        raise ConfigError(f"{name}={sender!r}: a CAP sender may not contain spaces, commas, '<' or '&'")
    local, at, host = sender.rpartition("@")
    if not at or not local or _usable_host(host) is None:
        raise ConfigError(f"{name}={sender!r}: expected an address at the province's domain, "
                          f"e.g. ioc@monitor.vinhphuc.gov.vn")
    return sender


def check_public_url(url: str, name: str = "IOC_PUBLIC_URL") -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"{name}={url!r}: expected a base URL like https://ioc.vinhphuc.gov.vn "
                          f"(http or https, a host, no query)")
    return url.strip().rstrip("/")


def _text(name: str) -> str | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_TEXT:
        raise ConfigError(f"{name}: at most {MAX_TEXT} characters")
    return raw.strip()


def _province_names(catalog) -> tuple[str, str]:
    unit = catalog.units.get(catalog.province) if catalog is not None else None
    vi = (unit.name if unit else (getattr(catalog, "name", "") or "")).strip()
    en = (unit.name_en if unit and unit.name_en else vi).strip()
    if vi[:4] in ("Tỉnh", "Thàn"):  # "Tỉnh Vĩnh Phúc" → "tỉnh Vĩnh Phúc" inside a sentence
        vi = vi[0].lower() + vi[1:]
    return vi, en


def _usable_host(host: str | None) -> str | None:
    """A DNS name under a real domain (not an IP address, not localhost), else None."""
    if not host:
        return None
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    return host if _HOST_RE.match(host) and not host.startswith("localhost") else None


def _machine_host() -> str | None:
    try:
        return _usable_host(socket.getfqdn())
    except OSError:
        return None


def cap_settings_from_env(catalog=None) -> CapSettings:
    """The CAP settings of this process (env), with defaults derived from the public URL and the catalog."""
    public_url = _text("IOC_PUBLIC_URL")
    public_url = check_public_url(public_url) if public_url else None
    sender = _text("IOC_CAP_SENDER")
    if sender:
        sender = check_sender(sender)
    else:
        host = _usable_host(urlsplit(public_url).hostname if public_url else None) or _machine_host()
        if host is None:
            host = f"{(getattr(catalog, 'province', '') or 'ioc').lower()}.invalid"
            log.warning("IOC_CAP_SENDER is not set and no public host is known: CAP messages say they are from "
                        "ioc@%s; set IOC_CAP_SENDER=ioc@<your domain> before giving the feed to an aggregator", host)
        sender = f"ioc@{host}"
    prov_vi, prov_en = _province_names(catalog)
    name_vi = _text("IOC_CAP_SENDER_NAME") or ("Trung tâm Điều hành thông minh " + prov_vi).strip()
    name_en = _text("IOC_CAP_SENDER_NAME_EN") or (
        ("Intelligent Operations Center, " + prov_en) if prov_en else "Intelligent Operations Center")
    return CapSettings(sender=sender, sender_name={"vi": name_vi, "en": name_en}, public_url=public_url,
                       contact=_text("IOC_CAP_CONTACT"), restriction=_text("IOC_CAP_RESTRICTION") or DEFAULT_RESTRICTION)
