"""One formatter for every alert message people read (wall, console, notifications, CAP).

Rules keep their texts in the rule files (``message: {vi, en}`` when an alert
fires or changes, ``resolved_message: {vi, en}`` when it ends); the engine
renders both through `render_all`, so every rule writes numbers, times,
plurals and names the same way.

API (for rule authors and for the engine)::

    render(template, values, lang) -> str          # one language; raises TemplateError on a bad field
    render_all(templates, values) -> {lang: text}  # each key ("vi", "en") is its own language
    check_template(template, allowed) -> str|None  # load-time check: unknown placeholder or bad spec
    fmt_number(x, lang, spec="") -> str            # 50.4 → "50,4" (vi) / "50.4" (en); 1234 → "1.234" / "1,234"
    fmt_time(t, lang) -> str                       # epoch s, datetime or ISO text → "13:10 28/10" (Asia/Ho_Chi_Minh)

Placeholders are ``{name}`` or ``{name:SPEC}``; what a value renders as
depends on its type:

- a number: ``{value}`` compact (at most 2 decimals, trailing zeros dropped),
  ``{value:.1f}`` fixed decimals, ``{value:d}`` whole; always with the
  language's separators (vi: ``1.234,5``; en: ``1,234.5``).  NaN or a missing
  value renders ``?``.
- a number with words: ``{value:.0f|dossier|dossiers}`` → "1 dossier",
  "2 dossiers"; one word (``{value:.0f|hồ sơ}``) never changes (Vietnamese
  has no plural).
- a time (``datetime``; the engine passes ``ts``, ``started`` and
  ``last_seen`` as such): ``13:10 28/10`` local time, or a strftime SPEC
  (``{ts:%H:%M}``).
- a mapping ``{"vi": ..., "en": ...}``: the text of the language being
  rendered (names that have an English form).
- text: inserted as is, except that words the template already wrote just
  before it are not doubled: "tại trạm {entity_name}" with the name "Trạm đo
  mưa Tam Đảo" renders "tại Trạm đo mưa Tam Đảo", while an id keeps the
  template's word ("tại trạm VP-999").

What the engine passes (alerts/rules.py checks templates against it at
load): every rule ``rule entity entity_name value severity unit ts started``
and its labels; thresholds ``threshold clear_threshold``; levels rules
``level level_name_vi level_name_en matched`` and ``matched_value``,
``matched_hours`` (the value and window of the clause that matched: a level
reached on its 12 h clause shows the 12 h amount); detectors ``minutes
last_seen reading reading_unit readings reason``; anomaly rules their
explanation (alerts/anomaly/explain.py).

Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
import re
import string
from datetime import datetime
from functools import lru_cache
from collections.abc import Iterable, Mapping
from typing import Any

from ioc.timeutil import LOCAL_TZ, local, parse_ts

__all__ = ["TemplateError", "render", "render_all", "check_template", "fmt_number", "fmt_time"]

MISSING = "?"
_FORMATTER = string.Formatter()
_FIXED = re.compile(r"\.(\d)f")
_WORD = re.compile(r"\S+")
_MAX_DOUBLED_WORDS = 4


class TemplateError(ValueError):
    """A template field that cannot be rendered (bad spec or a value of the wrong type)."""


def fmt_number(x: float, lang: str, spec: str = "") -> str:
    """A number for people in `lang`: vi uses a decimal comma and dot thousands, en the reverse."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TemplateError(f"expected a number, got {x!r}")
    if isinstance(x, float) and math.isnan(x):
        return MISSING
    m = _FIXED.fullmatch(spec)
    if m:
        text = f"{x:,.{m.group(1)}f}"
    elif spec == "d":
        text = f"{round(x):,d}"
    elif spec == "":
        text = f"{x:,.2f}".rstrip("0").rstrip(".") if not float(x).is_integer() else f"{int(x):,d}"
    else:
        raise TemplateError(f"unknown number format {spec!r}; use '', '.1f' (any digits) or 'd'")
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # -0.0 → 0.0
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def _as_datetime(t: datetime | float | str) -> datetime:
    if isinstance(t, datetime):
        return t.astimezone(LOCAL_TZ)
    if isinstance(t, str):
        return local(parse_ts(t))
    return local(float(t))


