"""Who can be told (pure): people with their channels, language, units and quiet hours; groups of them.

A person covers the catalog units listed in `units` and everything below them
(a district's Ban chỉ huy PCTT covers its communes and their stations); a
person without `units` covers everything.  Quiet hours ("22:00-06:00", local
time) hold back non-critical messages until they end; critical ones go at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ioc.config import ConfigError
from ioc.timeutil import local

CHANNELS = ("email", "sms", "telegram", "zalo", "webhook")
LANGUAGES = ("vi", "en")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?\d{8,15}$")


class NotifyConfigError(ConfigError):
    """A notification setting that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class QuietHours:
    start_min: int  # minutes after local midnight
    end_min: int

    def end_after(self, t_s: float) -> float | None:
        """Epoch s when the quiet period containing `t_s` ends; None when `t_s` is not in one."""
        d = local(t_s)
        m = d.hour * 60 + d.minute
        s, e = self.start_min, self.end_min
        inside = (s <= m < e) if s < e else (m >= s or m < e)
        if not inside:
            return None
        midnight = d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        end = midnight + e * 60
        if end <= t_s:
            end += 86400
        return end


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    language: str = "vi"
    units: tuple[str, ...] = ()
    addresses: dict[str, str] = field(default_factory=dict)  # channel → e-mail, phone, chat id, user id, URL
    quiet_hours: QuietHours | None = None

    def covers(self, unit: str | None, ancestors: tuple[str, ...]) -> bool:
        if not self.units:
            return True
        if unit is None:
            return False
        return unit in self.units or any(a in self.units for a in ancestors)


@dataclass(frozen=True)
class Directory:
    people: dict[str, Person]
    groups: dict[str, tuple[str, ...]]  # group id → person ids
    group_names: dict[str, str] = field(default_factory=dict)

    def expand(self, receivers: tuple[str, ...]) -> list[Person]:
        """People named directly or through a group, each once, in order."""
        out: dict[str, Person] = {}
        for r in receivers:
            for pid in self.groups.get(r, (r,)):
                if pid in self.people:
                    out.setdefault(pid, self.people[pid])
        return list(out.values())

    def knows(self, name: str) -> bool:
        return name in self.people or name in self.groups


def _quiet(text: object, where: str) -> QuietHours:
    if not isinstance(text, str) or "-" not in text:
        raise NotifyConfigError(f"{where}.quiet_hours: expected 'HH:MM-HH:MM' (local time), got {text!r}")
    a, b = (x.strip() for x in text.split("-", 1))
    ma, mb = _HHMM.match(a), _HHMM.match(b)
    if not ma or not mb or a == b:
        raise NotifyConfigError(f"{where}.quiet_hours: expected 'HH:MM-HH:MM' with two different times, got {text!r}")
    return QuietHours(int(ma[1]) * 60 + int(ma[2]), int(mb[1]) * 60 + int(mb[2]))


def _check_address(channel: str, value: str, where: str) -> None:
    if channel == "email" and not _EMAIL.match(value):
        raise NotifyConfigError(f"{where}.email: {value!r} is not an e-mail address")
    if channel == "sms" and not _PHONE.match(value.replace(" ", "")):
        raise NotifyConfigError(f"{where}.phone: {value!r} is not a phone number (digits, optional +)")
    if channel == "telegram" and not re.match(r"^-?\d{1,20}$|^@\w{5,}$", value):
        raise NotifyConfigError(f"{where}.telegram: {value!r} is not a Telegram chat id (a number or @channel)")
    if channel == "webhook" and not value.startswith(("http://", "https://")):
        raise NotifyConfigError(f"{where}.webhook: {value!r} is not an http(s) URL")


def parse_directory(raw: dict, source: str, unit_ids: set[str] | None) -> Directory:
    people: dict[str, Person] = {}
    for i, p in enumerate(raw.get("people") or []):
        if not isinstance(p, dict) or not isinstance(p.get("id"), str) or not p["id"].strip():
            raise NotifyConfigError(f"{source}: people[#{i}]: each person needs an `id`")
        pid = p["id"]
        where = f"{source}: people[{pid}]"
        unknown = set(p) - {"id", "name", "language", "units", "email", "phone", "telegram", "zalo", "webhook",
                            "quiet_hours"}
        if unknown:
            raise NotifyConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if pid in people:
            raise NotifyConfigError(f"{where}: duplicate id")
        lang = p.get("language", "vi")
        if lang not in LANGUAGES:
            raise NotifyConfigError(f"{where}.language: expected vi or en, got {lang!r}")
        units = p.get("units") or []
        if isinstance(units, str):
            units = [units]
        if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
            raise NotifyConfigError(f"{where}.units: expected a list of catalog unit ids")
        if unit_ids is not None:
            for u in units:
                if u not in unit_ids:
                    raise NotifyConfigError(f"{where}.units: {u!r} is not a unit of the catalog")
        addresses: dict[str, str] = {}
        for channel, key in (("email", "email"), ("sms", "phone"), ("telegram", "telegram"), ("zalo", "zalo"),
                             ("webhook", "webhook")):
            if p.get(key) is not None:
                value = str(p[key]).strip()
                _check_address(channel, value, where)
                addresses[channel] = value
        if not addresses:
            raise NotifyConfigError(f"{where}: no channel (email, phone, telegram, zalo or webhook)")
        people[pid] = Person(pid, str(p.get("name") or pid), lang, tuple(units), addresses,
                             _quiet(p["quiet_hours"], where) if p.get("quiet_hours") else None)
    groups: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    for i, g in enumerate(raw.get("groups") or []):
        if not isinstance(g, dict) or not isinstance(g.get("id"), str):
            raise NotifyConfigError(f"{source}: groups[#{i}]: each group needs an `id`")
        where = f"{source}: groups[{g['id']}]"
        if g["id"] in groups or g["id"] in people:
            raise NotifyConfigError(f"{where}: the id is already used by another group or person")
        members = g.get("members") or []
        if not isinstance(members, list) or not members:
            raise NotifyConfigError(f"{where}.members: expected a list of person ids")
        for m in members:
            if m not in people:
                raise NotifyConfigError(f"{where}.members: {m!r} is not a person of the directory")
        groups[g["id"]] = tuple(members)
        names[g["id"]] = str(g.get("name") or g["id"])
    return Directory(people, groups, names)


__all__ = ["CHANNELS", "Directory", "NotifyConfigError", "Person", "QuietHours", "parse_directory"]
