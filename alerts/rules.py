"""Rules as data: the model and the YAML loader (docs/architecture.md §5).

A rule file is a mapping with a `rules:` list.  Each rule has a `kind`:

- ``threshold``  one indicator (optionally divided by another, `per:`) compared
  with a threshold, with `for`, a clear condition (hysteresis) and
  `keep_firing_for`, all in event time;
- ``levels``     graded levels: the highest level whose `any:` clauses hold;
  clears when every `clear:` clause holds;
- ``risk``       a Decision 18/2021 risk level per area (alerts/risk/):
  `params.article` 44 (heavy rain, levels 1–4 per commune, district and
  province) or 46 (flash flood / landslide, levels 1–3 per commune), from the
  tables in alerts/risk/decision18.yaml;
- ``stale`` / ``flatline`` / ``implausible``: detectors (alerts/detectors.py)
  configured by `params:`;
- ``anomaly``    a streaming anomaly detector (alerts/anomaly/) attached to one
  indicator series (`indicator`, `window`, `entity`), sampled every
  `params.step` of event time, firing when its score reaches
  `params.threshold` (held for `for`) and clearing below
  `params.clear_threshold` (hysteresis).

Every rule has `message: {vi, en}` (firing) and may have `resolved_message:
{vi, en}` (what ended); both are rendered by alerts/messages.py, and their
placeholders and formats are checked here against what the engine passes.

A rules directory (`ioc run --rules DIR`, IOC_RULES_DIR) is applied over the
built-in pack by `with_overrides`: a rule there replaces the built-in rule of
the same name, `enabled: false` switches one off, and a rule with a name of
its own must say `new: true` (an unknown name without it, or `new: true` on a
built-in's name, is an error with the closest built-in name suggested), so a
typo never silently adds a second rule.

Loading validates everything up front and raises one RuleError listing every
problem as ``FILE: rule 'NAME': FIELD: what is wrong``.  Pure: no I/O beyond
reading the files it is asked to read, no clock.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from alerts.messages import check_template
from ioc.errors import UserError

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
KINDS = ("threshold", "levels", "risk", "stale", "flatline", "implausible", "anomaly")
# a `risk` rule (Decision 18/2021, alerts/risk/) reads these rain series of every gauge
RISK_INPUTS = (("rain_mm", "24h"), ("rain_mm", "12h"), ("rain_day_mm", "rain_day"))
RISK_ARTICLES = (44, 46)
FEEDS = ("rain", "dossier", "camera")
_PREFIX_FEED = (("rain_", "rain"), ("dossier_", "dossier"), ("queue_", "camera"))

# placeholders every message may use, plus per-kind extras and the rule's labels
_COMMON_FIELDS = {"rule", "entity", "entity_name", "value", "severity", "unit", "ts", "started"}
_KIND_FIELDS = {
    "threshold": {"threshold", "clear_threshold", "indicator", "window", "per"},
    "levels": {"level", "level_name_vi", "level_name_en", "indicator", "window", "matched", "matched_value",
               "matched_hours"},
    "risk": {"level", "level_name", "clause", "band", "amount", "hours", "days", "extent_pct", "station_name", "basis",
             "set_by", "reason", "susceptibility", "group"},
    "stale": {"minutes", "last_seen", "feed"},
    "flatline": {"reading", "minutes", "readings", "feed", "reading_unit"},
    "implausible": {"reason", "reading", "feed", "reading_unit", "reading_ts", "handling"},
    "anomaly": {"indicator", "window", "feed", "at", "score", "score_vi", "scale_en", "scale_vi", "observed",
                "observed_vi", "expected", "expected_vi", "expected_low", "expected_low_vi", "expected_high",
                "expected_high_vi", "seasonal", "direction_en", "direction_vi"},
}


class RuleError(UserError):
    """Invalid rule file(s); the message names file, rule and what is wrong."""


def feed_of_indicator(name: str) -> str | None:
    for prefix, feed in _PREFIX_FEED:
        if name.startswith(prefix):
            return feed
    return None


_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(x: Any) -> float:
    """'90s', '5m', '1h30m', '2d' or a number of seconds → seconds."""
    if isinstance(x, bool):
        raise ValueError(f"expected a duration like '5m', got {x!r}")
    if isinstance(x, (int, float)):
        if x < 0:
            raise ValueError(f"a duration cannot be negative, got {x!r}")
        return float(x)
    if not isinstance(x, str) or not x.strip():
        raise ValueError(f"expected a duration like '5m', got {x!r}")
    text = x.strip().replace(" ", "")
    pos, total = 0, 0.0
    for m in _DUR_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"expected a duration like '90s', '5m', '1h30m', got {x!r}")
    return total


def window_seconds(window: str | None) -> float:
    """Length of an indicator window label ('24h' → 86400); 0 for now/day/... ."""
    if not window:
        return 0.0
    try:
        return parse_duration(window)
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class Cond:
    """One comparison on an indicator; `days` > 0: held on that many consecutive rain days."""

    indicator: str
    window: str
    op: str
    value: float
    days: int = 0

    def holds(self, v: float) -> bool:
        return OPS[self.op](v, self.value)

    def describe(self) -> str:
        s = f"{self.indicator} {self.window} {self.op} {_num(self.value)}"
        return s + (f" for {self.days} days" if self.days else "")


@dataclass(frozen=True, eq=False)
class Level:
    level: int
    severity: str
    any: tuple[Cond, ...]
    verify: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)  # {"vi":..., "en":...}


@dataclass(frozen=True, eq=False)
class Rule:
    name: str
    kind: str
    entity: str
    severity: str
    message: dict[str, str]
    source: str = "<memory>"
    feeds: tuple[str, ...] = ()
    indicator: str | None = None
    window: str | None = None
    per: tuple[str, str] | None = None  # divisor indicator (name, window)
    op: str = ">"
    threshold: float = 0.0
    clear_op: str | None = None
    clear_threshold: float | None = None
    clear_all: tuple[Cond, ...] = ()  # levels: every clause must hold to clear
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    levels: tuple[Level, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    hazard: str | None = None  # incident group
    params: dict[str, Any] = field(default_factory=dict)
    verify: bool = False
    description: str = ""
    cap: dict[str, str] = field(default_factory=dict)
    # text when the alert ends (alerts/messages.py); empty: the last firing text stays
    resolved_message: dict[str, str] = field(default_factory=dict)
    # a rules directory's rule that adds to the built-in pack (else its name must be a built-in's: a typo
    # would otherwise silently add a second rule next to the one meant to be replaced)
    new: bool = False

    def inputs(self) -> list[tuple[str, str]]:
        """(indicator, window) pairs the rule reads, in a stable order."""
        out: list[tuple[str, str]] = list(RISK_INPUTS) if self.kind == "risk" else []
        if self.indicator and self.window:
            out.append((self.indicator, self.window))
        if self.per:
            out.append(self.per)
        for lv in self.levels:
            out.extend((c.indicator, c.window) for c in lv.any)
        out.extend((c.indicator, c.window) for c in self.clear_all)
        seen: set = set()
        return [x for x in out if not (x in seen or seen.add(x))]

    def fires(self, v: float) -> bool:
        return OPS[self.op](v, self.threshold)

    def clears(self, v: float) -> bool:
        if self.clear_op is None or self.clear_threshold is None:
            return not self.fires(v)
        return OPS[self.clear_op](v, self.clear_threshold)

    def max_window_s(self) -> float:
        return max((window_seconds(w) for _, w in self.inputs()), default=0.0)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    disabled: frozenset[str] = frozenset()  # names marked `enabled: false`: they switch a built-in rule off
    disabled_in: dict[str, str] = field(default_factory=dict, compare=False)  # disabled name → its file

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]


def _firing_point(op: str, thr: float) -> float:
    """A value at which `op thr` holds (to check that the clear condition does not)."""
    eps = max(abs(thr) * 1e-9, 1e-9)
    return thr + eps if op == ">" else thr - eps if op == "<" else thr


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# --------------------------------------------------------------------------- loading


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self.rule = "?"

    def err(self, where: str, what: str) -> None:
        loc = f"{self.source}: rule {self.rule!r}"
        self.errors.append(f"{loc}: {where}: {what}" if where else f"{loc}: {what}")


_RULE_KEYS = {
    "name", "kind", "entity", "severity", "message", "feed", "feeds", "indicator", "window", "per", "op",
    "threshold", "clear", "for", "keep_firing_for", "levels", "labels", "hazard", "params", "verify",
    "description", "enabled", "cap", "resolved_message", "new",
}


def _req(ctx: _Ctx, d: dict, key: str, types: tuple, what: str) -> Any:
    if key not in d or d[key] is None:
        ctx.err(key, f"missing (required: {what})")
        return None
    v = d[key]
    if isinstance(v, bool) and bool not in types:
        ctx.err(key, f"expected {what}, got {v!r}")
        return None
    if not isinstance(v, types):
        ctx.err(key, f"expected {what}, got {v!r}")
        return None
    return v


def _opt_duration(ctx: _Ctx, d: dict, key: str) -> float:
    if key not in d or d[key] is None:
        return 0.0
    try:
        return parse_duration(d[key])
    except ValueError as exc:
        ctx.err(key, str(exc))
        return 0.0


def _str_map(ctx: _Ctx, d: Any, where: str) -> dict[str, str]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        ctx.err(where, f"expected a mapping of names to text, got {d!r}")
        return {}
    out = {}
    for k, v in d.items():
        if isinstance(v, (dict, list)) or v is None:
            ctx.err(f"{where}.{k}", f"expected text, got {v!r}")
            continue
        out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


# the rule's `cap:` block (alerts/cap.py): CAP 1.2 enumerations, or free text where CAP has it
CAP_CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                  "CBRNE", "Other")
_CAP_CHOICES = {"category": CAP_CATEGORIES, "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
                "scope": ("Public", "Restricted"), "status": ("Actual", "Exercise", "Test")}
_CAP_TEXT = {"event_vi", "event_en", "instruction_vi", "instruction_en", "contact"}


def _check_cap(ctx: _Ctx, cap: dict[str, str]) -> None:
    for k, v in cap.items():
        if k in _CAP_CHOICES:
            if v not in _CAP_CHOICES[k]:
                ctx.err(f"cap.{k}", f"expected one of {', '.join(_CAP_CHOICES[k])}, got {v!r}")
        elif k == "expires":
            try:
                if parse_duration(v) <= 0:
                    raise ValueError(f"expected a positive duration like '12h', got {v!r}")
            except ValueError as exc:
                ctx.err("cap.expires", str(exc))
        elif k == "radius_km":
            try:
                ok = 0 < float(v) <= 500
            except ValueError:
                ok = False
            if not ok:
                ctx.err("cap.radius_km", f"expected a radius in km (0 < r ≤ 500), got {v!r}")
        elif k in _CAP_TEXT:
            if len(v) > 2000:
                ctx.err(f"cap.{k}", "at most 2,000 characters")
        else:
            known = sorted({*_CAP_CHOICES, "expires", "radius_km", *_CAP_TEXT})
            ctx.err(f"cap.{k}", f"unknown field; the cap block takes {', '.join(known)}")


def _op(ctx: _Ctx, v: Any, where: str) -> str:
    if v not in OPS:
        ctx.err(where, f"unknown comparison {v!r}; use one of {' '.join(OPS)}")
        return ">"
    return v


def _cond(ctx: _Ctx, c: Any, where: str) -> Cond | None:
    if not isinstance(c, dict):
        ctx.err(where, f"expected a mapping {{indicator, window, op, value[, days]}}, got {c!r}")
        return None
    extra = set(c) - {"indicator", "window", "op", "value", "days"}
    if extra:
        ctx.err(where, f"unknown field(s) {sorted(extra)}")
    ind, win, val = c.get("indicator"), c.get("window"), c.get("value")
    ok = True
    if not isinstance(ind, str) or not ind:
        ctx.err(f"{where}.indicator", f"missing or not a name: {ind!r}")
        ok = False
    if not isinstance(win, str) or not win:
        ctx.err(f"{where}.window", f"missing or not a window label: {win!r}")
        ok = False
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        ctx.err(f"{where}.value", f"expected a number, got {val!r}")
        ok = False
    days = c.get("days", 0)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        ctx.err(f"{where}.days", f"expected a whole number of days ≥ 0, got {days!r}")
        ok = False
    op = _op(ctx, c.get("op", ">="), f"{where}.op")
    return Cond(ind, str(win), op, float(val), int(days)) if ok else None


def _check_templates(ctx: _Ctx, message: dict[str, str], kind: str, labels: dict[str, str],
                     where: str = "message") -> None:
    """Every placeholder is one the engine fills and every format is one alerts/messages.py renders."""
    allowed = _COMMON_FIELDS | _KIND_FIELDS.get(kind, set()) | set(labels)
    for lang, text in message.items():
        problem = check_template(text, allowed)
        if problem:
            ctx.err(f"{where}.{lang}", problem if problem.startswith(("unknown placeholder", "placeholder"))
                    else f"bad template: {problem}")


def _parse_rule(ctx: _Ctx, raw: Any, index: int) -> Rule | None:
    if not isinstance(raw, dict):
        ctx.rule = f"#{index}"
        ctx.err("", f"a rule is a mapping, got {raw!r}")
        return None
    name = raw.get("name")
    ctx.rule = name if isinstance(name, str) and name else f"#{index}"
    n_errors = len(ctx.errors)
    if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name or "")):
        ctx.err("name", f"missing or not a snake_case name: {name!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        ctx.err("", f"unknown field(s) {sorted(unknown)}")
    if raw.get("enabled", True) is False:
        return None
    kind = raw.get("kind", "threshold")
    if kind not in KINDS:
        ctx.err("kind", f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        return None
    entity = _req(ctx, raw, "entity", (str,), "what the alert is about: station, unit, site, camera")
    severity = raw.get("severity", "warning" if kind != "levels" else "warning")
    if severity not in SEVERITIES:
        ctx.err("severity", f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}")
    message = raw.get("message")
    if not isinstance(message, dict) or not all(isinstance(message.get(k), str) and message.get(k) for k in ("vi", "en")):
        ctx.err("message", "needs text in both Vietnamese and English: message: {vi: ..., en: ...}")
        message = {"vi": "", "en": ""}
    message = {str(k): str(v) for k, v in message.items()}
    labels = _str_map(ctx, raw.get("labels"), "labels")
    _check_templates(ctx, message, kind, labels)
    resolved_message = raw.get("resolved_message") or {}
    if not isinstance(resolved_message, dict) or (resolved_message and not all(
            isinstance(resolved_message.get(k), str) and resolved_message.get(k) for k in ("vi", "en"))):
        ctx.err("resolved_message", "when given, needs text in both Vietnamese and English: "
                                    "resolved_message: {vi: ..., en: ...}")
        resolved_message = {}
    resolved_message = {str(k): str(v) for k, v in resolved_message.items()}
    _check_templates(ctx, resolved_message, kind, labels, "resolved_message")
    cap = _str_map(ctx, raw.get("cap"), "cap")
    _check_cap(ctx, cap)
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        ctx.err("params", f"expected a mapping, got {params!r}")
        params = {}
    hazard = raw.get("hazard")
    if hazard is not None and not isinstance(hazard, str):
        ctx.err("hazard", f"expected a name, got {hazard!r}")
        hazard = None
    verify = raw.get("verify", False)
    if not isinstance(verify, bool):
        ctx.err("verify", f"expected true or false, got {verify!r}")
        verify = False
    new = raw.get("new", False)
    if not isinstance(new, bool):
        ctx.err("new", f"expected true or false, got {new!r}")
    feeds_raw = raw.get("feeds", raw.get("feed"))
    feeds: tuple[str, ...] = ()
    if feeds_raw is not None:
        fl = [feeds_raw] if isinstance(feeds_raw, str) else feeds_raw
        if not isinstance(fl, list) or any(f not in FEEDS for f in fl):
            ctx.err("feed", f"expected one or more of {', '.join(FEEDS)}, got {feeds_raw!r}")
        else:
            feeds = tuple(fl)
    for_s = _opt_duration(ctx, raw, "for")
    keep_s = _opt_duration(ctx, raw, "keep_firing_for")
    kw: dict[str, Any] = {}

    if kind == "threshold":
        ind = _req(ctx, raw, "indicator", (str,), "an indicator name, e.g. rain_mm")
        win = _req(ctx, raw, "window", (str,), "a window label, e.g. 24h or now")
        thr = _req(ctx, raw, "threshold", (int, float), "a number")
        op = _op(ctx, raw.get("op", ">"), "op")
        per = raw.get("per")
        per_t = None
        if per is not None:
            if isinstance(per, dict) and isinstance(per.get("indicator"), str) and isinstance(per.get("window"), str):
                per_t = (per["indicator"], per["window"])
            else:
                ctx.err("per", f"expected {{indicator: NAME, window: WINDOW}}, got {per!r}")
        clear = raw.get("clear")
        cop = cthr = None
        if clear is not None:
            if not isinstance(clear, dict):
                ctx.err("clear", f"expected {{op, threshold}}, got {clear!r}")
            else:
                cop = _op(ctx, clear.get("op", "<"), "clear.op")
                cthr = clear.get("threshold")
                if isinstance(cthr, bool) or not isinstance(cthr, (int, float)):
                    ctx.err("clear.threshold", f"expected a number, got {cthr!r}")
                    cthr = None
                elif thr is not None and not isinstance(thr, bool) and OPS[cop](_firing_point(op, thr), cthr):
                    ctx.err("clear", f"the clear condition {cop} {cthr} already holds at the firing threshold {thr}: "
                                     "it would resolve the alert at once")
                else:
                    cthr = float(cthr)
        if ind and not feeds:
            f = feed_of_indicator(ind)
            if f is None:
                ctx.err("feed", f"cannot tell the feed of indicator {ind!r}; set feed: rain|dossier|camera")
            feeds = (f,) if f else ()
        kw.update(indicator=ind, window=win, per=per_t, op=op, threshold=float(thr or 0.0),
                  clear_op=cop, clear_threshold=cthr)

    elif kind == "levels":
        lv_raw = raw.get("levels")
        levels: list[Level] = []
        if not isinstance(lv_raw, list) or not lv_raw:
            ctx.err("levels", "expected a non-empty list of {level, severity, any: [...]}")
        else:
            for i, lv in enumerate(lv_raw):
                where = f"levels[{i}]"
                if not isinstance(lv, dict):
                    ctx.err(where, f"expected a mapping, got {lv!r}")
                    continue
                num = lv.get("level")
                if isinstance(num, bool) or not isinstance(num, int) or num < 1:
                    ctx.err(f"{where}.level", f"expected a level number ≥ 1, got {num!r}")
                    continue
                sev = lv.get("severity", severity)
                if sev not in SEVERITIES:
                    ctx.err(f"{where}.severity", f"unknown severity {sev!r}")
                anys = lv.get("any")
                if not isinstance(anys, list) or not anys:
                    ctx.err(f"{where}.any", "expected a non-empty list of clauses")
                    continue
                conds = [c for j, a in enumerate(anys) if (c := _cond(ctx, a, f"{where}.any[{j}]"))]
                v = lv.get("verify", False)
                if not isinstance(v, bool):
                    ctx.err(f"{where}.verify", f"expected true or false, got {v!r}")
                levels.append(Level(num, sev if sev in SEVERITIES else "warning", tuple(conds), bool(v),
                                    _str_map(ctx, lv.get("labels"), f"{where}.labels"),
                                    _str_map(ctx, lv.get("name"), f"{where}.name")))
            nums = [lv.level for lv in levels]
            if len(set(nums)) != len(nums):
                ctx.err("levels", f"level numbers repeat: {nums}")
        cl = raw.get("clear")
        clear_all: list[Cond] = []
        if not isinstance(cl, list) or not cl:
            ctx.err("clear", "a levels rule needs clear: a list of clauses that must all hold to resolve")
        else:
            clear_all = [c for j, a in enumerate(cl) if (c := _cond(ctx, a, f"clear[{j}]"))]
        ind = raw.get("indicator") or (levels[0].any[0].indicator if levels and levels[0].any else None)
        win = raw.get("window") or (levels[0].any[0].window if levels and levels[0].any else None)
        if not feeds and ind:
            f = feed_of_indicator(ind)
            feeds = (f,) if f else ()
        kw.update(indicator=ind, window=win, levels=tuple(sorted(levels, key=lambda lv: lv.level)),
                  clear_all=tuple(clear_all))
        verify = verify or any(lv.verify for lv in levels)

    elif kind == "risk":
        art = params.get("article")
        if art not in RISK_ARTICLES:
            ctx.err("params.article", f"expected 44 (heavy rain) or 46 (flash flood, landslide), got {art!r}")
        if entity != "unit":
            ctx.err("entity", f"a risk level is an area's: entity: unit, got {entity!r}")
        unknown = set(params) - {"article", "manual_message"}
        if unknown:
            ctx.err("params", f"unknown parameter(s) {sorted(unknown)}; a risk rule takes article, manual_message")
        mm = params.get("manual_message")
        if not isinstance(mm, dict) or not all(isinstance(mm.get(k), str) and mm[k] for k in ("vi", "en")):
            ctx.err("params.manual_message", "the text of a level set by hand, in both languages: {vi: ..., en: ...}")
        else:
            _check_templates(ctx, {str(k): str(v) for k, v in mm.items()}, kind, labels, "params.manual_message")
        feeds = ("rain",)

    elif kind == "anomaly":
        kw.update(_anomaly_fields(ctx, raw, params, entity))
        feeds = kw.pop("feeds")

    else:  # detectors
        if not feeds:
            feeds = {"stale": ("rain", "camera"), "flatline": ("rain", "camera"),
                     "implausible": ("rain", "camera")}[kind]
        for key in ("threshold", "minutes", "min_history", "history", "min_scale", "min_delta",
                    "max_reading_mm", "max_rate_mm_h", "max_waiting", "max_counters_open", "min_readings",
                    "min_interval_s"):
            v = params.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                ctx.err(f"params.{key}", f"expected a number ≥ 0, got {v!r}")
        for key in ("after", "min_duration"):
            if key in params:
                try:
                    parse_duration(params[key])
                except ValueError as exc:
                    ctx.err(f"params.{key}", str(exc))

    if len(ctx.errors) > n_errors:
        return None
    return Rule(
        name=name, kind=kind, entity=entity, severity=severity, message=message, source=ctx.source,
        feeds=feeds, for_s=for_s, keep_firing_for_s=keep_s, labels=labels, hazard=hazard, params=dict(params),
        verify=verify, description=str(raw.get("description", "")), cap=cap,
        resolved_message=resolved_message, new=new is True, **kw,
    )


ANOMALY_PARAMS = {"detector", "step", "transform", "threshold", "clear_threshold", "detector_params"}


def _anomaly_fields(ctx: _Ctx, raw: dict, params: dict, entity: Any) -> dict[str, Any]:
    """Validate an anomaly rule's series and parameters (the indicator/window must exist)."""
    from alerts.anomaly import make_detector
    from alerts.anomaly.series import KNOWN_SERIES, TRANSFORMS

    ind, win = raw.get("indicator"), raw.get("window")
    feeds: tuple[str, ...] = ()
    if not isinstance(ind, str) or not isinstance(win, str):
        ctx.err("indicator", "an anomaly rule watches one series: set indicator and window, "
                             "e.g. indicator: queue_waiting, window: now")
    elif (ind, win) not in KNOWN_SERIES:
        wins = sorted(w for i, w in KNOWN_SERIES if i == ind)
        hint = f"; {ind} has windows {', '.join(wins)}" if wins else \
            f"; known indicators: {', '.join(sorted({i for i, _ in KNOWN_SERIES}))}"
        ctx.err("indicator", f"no indicator {ind!r} with window {win!r}{hint}")
    else:
        feed, ekind = KNOWN_SERIES[(ind, win)]
        feeds = (feed,)
        if entity is not None and entity != ekind:
            ctx.err("entity", f"{ind} {win} is per {ekind}, not per {entity!r}")
    unknown = set(params) - ANOMALY_PARAMS
    if unknown:
        ctx.err("params", f"unknown parameter(s) {sorted(unknown)}; allowed: {', '.join(sorted(ANOMALY_PARAMS))}")
    step_s = 3600.0
    try:
        step_s = parse_duration(params.get("step", "1h"))
        if step_s < 60:
            ctx.err("params.step", f"a step of at least 1m, got {params.get('step')!r}")
    except ValueError as exc:
        ctx.err("params.step", str(exc))
    transform = params.get("transform", "value")
    if transform not in TRANSFORMS:
        ctx.err("params.transform", f"expected one of {', '.join(TRANSFORMS)}, got {transform!r}")
    thr, clr = params.get("threshold", 0.5), params.get("clear_threshold", 0.2)
    for key, v in (("threshold", thr), ("clear_threshold", clr)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < v <= 1.0:
            ctx.err(f"params.{key}", f"a score between 0 and 1, got {v!r}")
    if isinstance(thr, (int, float)) and isinstance(clr, (int, float)) and clr > thr:
        ctx.err("params.clear_threshold", f"{clr} is above threshold {thr}: the alert would never clear")
    dp = params.get("detector_params") or {}
    try:
        if not isinstance(dp, dict):
            raise ValueError(f"expected a mapping, got {dp!r}")
        make_detector(str(params.get("detector", "robust")), dict(dp))
    except (TypeError, ValueError) as exc:
        ctx.err("params.detector", str(exc))
    return {"indicator": ind, "window": win, "feeds": feeds}


def parse_rules(text: str, source: str = "<memory>", disabled: set[str] | None = None) -> list[Rule]:
    """Rules of one YAML document; raises RuleError naming the file and rules.  The names of rules
    marked `enabled: false` are added to `disabled` (a rules directory switches built-ins off that way)."""
    ctx = _Ctx(source)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from exc
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{source}: a rule file is a mapping with a `rules:` list")
    extra = set(doc) - {"rules", "version", "description"}
    if extra:
        raise RuleError(f"{source}: unknown top-level field(s) {sorted(extra)}")
    rules = []
    for i, raw in enumerate(doc["rules"]):
        r = _parse_rule(ctx, raw, i)
        if r is not None:
            rules.append(r)
        elif disabled is not None and isinstance(raw, dict) and raw.get("enabled", True) is False:
            disabled.add(str(raw.get("name")))
    if ctx.errors:
        raise RuleError("\n".join(ctx.errors))
    return rules


def _rule_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
        elif p.exists():
            files.append(p)
        else:
            raise RuleError(f"{p}: no such rule file or directory")
    return files


def load_rules(*paths: str | Path) -> RuleSet:
    """Load rule files and/or directories (every *.yaml in name order)."""
    errors: list[str] = []
    rules: list[Rule] = []
    disabled: set[str] = set()
    disabled_in: dict[str, str] = {}
    seen: dict[str, str] = {}
    for f in _rule_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except OSError as exc:
            errors.append(f"{f}: cannot read: {exc}")
            continue
        try:
            parsed = parse_rules(text, str(f), disabled)
        except RuleError as exc:
            errors.append(str(exc))
            continue
        for name in disabled:
            disabled_in.setdefault(name, str(f))
        for r in parsed:
            if r.name in seen:
                errors.append(f"{f}: rule {r.name!r}: defined twice (also in {seen[r.name]})")
                continue
            seen[r.name] = str(f)
            rules.append(r)
    if errors:
        raise RuleError("\n".join(errors))
    _check_set(rules)
    return RuleSet(tuple(rules), frozenset(disabled), disabled_in)


def _check_set(rules: list[Rule]) -> None:
    for kind in ("stale", "flatline", "implausible"):  # anomaly rules: one per series, as many as wanted
        names = [r.name for r in rules if r.kind == kind]
        if len(names) > 1:
            first = next(r for r in rules if r.name == names[1])
            raise RuleError(f"{first.source}: rule {names[1]!r}: only one {kind} detector rule may be enabled "
                            f"(also {names[0]!r})")


def builtin_rules_dir() -> Path:
    return Path(__file__).resolve().parent / "rules"


def builtin_rules() -> RuleSet:
    """The built-in pack shipped in alerts/rules/*.yaml."""
    return load_rules(builtin_rules_dir())


def with_overrides(base: RuleSet, override: RuleSet) -> RuleSet:
    """`base` with rules of the same name replaced by `override`'s, new ones appended, and those
    `override` marks `enabled: false` left out.  An override rule must name a rule of `base` unless it
    is marked `new: true` (and then must not): a typo is an error, not a second rule."""
    _check_names(base, override)
    by_name = {r.name: r for r in override}
    out = [by_name.pop(r.name, r) for r in base if r.name not in override.disabled]
    out.extend(r for r in override if r.name in by_name)
    _check_set(out)
    return RuleSet(tuple(out))


def _check_names(base: RuleSet, override: RuleSet) -> None:
    import difflib

    known = base.names
    errors: list[str] = []

    def unknown(name: str, source: str, fix: str) -> str:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        return f"unknown rule {name!r} in {source}{hint} {fix}"

    for r in override:
        if r.new and r.name in known:
            errors.append(f"{r.source}: rule {r.name!r} is marked `new: true` but a built-in rule has that name: "
                          "rename it, or remove `new: true` to replace the built-in rule")
        elif not r.new and r.name not in known:
            errors.append(unknown(r.name, r.source, "To add a new rule, set `new: true`"))
    for name in sorted(override.disabled - set(known)):
        errors.append(unknown(name, override.disabled_in.get(name, "the rules directory"),
                              "(`enabled: false` switches off a built-in rule by its name)"))
    if errors:
        raise RuleError("\n".join(errors))
