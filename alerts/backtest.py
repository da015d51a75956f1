"""Backtest: run rules over recorded batches and report what would have fired.

    result = backtest(batches, rules=load_rules(DIR), catalog=catalog)
    print(format_backtest(result))

`batches` is an iterable of (events, indicators, watermarks) — exactly what
the runtime passes to AlertEngine.process — e.g. produced by replaying
recorded JSONL through the processors.  No store, no notifier, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ioc.records import Alert, Indicator
from ioc.timeutil import format_ts, parse_ts

from alerts.engine import AlertEngine
from alerts.rules import SEVERITY_RANK, RuleSet, builtin_rules

Batch = tuple[Sequence[Any], Sequence[Indicator], dict[str, float]]


@dataclass
class Episode:
    """One alert from firing to resolution (or still firing at the end of the data)."""

    id: str
    rule: str
    entity: str
    severity: str  # highest reached
    started: str
    ended: str | None = None
    duration_s: float | None = None  # to `ended`, or to the last watermark if still firing
    peak: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    late: bool = False
    incident: str | None = None
    updates: int = 0


@dataclass
class BacktestResult:
    episodes: list[Episode]
    transitions: list[Alert]
    batches: int
    end: str | None  # last watermark

    def by_rule(self) -> dict[str, list[Episode]]:
        out: dict[str, list[Episode]] = {}
        for e in self.episodes:
            out.setdefault(e.rule, []).append(e)
        return out


def backtest(batches: Iterable[Batch], rules: RuleSet | None = None, catalog=None) -> BacktestResult:
    engine = AlertEngine(rules if rules is not None else builtin_rules(), catalog)
    episodes: dict[str, Episode] = {}
    transitions: list[Alert] = []
    n = 0
    for events, indicators, watermarks in batches:
        n += 1
        for a in engine.process(events, indicators, watermarks):
            transitions.append(a)
            ep = episodes.get(a.id)
            if ep is None:
                ep = episodes[a.id] = Episode(a.id, a.rule, a.entity, a.severity, a.started or a.ts,
                                              labels=dict(a.labels), late=a.late, incident=a.incident)
            else:
                ep.updates += a.state != "resolved"
                if SEVERITY_RANK.get(a.severity, 0) > SEVERITY_RANK.get(ep.severity, 0):
                    ep.severity = a.severity
                ep.labels.update(a.labels)
            if a.value is not None and a.state != "resolved":
                ep.peak = a.value if ep.peak is None else max(ep.peak, a.value)
            if a.state == "resolved":
                ep.ended = a.ts
        for a in engine.active():
            ep = episodes.get(a.id)
            if ep is not None and a.value is not None:
                ep.peak = a.value if ep.peak is None else max(ep.peak, a.value)
    wm = max(engine.watermarks.values(), default=None)
    end = format_ts(wm) if wm is not None else None
    for ep in episodes.values():
        stop = ep.ended or end
        if stop is not None:
            ep.duration_s = max(0.0, parse_ts(stop) - parse_ts(ep.started))
    ordered = sorted(episodes.values(), key=lambda e: (parse_ts(e.started), e.rule, e.entity))
    return BacktestResult(ordered, transitions, n, end)


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    return (f"{d}d" if d else "") + (f"{h}h" if h or d else "") + f"{m:02d}m"


def format_backtest(result: BacktestResult) -> str:
    """Human-readable report: one line per episode, then a per-rule summary."""
    lines = [f"{len(result.episodes)} alert(s) over {result.batches} batch(es); data ends at {result.end or '-'}", ""]
    if result.episodes:
        lines.append(f"{'started':25} {'ended':25} {'duration':>9}  {'severity':8} {'rule':22} {'entity':16} peak  labels")
        for e in result.episodes:
            labels = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()) if k in ("level", "data_quality", "feed",
                                                                                        "reason", "direction"))
            peak = "-" if e.peak is None else f"{e.peak:g}"
            ended = e.ended or "(still firing)"
            lines.append(f"{e.started:25} {ended:25} {_dur(e.duration_s):>9}  {e.severity:8} {e.rule:22} "
                         f"{e.entity:16} {peak}{'  ' + labels if labels else ''}{'  late' if e.late else ''}")
        lines.append("")
        lines.append("per rule:")
        for rule, eps in sorted(result.by_rule().items()):
            total = sum(e.duration_s or 0 for e in eps)
            lines.append(f"  {rule:22} {len(eps):4} alert(s), {len({e.entity for e in eps}):4} entit(ies), "
                         f"total {_dur(total)}")
    return "\n".join(lines) + "\n"
