"""The notification configuration file: directory, routes, channel settings; reloaded when it changes.

Where: the file named by `IOC_NOTIFY_CONFIG` (not in the rules dir: every YAML file there is a rule file).
Secrets are never in the file: it names environment variables (`token_env`,
`password_env`, ...) and the values stay in `ioc.config.Secret`.  A file that
cannot be used is refused whole with an error naming the file and the entry;
a reload that fails keeps the previous configuration (logged).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ioc.config import Secret

from alerts.notify.directory import CHANNELS, Directory, NotifyConfigError, parse_directory
from alerts.notify.routes import Route, parse_routes

log = logging.getLogger("alerts.notify.config")

_CHANNEL_KEYS = {
    "email": {"host", "port", "starttls", "ssl", "username", "password_env", "from", "ca_file", "timeout_s"},
    "telegram": {"base_url", "token_env", "timeout_s"},
    "zalo": {"base_url", "access_token_env", "timeout_s"},
    "sms": {"url", "method", "headers", "body", "form", "secret_env", "timeout_s", "max_chars"},
    "webhook": {"headers", "timeout_s"},
}
_DEFAULT_BASE = {"telegram": "https://api.telegram.org", "zalo": "https://openapi.zalo.me"}


@dataclass(frozen=True)
class ChannelSettings:
    name: str
    options: dict[str, Any]
    secret: Secret | None = None


@dataclass(frozen=True)
class Retry:
    backoff_s: float = 5.0
    backoff_max_s: float = 600.0
    max_attempts: int = 12


@dataclass(frozen=True)
class NotifyConfig:
    source: str
    directory: Directory
    root: Route
    channels: dict[str, ChannelSettings]
    retry: Retry = Retry()
    public_url: str | None = None
    title: dict[str, str] = field(default_factory=lambda: {"vi": "IOC", "en": "IOC"})


def _channel(name: str, raw: object, source: str, env) -> ChannelSettings:
    where = f"{source}: channels.{name}"
    if not isinstance(raw, dict):
        raise NotifyConfigError(f"{where}: expected a mapping of settings")
    unknown = set(raw) - _CHANNEL_KEYS[name]
    if unknown:
        raise NotifyConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    opts = dict(raw)
    secret = None
    for key in ("password_env", "token_env", "access_token_env", "secret_env"):
        if key in opts:
            var = opts.pop(key)
            value = env.get(str(var))
            if not value:
                raise NotifyConfigError(f"{where}.{key}: the environment variable {var} is not set")
            secret = Secret(value)
    if name in ("telegram", "zalo") and secret is None:
        key = "token_env" if name == "telegram" else "access_token_env"
        raise NotifyConfigError(f"{where}.{key}: name the environment variable holding the token")
    if name in _DEFAULT_BASE:
        opts["base_url"] = str(opts.get("base_url") or _DEFAULT_BASE[name]).rstrip("/")
    if name == "email" and not opts.get("host"):
        raise NotifyConfigError(f"{where}.host: the SMTP server is required")
    if name == "email" and not opts.get("from"):
        raise NotifyConfigError(f"{where}.from: the sender address is required")
    if name == "sms":
        if not str(opts.get("url", "")).startswith(("http://", "https://")):
            raise NotifyConfigError(f"{where}.url: expected the gateway's http(s) URL")
        if str(opts.get("method", "POST")).upper() not in ("GET", "POST", "PUT"):
            raise NotifyConfigError(f"{where}.method: expected GET, POST or PUT")
    return ChannelSettings(name, opts, secret)


def parse_config(text: str, source: str, *, unit_ids: set[str] | None = None, env=None) -> NotifyConfig:
    from alerts.rules import parse_duration

    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NotifyConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise NotifyConfigError(f"{source}: expected a mapping with people, groups, routes and channels")
    unknown = set(raw) - {"version", "people", "groups", "routes", "channels", "retry", "public_url", "title"}
    if unknown:
        raise NotifyConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
    directory = parse_directory(raw, source, unit_ids)
    channels = {}
    for name, body in (raw.get("channels") or {}).items():
        if name not in CHANNELS:
            raise NotifyConfigError(f"{source}: channels.{name}: not one of {', '.join(CHANNELS)}")
        channels[name] = _channel(name, body, source, env)
    root = parse_routes(raw.get("routes") or {}, source, directory, parse_duration, unit_ids)
    _check_channels_configured(root, directory, channels, source)
    r = raw.get("retry") or {}
    try:
        retry = Retry(parse_duration(r.get("backoff", 5)), parse_duration(r.get("backoff_max", 600)),
                      int(r.get("max_attempts", 12)))
    except (TypeError, ValueError) as exc:
        raise NotifyConfigError(f"{source}: retry: {exc}") from None
    title = raw.get("title") or {}
    if isinstance(title, str):
        title = {"vi": title, "en": title}
    public = raw.get("public_url") or env.get("IOC_PUBLIC_URL") or None
    return NotifyConfig(source, directory, root, channels, retry, public.rstrip("/") if public else None,
                        {"vi": str(title.get("vi", "IOC")), "en": str(title.get("en", title.get("vi", "IOC")))})


def _check_channels_configured(root: Route, directory: Directory, channels: dict, source: str) -> None:
    """A route naming a channel that has no settings cannot deliver: say so at load."""
    stack = [root]
    while stack:
        r = stack.pop()
        for c in r.channels:
            if c != "webhook" and c not in channels:
                raise NotifyConfigError(f"{source}: route {r.id}: channel {c!r} has no settings under `channels:`")
        stack.extend(r.children)


def config_path(env=None) -> Path | None:
    """The file of IOC_NOTIFY_CONFIG, or None (no notifications to people)."""
    env = os.environ if env is None else env
    return Path(env["IOC_NOTIFY_CONFIG"]) if env.get("IOC_NOTIFY_CONFIG") else None


def load_config(path: Path, unit_ids: set[str] | None = None, env=None) -> NotifyConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotifyConfigError(f"{path}: cannot read the notification configuration: {exc}") from None
    return parse_config(text, str(path), unit_ids=unit_ids, env=env)


class ConfigSource:
    """The current configuration, re-read when the file's mtime or size changes (checked by `current()`)."""

    def __init__(self, path: Path, unit_ids: set[str] | None = None, env=None) -> None:
        self.path = Path(path)
        self.unit_ids = unit_ids
        self.env = env
        self._stamp = self._stat()
        self.config = load_config(self.path, unit_ids, env)  # the first load must succeed
        self.last_error: str | None = None
        self.reloads = 0

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def current(self) -> NotifyConfig:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.config = load_config(self.path, self.unit_ids, self.env)
                self.last_error = None
                self.reloads += 1
                log.info("notification configuration reloaded from %s", self.path)
            except NotifyConfigError as exc:
                self.last_error = str(exc)
                log.error("notification configuration not reloaded, keeping the previous one: %s", exc)
        return self.config