def fmt_time(t: datetime | float | str, lang: str = "vi", spec: str = "") -> str:
    """Local wall time as the wall shows it: '13:10 28/10' (the same in both languages)."""
    return _as_datetime(t).strftime(spec or "%H:%M %d/%m")


def _fmt_words(x: Any, lang: str, spec: str) -> str:
    num_spec, *words = spec.split("|")
    n = fmt_number(x, lang, num_spec)
    words = [w.strip() for w in words]
    if not all(words) or len(words) > 2:
        raise TemplateError(f"expected '|word' or '|singular|plural' after the number format, got {spec!r}")
    if n == MISSING:
        return f"{n} {words[-1]}"
    word = words[0] if len(words) == 1 or float(x) == 1 else words[1]
    return f"{n} {word}"


def _fmt_value(v: Any, lang: str, spec: str) -> str:
    if v is None:
        return MISSING
    if isinstance(v, Mapping):
        v = v.get(lang, v.get("vi", MISSING))
    if isinstance(v, datetime):
        return fmt_time(v, lang, spec)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _fmt_words(v, lang, spec) if "|" in spec else fmt_number(v, lang, spec)
    if spec:
        raise TemplateError(f"format {spec!r} given for the text {v!r}")
    return str(v)


def _undouble(before: str, value: str) -> str:
    """`before` without its trailing words that `value` starts with ("tại trạm " + "Trạm đo…")."""
    tail = before.rstrip()
    if tail == before:
        return before  # no space before the value: not a word of its own
    words, vw = list(_WORD.finditer(tail)), value.split()
    for k in range(min(len(words), len(vw), _MAX_DOUBLED_WORDS), 0, -1):
        if [w.group().casefold() for w in words[-k:]] == [w.casefold() for w in vw[:k]]:
            return tail[: words[-k].start()]
    return before


@lru_cache(maxsize=1024)
def _fields(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """The template parsed once (rule texts are few and rendered on every update)."""
    out = []
    try:
        for literal, name, spec, conv in _FORMATTER.parse(template):
            if conv:
                raise TemplateError(f"conversion !{conv} is not supported in {{{name}!{conv}}}")
            out.append((literal, name, spec or ""))
    except ValueError as exc:
        raise TemplateError(f"bad template: {exc}") from exc
    return tuple(out)


def render(template: str, values: Mapping[str, Any], lang: str) -> str:
    """`template` in `lang` with `values`; a missing value renders '?'."""
    out = ""
    for literal, name, spec in _fields(template):
        out += literal
        if name is None:
            continue
        if not name.isidentifier():
            raise TemplateError(f"placeholder {{{name}}}: use a plain name")
        v = values.get(name)
        text = _fmt_value(v, lang, spec)
        if isinstance(v, (str, Mapping)):
            out = _undouble(out, text)
        out += text
    return out


def render_all(templates: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """Every language of a rule's message; a template that cannot render is shown as written."""
    out = {}
    for lang, text in templates.items():
        try:
            out[lang] = render(text, values, lang)
        except TemplateError:
            out[lang] = text
    return out


def check_template(template: str, allowed: Iterable[str]) -> str | None:
    """What is wrong with `template` (unknown placeholder, bad format), or None."""
    allowed = set(allowed)
    try:
        fields = list(_fields(template))
    except TemplateError as exc:
        return str(exc)
    for _, name, spec in fields:
        if name is None:
            continue
        if name not in allowed:
            return f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(allowed))}"
        try:
            if spec.startswith("%"):
                fmt_time(0.0, "vi", spec)
            elif "|" in spec:
                _fmt_words(1.0, "vi", spec)
            elif spec:
                fmt_number(1.0, "vi", spec)
        except (TemplateError, ValueError) as exc:
            return f"placeholder {{{name}:{spec}}}: {exc}"
    return None
