"""AlertEngine: rules + detectors + lifecycle behind one batch API.

    engine = AlertEngine(rules, catalog, store=None)
    alerts = engine.process(events, indicators, watermarks)

Pure apart from the optional `store` (an adapter object it calls to persist
transitions, acknowledgements, silences and the notification outbox).  No
wall clock: every transition is stamped with event time (the feed's
watermark, which is what Indicator.ts carries), so a replay of the same
batches gives byte-identical alerts.  Operator actions (acknowledge, comment,
assign, silence) carry the acting principal's name and a wall-clock time that
the caller passes in.

Thread safety: public methods take one lock, so an API thread may call
acknowledge() while the pipeline thread calls process().
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from typing import Any, Iterable, Sequence

import msgspec

from ioc.catalog import Catalog
from ioc.events import CameraEvent, RainEvent
from ioc.records import Alert, Indicator
from ioc.timeutil import format_ts, local, parse_ts

from alerts.conditions import FIRE, FIRING, INACTIVE, RESOLVE, CondState, step
from alerts.anomaly import detector_from_state, make_detector
from alerts.anomaly.explain import explain
from alerts.anomaly.series import StepSampler
from alerts.detectors import (
    REASON_TEXT,
    SensorTrack,
    StaleTracker,
    implausible_camera,
    RainLimits,
)
from alerts.messages import render_all
from alerts.lifecycle import Commit, Key, Lifecycle, NotActive, NotFound, Silence, ThreadFull, check_silence_time
from alerts.rules import OPS, Rule, RuleSet, parse_duration, window_seconds
from alerts.risk.areas import AreaLevel, AreaRisk
from alerts.risk.tables import default_tables
from alerts import test_alert

__all__ = ["AlertEngine", "NotFound", "NotActive", "Silence", "ThreadFull"]

_SEP = "\x1f"
_READING_UNIT = {"rain": " mm", "camera": {"vi": " người", "en": " people"}}  # after {reading} in messages
_HANDLING = {"rain": {"vi": "; số đo này không được cộng vào tổng lượng mưa",  # quarantined (streams/rain.py)
                      "en": "; it is kept out of the rain totals"}}
_LOCAL = 7 * 3600


def _rain_day(t: float) -> int:
    """Start (epoch s) of the hydro-met rain day (19:00–19:00 local) containing t."""
    return int((t + _LOCAL - 19 * 3600) // 86400) * 86400 + 19 * 3600 - _LOCAL


def _num(v: Any) -> float | None:
    tp = type(v)
    if tp is float:
        return None if v != v else v  # v != v: NaN
    if tp is int:
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _render(templates: dict[str, str], ctx: dict[str, Any]) -> dict[str, str]:
    return render_all(templates, ctx)  # alerts/messages.py: one formatter for every message


def _may_fire_conds(rule: Rule) -> list[tuple[str, str, Any, float]]:
    """(indicator, window, op, value) such that a levels rule can reach level >= 1 only if one holds.

    Per input, of the ``>``/``>=`` clauses only the lowest is kept (if it does
    not hold, no higher one does); other operators are kept as they are.  Lets
    the engine skip inactive (rule, entity) pairs whose values are far below
    every level without running the full level evaluation.
    """
    lowest: dict[tuple[str, str], tuple[float, int, str]] = {}
    out: list[tuple[str, str, Any, float]] = []
    for lv in rule.levels:
        for c in lv.any:
            if c.op in (">", ">="):
                cand = (c.value, 0 if c.op == ">=" else 1, c.op)
                cur = lowest.get((c.indicator, c.window))
                if cur is None or cand < cur:
                    lowest[(c.indicator, c.window)] = cand
            else:
                out.append((c.indicator, c.window, OPS[c.op], c.value))
    for (ind, win), (value, _, op) in lowest.items():
        out.append((ind, win, OPS[op], value))
    return out


class AlertEngine:
    def __init__(self, rules: RuleSet | Iterable[Rule], catalog: Catalog | None = None, store: Any = None, *,
                 incident_window_s: float = 6 * 3600) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.catalog = catalog
        self.store = store
        self._lock = threading.RLock()
        self._lc = Lifecycle(incident_window_s)
        self._by_name = {r.name: r for r in self.rules}
        self._named: dict[str, tuple[Rule, ...]] = {}
        for r in self.rules:
            self._named[r.name] = (*self._named.get(r.name, ()), r)
        self._by_input: dict[tuple[str, str], list[Rule]] = {}
        self._day_inputs: set[tuple[str, str]] = set()
        for r in self.rules:
            if r.kind in ("threshold", "levels", "risk"):
                for inp in r.inputs():
                    self._by_input.setdefault(inp, []).append(r)
                for lv in r.levels:
                    self._day_inputs.update((c.indicator, c.window) for c in lv.any if c.days)
        self._may_fire = {r: _may_fire_conds(r) for r in self.rules if r.kind == "levels"}
        kinds = {r.kind: r for r in self.rules}
        self._stale_rule = kinds.get("stale")
        self._flat_rule = kinds.get("flatline")
        self._bad_rule = kinds.get("implausible")
        self._anom_rules = tuple(r for r in self.rules if r.kind == "anomaly")
        self._risk_rules = tuple(r for r in self.rules if r.kind == "risk")  # Decision 18 levels per area
        for r in self._anom_rules:  # their series' latest values are recorded like any rule input
            self._by_input.setdefault((r.indicator, r.window), []).append(r)
        fp = self._flat_rule.params if self._flat_rule else {}
        self._flat_cfg = (int(fp.get("min_readings", 6)), parse_duration(fp.get("min_duration", "1h")),
                          tuple(float(x) for x in fp.get("ignore", [0])))
        self._notifications: list[dict] = []
        self.defer_commits = False
        self._deferred = Commit()
        self._ts_cache: dict[str, float] = {}
        self._ticking: dict[tuple[str, str], None] = {}
        self._reset_core()
        if store is not None:
            self._restore_from_store()

    def _reset_core(self) -> None:
        self._wm: dict[str, float] = {}
        self._latest: dict[tuple[str, str, str], Any] = {}
        self._conds: dict[tuple[str, str], CondState] = {}
        self._ticking = {}
        self._days: dict[tuple[str, str, str], dict[int, float]] = {}
        sr = self._stale_rule
        stale_s = float(sr.params.get("minutes", 30)) * 60 if sr else 1800.0
        self._stale: dict[str, StaleTracker] = {f: StaleTracker(stale_s) for f in (sr.feeds if sr else ())}
        self._seeded: set[str] = set()
        self._tracks: dict[str, dict[str, SensorTrack]] = {"rain": {}, "camera": {}}
        self._bad_active: dict[str, set[str]] = {"rain": set(), "camera": set()}
        # anomaly rules: (rule, entity) → [sampler, detector]; entities seen per rule, in first-seen order
        self._anom: dict[tuple[str, str], list] = {}
        self._anom_ents: dict[str, dict[str, None]] = {r.name: {} for r in self._anom_rules}
        self._risk = AreaRisk(default_tables(), self.catalog) if self._risk_rules and self.catalog else None
        # operator levels (Decision 18 Art. 4): (rule, area) → {mode: set|raise, level|by, by_name, reason, at}
        self._risk_manual: dict[tuple[str, str], dict[str, Any]] = {}

    # ================================================================ batch API
    def process(self, events: Sequence[Any], indicators: Sequence[Indicator],
                watermarks: dict[str, float | None], *, quarantined: Sequence[Any] = ()) -> list[Alert]:
        """Evaluate one batch; returns an Alert record for every transition that matters."""
        with self._lock:
            prev = dict(self._wm)
            for feed, w in watermarks.items():
                if w is not None and w > self._wm.get(feed, -math.inf):
                    self._wm[feed] = float(w)
            out: list[Alert] = []
            if events:
                self._consume_events(events, prev, out)
            if quarantined:
                self._consume_quarantined(quarantined, out)
            dirty: dict[tuple[Rule, str], list] = {}
            if indicators:
                self._consume_indicators(indicators, dirty)
            self._evaluate_dirty(dirty, out)
            self._tick(dirty, out)
            self._detect_at_watermarks(out)
            self._lc.release_muted(self._wm)
            self._persist()
            return out

    # ---------------------------------------------------------------- indicators & rules
    def _ts(self, text: str) -> float:
        t = self._ts_cache.get(text)
        if t is None:
            if len(self._ts_cache) > 4096:
                self._ts_cache.clear()
            t = self._ts_cache[text] = parse_ts(text)
        return t

    def _consume_indicators(self, indicators: Sequence[Indicator], dirty: dict) -> None:
        """Record the latest value of every rule input and mark (rule, entity) dirty.

        Most records (e.g. rain 1h/6h/72h, rates) feed no rule and cost little
        more than the loop step.  Records of one processor share their ts, so
        the parse of ts (and its rain day) is memoised on the last string seen.
        """
        by_input_get = self._by_input.get
        latest = self._latest
        day_inputs = self._day_inputs
        dirty_get = dirty.get
        all_days = self._days
        last_ts: str | None = None
        t = 0.0
        rain_day = 0
        # processors emit runs of records with the same (name, window): look
        # the rules up once per run (an identity check on the strings)
        pname = pwin = None
        rules: list[Rule] | None = None
        is_day = False
        for ind in indicators:
            name, window = ind.name, ind.window
            if name is not pname or window is not pwin:
                pname, pwin = name, window
                rules = by_input_get((name, window))
                is_day = (name, window) in day_inputs
            if not rules:
                continue
            ts = ind.ts
            if ts != last_ts:
                t = self._ts(ts)
                rain_day = _rain_day(t)
                last_ts = ts
            ent = ind.entity
            value = ind.value
            latest[(name, window, ent)] = value
            if is_day:
                v = _num(value)
                if v is not None:
                    dkey = (name, window, ent)
                    days = all_days.get(dkey)
                    if days is None:
                        days = all_days[dkey] = {}
                    if v > days.get(rain_day, -math.inf):
                        days[rain_day] = v
                    if len(days) > 10:
                        del days[min(days)]
            late = ind.late
            for r in rules:
                k = (r, ent)
                cur = dirty_get(k)
                if cur is None:
                    dirty[k] = [t, late]
                else:
                    if t > cur[0]:
                        cur[0] = t
                    cur[1] = cur[1] or late
        return None

    def _evaluate_dirty(self, dirty: dict, out: list[Alert]) -> None:
        """self._evaluate for every dirty (rule, entity), in order.

        Most pairs are inactive (no condition state, no active alert) with a
        value below every firing point: for them evaluation changes nothing,
        so they are recognised here without the call (the same tests as the
        early returns of _eval_threshold and _eval_levels).
        """
        conds, active, latest = self._conds, self._lc.active, self._latest
        may_fire = self._may_fire
        eval_levels, eval_threshold = self._eval_levels, self._eval_threshold
        risk_seen: dict[str, float] = {}
        for (rule, entity), (t, late) in dirty.items():
            name = rule.name
            if rule.kind == "risk":
                if t > risk_seen.get(entity, -math.inf):
                    risk_seen[entity] = t
                continue
            if rule.kind == "anomaly":
                self._anom_ents[name][entity] = None  # sampled at step boundaries (_detect_anomalies)
                continue
            if rule.kind == "levels":
                if (name, entity) not in conds and (name, entity, "") not in active:
                    for ind, win, op, value in may_fire[rule]:
                        v = _num(latest.get((ind, win, entity)))
                        if v is not None and op(v, value):
                            break
                    else:
                        continue
                eval_levels(rule, entity, t, late, out)
            else:
                if rule.per is None and (name, entity) not in conds and (name, entity, "") not in active:
                    v = _num(latest.get((rule.indicator, rule.window, entity)))
                    if v is None or not rule.fires(v):
                        continue
                eval_threshold(rule, entity, t, late, out)
        if risk_seen and self._risk is not None:
            self._eval_risk(risk_seen, out)

    def _tick(self, dirty: dict, out: list[Alert]) -> None:
        """Advance pending/clearing conditions to their feed's watermark (constant values are not re-emitted)."""
        if not self._ticking:
            return
        named = self._named
        for key in list(self._ticking):
            if any((r, key[1]) in dirty for r in named.get(key[0], ())):
                continue  # evaluated with this batch's values already
            rule = self._by_name.get(key[0])
            if rule is None or rule.kind == "anomaly":  # anomaly rules step at their own sample times
                self._ticking.pop(key, None)
                continue
            t = self._wm.get(rule.feeds[0]) if rule.feeds else None
            if t is not None:
                self._evaluate(rule, key[1], t, False, out)

    def _value(self, rule: Rule, entity: str) -> float | None:
        v = _num(self._latest.get((rule.indicator, rule.window, entity)))
        if v is None or rule.per is None:
            return v
        d = _num(self._latest.get((rule.per[0], rule.per[1], entity)))
        if d is None:
            return None
        return v / max(d, 1.0)  # no counter open: count the queue as if one were

    def _cond(self, rule: Rule, entity: str) -> CondState:
        key = (rule.name, entity)
        st = self._conds.get(key)
        if st is None:
            st = self._conds[key] = CondState()
            a = self._lc.active.get((rule.name, entity, ""))
            if a is not None:  # restored from a store without a checkpoint: it is firing
                st.phase, st.level = FIRING, int(a.labels.get("level", "0") or 0)
        return st

    def _evaluate(self, rule: Rule, entity: str, t: float, late: bool, out: list[Alert]) -> None:
        if rule.kind == "risk":
            return  # evaluated per area by _eval_risk
        if rule.kind == "levels":
            self._eval_levels(rule, entity, t, late, out)
        else:
            self._eval_threshold(rule, entity, t, late, out)

    def _after_step(self, rule: Rule, entity: str, st: CondState) -> None:
        key = (rule.name, entity)
        if st.ticking:
            self._ticking[key] = None
        else:
            self._ticking.pop(key, None)
            if st.phase == INACTIVE:
                self._conds.pop(key, None)

    def _eval_threshold(self, rule: Rule, entity: str, t: float, late: bool, out: list[Alert]) -> None:
        v = self._value(rule, entity)
        if v is None:
            return  # no data is not zero: neither fire nor clear
        if ((rule.name, entity) not in self._conds and not rule.fires(v)
                and (rule.name, entity, "") not in self._lc.active):
            return  # inactive and not firing: step() would change nothing
        st = self._cond(rule, entity)
        prev = st.value if st.phase == FIRING else None
        ev = step(st, t, rule.fires(v), rule.clears(v), rule.for_s, rule.keep_firing_for_s, late)
        st.value = v
        if ev is None and st.phase == FIRING and prev == v:
            self._after_step(rule, entity, st)
            return  # firing, same value: nothing to update
        key: Key = (rule.name, entity, "")
        if ev == RESOLVE:
            self._emit(out, self._resolve(rule, key, entity, t, round(v, 3), late=late, extra=self._threshold_extra(rule)))
        elif ev == FIRE or st.phase == FIRING:
            extra = self._threshold_extra(rule)
            labels = self._labels(rule, entity, "station" if rule.entity == "station" else rule.entity, t)
            self._fire(rule, (rule.name, entity, ""), entity, t, v, rule.severity, labels, extra,
                       late=(st.late or late) if ev == FIRE else late, out=out)
        self._after_step(rule, entity, st)

    @staticmethod
    def _threshold_extra(rule: Rule) -> dict[str, Any]:
        return {"threshold": rule.threshold, "clear_threshold": rule.clear_threshold,
                "indicator": rule.indicator, "window": rule.window, "per": f"{rule.per[0]}" if rule.per else ""}

    def _days_hold(self, c, entity: str, t: float) -> bool:
        days = self._days.get((c.indicator, c.window, entity))
        if not days:
            return False
        d, n = _rain_day(t), 0
        while n < c.days:
            v = days.get(d)
            if v is None or not c.holds(v):
                return False
            n += 1
            d -= 86400
        return True

    def _eval_levels(self, rule: Rule, entity: str, t: float, late: bool, out: list[Alert]) -> None:
        if (rule.name, entity) not in self._conds and (rule.name, entity, "") not in self._lc.active:
            latest = self._latest
            for ind, win, op, value in self._may_fire[rule]:
                v = _num(latest.get((ind, win, entity)))
                if v is not None and op(v, value):
                    break
            else:
                return  # inactive and no level can hold: step() would change nothing
        level, matched, seen = 0, "", False
        matched_value, matched_hours = None, None  # the clause that matched, for the message
        chosen = None
        for lv in rule.levels:
            for c in lv.any:
                v = _num(self._latest.get((c.indicator, c.window, entity)))
                if v is None:
                    continue
                seen = True
                if c.holds(v) and (c.days == 0 or self._days_hold(c, entity, t)):
                    level, matched, chosen = lv.level, c.describe(), lv
                    matched_value, matched_hours = v, window_seconds(c.window) / 3600.0
                    break
        if not seen:
            return
        clear = True
        for c in rule.clear_all:
            v = _num(self._latest.get((c.indicator, c.window, entity)))
            if v is not None and not c.holds(v):
                clear = False
        st = self._cond(rule, entity)
        ev = step(st, t, level >= 1, clear and level == 0, rule.for_s, rule.keep_firing_for_s, late)
        v = _num(self._latest.get((rule.indicator, rule.window, entity)))
        key: Key = (rule.name, entity, "")
        if ev == RESOLVE:
            self._emit(out, self._resolve(rule, key, entity, t, None if v is None else round(v, 3), late=late))
        elif ev == FIRE or st.phase == FIRING:
            if level >= 1:
                st.level = level
            lv = chosen if (chosen is not None and level == st.level) else next(
                (x for x in rule.levels if x.level == st.level), rule.levels[0])
            labels = self._labels(rule, entity, "station", t)
            labels.update(lv.labels)
            labels["level"] = str(lv.level)
            labels["verify"] = "true" if lv.verify else "false"
            extra = {"level": lv.level, "level_name_vi": lv.name.get("vi", ""), "level_name_en": lv.name.get("en", ""),
                     "indicator": rule.indicator, "window": rule.window, "matched": matched or "-",
                     "matched_value": v if matched_value is None else matched_value,
                     "matched_hours": window_seconds(rule.window) / 3600.0 if matched_hours is None else matched_hours}
            self._fire(rule, key, entity, t, v, lv.severity, labels, extra,
                       late=(st.late or late) if ev == FIRE else late, level=lv.level, out=out)
        self._after_step(rule, entity, st)

    # ---------------------------------------------------------------- Decision 18 levels per area
    def _eval_risk(self, seen: dict[str, float], out: list[Alert]) -> None:
        """Feed the gauges' new sums to AreaRisk, then step every area that has a level, an alert or a
        condition of a risk rule (alerts/risk/areas.py).  Event time: the rain watermark."""
        risk, latest = self._risk, self._latest
        for sid, t_s in seen.items():
            risk.observe(sid, t_s, _num(latest.get(("rain_mm", "24h", sid))), _num(latest.get(("rain_mm", "12h", sid))),
                         _num(latest.get(("rain_day_mm", "rain_day", sid))))
        t = self._wm.get("rain", max(seen.values()))
        hot = risk.hot_areas()
        for rule in self._risk_rules:
            levels = risk.evaluate44(t) if rule.params.get("article") == 44 else risk.evaluate46(t)
            areas = set(levels) | {k[1] for k in self._conds if k[0] == rule.name}
            areas |= {k[1] for k in self._lc.active if k[0] == rule.name}
            areas |= {a for r, a in self._risk_manual if r == rule.name}
            for area in sorted(areas):
                self._step_risk(rule, area, levels.get(area), area not in hot, t, out)

    def _manual(self, rule: Rule, area: str, lv: AreaLevel | None) -> AreaLevel | None:
        """The observed level with the operator's on top: `set` is at least that level, `raise` adds 1 or 2
        to an observed level (Art. 4: compound hazards), up to 5."""
        ov = self._risk_manual.get((rule.name, area))
        if ov is None:
            return lv
        base = lv.level if lv is not None else 0
        eff = max(base, ov["level"]) if ov["mode"] == "set" else (min(5, base + ov["by"]) if base else 0)
        if eff <= base:
            return lv
        clause = {"vi": "Điều 4 khoản 4", "en": "Art. 4(4)"} if ov["mode"] == "raise" else {"vi": "Điều 4", "en": "Art. 4"}
        u = self.catalog.units.get(area) if self.catalog else None
        if lv is None:
            return AreaLevel(area, u.level if u else "commune", eff, clause, "", math.nan, 24, 0, 0.0, "", "")
        return dataclasses.replace(lv, level=eff, clause=clause)

    # ---------------------------------------------------------------- operator levels
    def check_risk_level(self, unit: str, rule: str, level: Any, raise_by: Any, reason: Any) -> Rule:
        """The risk rule a set_risk_level() would change; NotFound (unknown area) or ValueError (why not)."""
        r = self._by_name.get(rule)
        if r is None or r.kind != "risk" or self._risk is None:
            raise ValueError(f"rule: {str(rule)[:60]!r} is not a Decision 18 risk rule of this server")
        u = self.catalog.units.get(unit)
        if u is None or u.level not in ("province", "district", "commune") or (
                u.level == "province" and u.parent is not None):
            raise NotFound(f"no commune, district or province {unit[:60]!r} in the catalog")
        if r.params.get("article") == 46 and u.level != "commune":
            raise ValueError("an Art. 46 (flash flood, landslide) level is a commune's")
        if (level is None) == (raise_by is None):
            raise ValueError("give either level (1–5, 0 to remove the operator's level) or raise_by (1 or 2)")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 5):
            raise ValueError(f"level: expected a whole number 0–5, got {str(level)[:20]}")
        if raise_by is not None and (isinstance(raise_by, bool) or raise_by not in (1, 2)):
            raise ValueError(f"raise_by: Art. 4 allows raising a level by 1 or 2, got {str(raise_by)[:20]}")
        if level != 0 and (not isinstance(reason, str) or not reason.strip()):
            raise ValueError("reason: say why (e.g. the bulletin, or the compound hazard), up to 500 characters")
        if isinstance(reason, str) and len(reason) > 500:
            raise ValueError("reason: at most 500 characters")
        return r

    def set_risk_level(self, unit: str, *, rule: str = "rain_risk_level", level: int | None = None,
                       raise_by: int | None = None, reason: str = "", by: str, at: float) -> list[Alert]:
        """An operator sets (level N: at least N) or raises (raise_by 1–2, Art. 4) an area's level, or removes
        theirs (level 0).  Applied at the rain watermark (event time); `at` (wall clock) is recorded."""
        with self._lock:
            r = self.check_risk_level(unit, rule, level, raise_by, reason)
            key = (r.name, unit)
            if level == 0:
                self._risk_manual.pop(key, None)
            else:
                self._risk_manual[key] = {"mode": "set" if raise_by is None else "raise", "level": level or 0,
                                          "by": raise_by or 0, "by_name": by, "reason": reason.strip(),
                                          "at": format_ts(at)}
            t = self._wm.get("rain", at)
            out: list[Alert] = []
            risk = self._risk
            levels = risk.evaluate44(t) if r.params.get("article") == 44 else risk.evaluate46(t)
            self._step_risk(r, unit, levels.get(unit), unit not in risk.hot_areas(), t, out)
            self._persist()
            return out

    def risk_manual(self) -> list[dict[str, Any]]:
        """The operators' levels in force, for the API."""
        with self._lock:
            return [{"rule": r, "unit": a, **ov} for (r, a), ov in sorted(self._risk_manual.items())]

    def _step_risk(self, rule: Rule, area: str, lv: AreaLevel | None, clear: bool, t: float,
                   out: list[Alert]) -> None:
        observed = lv
        lv = self._manual(rule, area, lv)
        ov = self._risk_manual.get((rule.name, area)) if lv is not observed else None
        st = self._cond(rule, area)
        level = lv.level if lv is not None else 0
        ev = step(st, t, level >= 1, clear and level == 0, rule.for_s, rule.keep_firing_for_s, False)
        key: Key = (rule.name, area, "")
        if ev == RESOLVE:
            self._emit(out, self._resolve(rule, key, area, t, keep_value=True))
        elif lv is not None and (ev == FIRE or st.phase == FIRING):
            st.level = lv.level
            tables = self._risk.tables
            info = tables.levels[lv.level]
            labels = dict(rule.labels)
            # labels are what the level rests on (a change is an update in the audit and CAP); the deciding
            # gauge, its amount and the extent move with every reading, so they are in the message only
            labels.update(unit=area, area_level=lv.area_level, level=str(lv.level), color=str(info["color"]),
                          clause=lv.clause["vi"], band=lv.band, days=str(lv.days), basis="observed")
            if ov is not None:  # shown on the wall and in CAP: whose level this is and why
                labels.update(basis="manual", set_by=ov["by_name"], reason=ov["reason"])
                if observed is not None:
                    labels["observed_level"] = str(observed.level)
            if lv.extent_fallback:
                labels["extent_fallback"] = "true"
            if rule.params.get("article") == 46:
                labels.update(susceptibility=lv.susceptibility, group=lv.group)
            s = self.catalog.stations.get(lv.station) if self.catalog else None
            extra = {"level": lv.level, "level_name": dict(info["name"]), "clause": dict(lv.clause),
                     "band": lv.band, "amount": lv.amount_mm, "hours": lv.amount_hours, "days": lv.days,
                     "extent_pct": round(lv.extent_share * 100), "station_name": s.name if s else lv.station,
                     "basis": labels["basis"], "susceptibility": lv.susceptibility, "group": lv.group,
                     "set_by": ov["by_name"] if ov else "", "reason": ov["reason"] if ov else ""}
            self._fire(rule, key, area, t, None if math.isnan(lv.amount_mm) else lv.amount_mm,
                       str(info["severity"]), labels, extra, late=False, out=out, level=lv.level, feed="rain",
                       message=rule.params["manual_message"] if ov else None)
        self._after_step(rule, area, st)

    # ---------------------------------------------------------------- catalog context
    def _entity_info(self, kind: str, entity: str) -> tuple[str, str | None, dict[str, str]]:
        """(display name, unit id, extra labels) of an entity from the catalog."""
        cat = self.catalog
        if cat is None:
            return entity, (entity if kind == "unit" else None), {}
        if kind == "station":
            s = cat.stations.get(entity)
            if s is not None:
                return s.name, s.commune or s.district, {}
        elif kind == "unit":
            u = cat.units.get(entity)
            return (u.name if u else entity), entity, {}
        elif kind == "site":
            s = cat.sites.get(entity)
            if s is not None:
                return s.name, s.unit, {}
        elif kind == "camera":
            site_id = cat.camera_site.get(entity)
            s = cat.sites.get(site_id) if site_id else None
            if s is not None:
                return f"{entity} ({s.name})", s.unit, {"site": s.id}
        return entity, None, {"unknown": "true"}

    def _labels(self, rule: Rule, entity: str, kind: str, t: float) -> dict[str, str]:
        labels = dict(rule.labels)
        _, unit, extra = self._entity_info(kind, entity)
        labels.update(extra)
        if unit:
            labels["unit"] = unit
        # no data_quality=suspect label any more: an implausible rain reading is quarantined by the rain
        # processor, out of every sum, so no rain alert can rest on one (docs/architecture.md §4)
        return labels

    def _fire(self, rule: Rule, key: Key, entity: str, t: float, value: float | None, severity: str,
              labels: dict[str, str], extra: dict[str, Any], *, late: bool, out: list[Alert], level: int = 0,
              feed: str | None = None, message: dict[str, str] | None = None) -> None:
        ts = format_ts(t)
        rv = None if value is None else round(float(value), 3) + 0.0
        cur = self._lc.active.get(key)
        ctx, unit = self._msg_values(rule, entity, t, rv, severity, labels, extra, feed, cur)
        msg = _render(message or rule.message, ctx)
        a = self._lc.fire(key, ts=ts, t=t, value=rv, severity=severity, labels=labels, message=msg, late=late,
                          feed=feed or (rule.feeds[0] if rule.feeds else ""), hazard=rule.hazard, level=level)
        if a is None and cur is not None:
            self._lc.active[key] = self._with_message(key, msg)
        self._emit(out, a)

    def _msg_values(self, rule: Rule, entity: str, t: float, value: float | None, severity: str,
                    labels: dict[str, str], extra: dict[str, Any], feed: str | None,
                    cur: Alert | None) -> tuple[dict[str, Any], str | None]:
        """Typed values a rule's message templates read (alerts/messages.py formats them per language)."""
        kind = {"threshold": rule.entity, "levels": "station"}.get(rule.kind, rule.entity)
        if "/" in kind or kind not in ("station", "unit", "site", "camera"):
            kind = {"rain": "station", "camera": "camera", "dossier": "unit"}.get(feed or "", "unit")
        name, unit, _ = self._entity_info(kind, entity)
        u = self.catalog.units.get(entity) if kind == "unit" and self.catalog is not None else None
        shown: Any = {"vi": name, "en": u.name_en} if u is not None and u.name_en else name
        now = local(t)
        ctx = {"rule": rule.name, "entity": entity, "entity_name": shown,
               "value": math.nan if value is None else value, "severity": severity, "unit": unit or "",
               **labels, **extra, "ts": now, "started": local(parse_ts(cur.started)) if cur else now}
        ctx.setdefault("reading_unit", _READING_UNIT.get(feed or "", ""))
        if isinstance(ctx.get("last_seen"), str):
            ctx["last_seen"] = local(parse_ts(ctx["last_seen"]))
        return ctx, unit

    def _resolve(self, rule: Rule, key: Key, entity: str, t: float, value: float | None = None, *,
                 late: bool = False, keep_value: bool = False, extra: dict[str, Any] | None = None,
                 feed: str | None = None) -> Alert | None:
        """End the alert; its text becomes the rule's resolved_message (what ended), when it has one."""
        cur = self._lc.active.get(key)
        if cur is None:
            return None
        msg = None
        if rule.resolved_message:
            shown = cur.value if keep_value else (None if value is None else round(float(value), 3) + 0.0)
            ctx, _ = self._msg_values(rule, entity, t, shown, cur.severity, dict(cur.labels), extra or {},
                                      feed or cur.labels.get("feed"), cur)
            msg = _render(rule.resolved_message, ctx)
        return self._lc.resolve(key, ts=format_ts(t), t=t, value=value, late=late, keep_value=keep_value,
                                message=msg)

    def _with_message(self, key: Key, msg: dict[str, str]) -> Alert:
        a = self._lc.active[key]
        return a if a.message == msg else msgspec.structs.replace(a, message=msg)

    @staticmethod
    def _emit(out: list[Alert], a: Alert | None) -> None:
        if a is not None:
            out.append(a)

    # ---------------------------------------------------------------- detectors
    def _consume_events(self, events: Sequence[Any], prev: dict[str, float], out: list[Alert]) -> None:
        stale = self._stale
        rain_stale, cam_stale = stale.get("rain"), stale.get("camera")
        flat, bad = self._flat_rule, self._bad_rule
        tracks_r, tracks_c = self._tracks["rain"], self._tracks["camera"]
        bp = bad.params if bad else {}
        max_wait = float(bp.get("max_waiting", 500.0))
        max_ctr = bp.get("max_counters_open")
        want_r_track = bool(flat and "rain" in flat.feeds) or bool(bad and "rain" in bad.feeds)
        want_c_track = bool(flat and "camera" in flat.feeds) or bool(bad and "camera" in bad.feeds)
        recovered: list[tuple[str, str, float]] = []
        touched: dict[tuple[str, str], None] = {}  # flatline to re-check
        new_bad: dict[tuple[str, str], None] = {}  # a new implausible reading arrived
        wm_c = prev.get("camera", -math.inf)
        cat = self.catalog
        tracks_r_get = tracks_r.get
        rain_seen = rain_stale.seen if rain_stale is not None else None
        # implausible rain readings are found by the rain processor (quarantine, RainLimits) and
        # reach the engine as `quarantined` (_consume_quarantined), never from the events here
        for e in events:
            tp = type(e)
            if tp is RainEvent:
                ent, t = e.station, e.t
                if want_r_track:
                    tr = tracks_r_get(ent)
                    if tr is None:
                        tr = tracks_r[ent] = SensorTrack()
                    mm = e.rain_mm
                    lt = tr.last_t
                    if lt is None or t > lt:
                        tr.last_t = t
                    if flat is not None:
                        # SensorTrack.see_flat, inlined (the hottest per-reading call)
                        n = tr.flat_n
                        if n and t <= tr.flat_last_t:
                            pass
                        elif n and mm == tr.flat_value:
                            tr.flat_n = n + 1
                            tr.flat_last_t = t
                        else:
                            tr.flat_value, tr.flat_first_t, tr.flat_last_t, tr.flat_n = mm, t, t, 1
                        touched[("rain", ent)] = None
                if rain_seen is not None and rain_seen(ent, t):
                    recovered.append(("rain", ent, t))
            elif tp is CameraEvent:
                ent, t = e.camera, e.t
                if want_c_track:
                    tr = tracks_c.get(ent)
                    if tr is None:
                        tr = tracks_c[ent] = SensorTrack()
                    waiting = e.waiting
                    if bad is not None:
                        mc = max_ctr
                        if cat is not None:
                            site = cat.sites.get(e.site)
                            if site is not None:
                                mc = site.counters
                        # the tests of implausible_camera(), so most readings skip the call
                        if waiting > max_wait or (mc is not None and e.counters_open > mc):
                            why = implausible_camera(waiting, e.counters_open, max_wait, mc)
                            if why is not None and (tr.bad_t is None or t >= tr.bad_t):
                                tr.bad_t, tr.bad_reason, tr.bad_reading, tr.bad_late = t, why, waiting, t < wm_c
                                new_bad[("camera", ent)] = None
                    lt = tr.last_t
                    if lt is None or t > lt:
                        tr.last_t = t
                    if flat is not None:
                        # SensorTrack.see_flat, inlined
                        n = tr.flat_n
                        if n and t <= tr.flat_last_t:
                            pass
                        elif n and waiting == tr.flat_value:
                            tr.flat_n = n + 1
                            tr.flat_last_t = t
                        else:
                            tr.flat_value, tr.flat_first_t, tr.flat_last_t, tr.flat_n = waiting, t, t, 1
                        touched[("camera", ent)] = None
                if cam_stale is not None and cam_stale.seen(ent, t):
                    recovered.append(("camera", ent, t))
        sr = self._stale_rule
        for feed, ent, t_ev in recovered:
            t = self._wm.get(feed, t_ev)
            self._emit(out, self._resolve(sr, (sr.name, ent, feed), ent, t, keep_value=True, feed=feed))
        if touched:
            min_n, min_dur, ignore = self._flat_cfg
            active = self._lc.active
            for feed, ent in touched:
                tr = self._tracks[feed][ent]
                if feed in flat.feeds:
                    if not (tr.flat_n >= min_n and tr.flat_value not in ignore
                            and tr.flat_last_t - tr.flat_first_t >= min_dur) and (flat.name, ent, feed) not in active:
                        continue  # not flat and no flatline alert to resolve (the common case)
                    self._check_flat(flat, feed, ent, tr, self._wm.get(feed, tr.last_t), out)
        for feed, ent in new_bad:
            tr = self._tracks[feed][ent]
            if feed in bad.feeds:
                self._fire_bad(bad, feed, ent, tr, self._wm.get(feed, tr.last_t), out)

    def rain_limits(self) -> RainLimits:
        """The rain processor's quarantine limits: the rain `implausible` rule's params (else the defaults)."""
        bad = self._bad_rule
        return RainLimits.from_params(bad.params) if bad is not None and "rain" in bad.feeds else RainLimits()

    def _consume_quarantined(self, quarantined: Sequence[Any], out: list[Alert]) -> None:
        """Raise (or refresh) the data-quality alert of each station with a quarantined reading."""
        bad = self._bad_rule
        new_bad: dict[tuple[str, str], None] = {}
        for q in quarantined:
            if bad is None or q.feed not in bad.feeds:
                continue
            tr = self._tracks[q.feed].setdefault(q.entity, SensorTrack())
            if tr.bad_t is None or q.t >= tr.bad_t:
                tr.bad_t, tr.bad_reason, tr.bad_reading, tr.bad_late = q.t, q.reason, q.value, q.late
                new_bad[(q.feed, q.entity)] = None
        for feed, ent in new_bad:
            tr = self._tracks[feed][ent]
            # at the reading's own time (the same whatever the batch size); a late one at the watermark
            t = self._wm.get(feed, tr.bad_t) if tr.bad_late else tr.bad_t
            self._fire_bad(bad, feed, ent, tr, t, out)

    def _check_flat(self, rule: Rule, feed: str, ent: str, tr: SensorTrack, t: float, out: list[Alert]) -> None:
        key: Key = (rule.name, ent, feed)
        if tr.is_flat(*self._flat_cfg):
            if key in self._lc.active:
                return  # still the same stuck value
            labels = self._labels(rule, ent, "station" if feed == "rain" else "camera", t)
            labels["feed"] = feed
            extra = {"reading": tr.flat_value, "readings": tr.flat_n, "feed": feed,
                     "reading_unit": _READING_UNIT.get(feed, ""),
                     "minutes": round((tr.flat_last_t - tr.flat_first_t) / 60.0)}
            self._fire(rule, key, ent, t, tr.flat_value, rule.severity, labels, extra, late=False, out=out, feed=feed)
        elif key in self._lc.active:
            self._emit(out, self._resolve(rule, key, ent, t, tr.flat_value, feed=feed))

    def _fire_bad(self, rule: Rule, feed: str, ent: str, tr: SensorTrack, t: float, out: list[Alert]) -> None:
        key: Key = (rule.name, ent, feed)
        labels = self._labels(rule, ent, "station" if feed == "rain" else "camera", t)
        labels["feed"] = feed
        labels["reason"] = tr.bad_reason
        extra = {"reason": REASON_TEXT.get(tr.bad_reason, tr.bad_reason), "reading": tr.bad_reading, "feed": feed,
                 "reading_unit": _READING_UNIT.get(feed, ""), "handling": _HANDLING.get(feed, ""),
                 "reading_ts": local(tr.bad_t) if tr.bad_t is not None else None}  # when the reading was taken
        self._fire(rule, key, ent, t, tr.bad_reading, rule.severity, labels, extra, late=tr.bad_late, out=out,
                   feed=feed)
        self._bad_active[feed].add(ent)

    def _detect_at_watermarks(self, out: list[Alert]) -> None:
        sr = self._stale_rule
        if sr is not None:
            for feed, tracker in self._stale.items():
                wm = self._wm.get(feed)
                if wm is None:
                    continue
                if feed not in self._seeded:
                    self._seeded.add(feed)
                    if self.catalog is not None and sr.params.get("catalog", True):
                        ids = sorted(self.catalog.stations) if feed == "rain" else sorted(self.catalog.camera_site)
                        for ent in ids:
                            tracker.expect(ent, wm)
                for ent, last in tracker.due(wm):
                    kind = "station" if feed == "rain" else "camera"
                    labels = self._labels(sr, ent, kind, wm)
                    labels["feed"] = feed
                    labels["last_seen"] = format_ts(last)
                    minutes = round((wm - last) / 60.0)
                    extra = {"minutes": minutes, "last_seen": format_ts(last), "feed": feed}
                    self._fire(sr, (sr.name, ent, feed), ent, wm, float(minutes), sr.severity, labels, extra,
                               late=False, out=out, feed=feed)
        br = self._bad_rule
        if br is not None:
            hold = br.keep_firing_for_s or 3600.0
            for feed, ents in self._bad_active.items():
                wm = self._wm.get(feed)
                if wm is None or not ents:
                    continue
                for ent in sorted(ents):
                    tr = self._tracks[feed].get(ent)
                    key: Key = (br.name, ent, feed)
                    if key not in self._lc.active:
                        ents.discard(ent)
                    elif tr is None or tr.bad_t is None or wm - tr.bad_t >= hold:
                        ents.discard(ent)
                        self._emit(out, self._resolve(br, key, ent, wm, keep_value=True, feed=feed))
        for ar in self._anom_rules:
            self._detect_anomalies(ar, out)

    @staticmethod
    def _anom_cfg(rule: Rule) -> tuple[float, bool, str, dict]:
        """(step_s, increase, detector name, detector params) of an anomaly rule (validated at load)."""
        p = rule.params
        dp = {"utc_offset_s": 7 * 3600.0, **dict(p.get("detector_params") or {})}
        name = str(p.get("detector", "robust"))
        if name != "robust":
            dp.pop("utc_offset_s", None)
        return parse_duration(p.get("step", "1h")), p.get("transform", "value") == "increase", name, dp

    def _detect_anomalies(self, rule: Rule, out: list[Alert]) -> None:
        """Sample the rule's series at every step that ended by its feed's watermark; score; alert.

        The alert follows the detector's score before alarm suppression (`likelihood`): fire at
        ≥ threshold held for the rule's `for`, clear below clear_threshold held for `keep_firing_for`.
        """
        wm = self._wm.get(rule.feeds[0]) if rule.feeds else None
        ents = self._anom_ents.get(rule.name)
        if wm is None or not ents:
            return
        p = rule.params
        fire_at, clear_below = float(p.get("threshold", 0.5)), float(p.get("clear_threshold", 0.2))
        cfg = None
        for ent in ents:
            v = _num(self._latest.get((rule.indicator, rule.window, ent)))
            if v is None:
                continue  # no data is not zero
            tr = self._anom.get((rule.name, ent))
            if tr is None:
                cfg = cfg or self._anom_cfg(rule)
                tr = self._anom[(rule.name, ent)] = [StepSampler(cfg[0], cfg[1]), make_detector(cfg[2], cfg[3])]
            sampler, det = tr
            for t, x in sampler.due(wm, v):
                sc = det.score_one(t, x)
                det.learn_one(t, x)
                if sc is None:
                    continue  # warming up: no verdict
                self._anomaly_step(rule, ent, t, x, sc, fire_at, clear_below, out)

    def _anomaly_step(self, rule: Rule, ent: str, t: float, x: float, sc: Any, fire_at: float,
                      clear_below: float, out: list[Alert]) -> None:
        ckey = (rule.name, ent)
        key: Key = (rule.name, ent, "")
        if ckey not in self._conds and key not in self._lc.active and sc.likelihood < fire_at:
            return  # quiet and not firing: nothing can change
        st = self._cond(rule, ent)
        ev = step(st, t, sc.likelihood >= fire_at, sc.likelihood < clear_below, rule.for_s, rule.keep_firing_for_s)
        if ev == RESOLVE:
            self._emit(out, self._resolve(rule, key, ent, t, round(x, 3), feed=rule.feeds[0]))
        elif ev == FIRE:
            labels = self._labels(rule, ent, rule.entity, t)
            extra = explain(sc, t, rule.indicator or "", rule.window or "")
            labels.update(scale=sc.scale, seasonal=sc.seasonal, direction=sc.direction,
                          series=f"{rule.indicator} {rule.window}")
            extra["feed"] = rule.feeds[0]
            self._fire(rule, key, ent, t, x, rule.severity, labels, extra, late=False, out=out, feed=rule.feeds[0])
        if st.phase == INACTIVE:
            self._conds.pop(ckey, None)

    # ================================================================ persistence
    def _persist(self) -> None:
        commit = self._lc.take_commit()
        if not commit:
            return
        if commit.outbox:
            self._notifications.extend(commit.outbox)
            if len(self._notifications) > 10000:
                del self._notifications[: len(self._notifications) - 10000]
        if self.defer_commits:
            self._deferred.merge(commit)
        elif self.store is not None:
            self.store.commit(commit)

    # Deferred commits: the embedded runtime journals a batch *after* processing it, and nothing
    # of the batch may leave the process (store, outbox → webhook) before the journal entry is
    # on disk.  With `defer_commits` set, process() keeps its store commit; the runtime takes it
    # with take_deferred() once the entry is flushed and hands it to write_commit().  A batch that
    # failed is dropped with take_deferred() and never reaches the store.
    def take_deferred(self) -> Commit:
        with self._lock:
            c, self._deferred = self._deferred, Commit()
            return c

    def write_commit(self, commit: Commit) -> None:
        if commit and self.store is not None:
            with self._lock:
                self.store.commit(commit)

    def _restore_from_store(self) -> None:
        data = self.store.load()
        if data.get("state"):
            self._set_core_state(data["state"].get("core", {}))
        self._lc.restore(data.get("active", []), data.get("resolved", []), data.get("silences", []))
        for key, a in self._lc.active.items():
            rule = self._by_name.get(key[0])
            if rule is None:
                continue
            if rule.kind == "stale" and key[2] in self._stale:
                self._stale[key[2]].stale.add(key[1])
            elif rule.kind == "implausible" and key[2] in self._bad_active:
                self._bad_active[key[2]].add(key[1])
                tr = self._tracks[key[2]].setdefault(key[1], SensorTrack())
                if tr.bad_t is None:
                    tr.bad_t = self._ts(a.ts)
        # alerts of the former hour-of-week anomaly detector were scoped by feed; today's anomaly rules
        # never touch such a key again, so retire them instead of leaving them active for ever
        retired = [(key, a) for key, a in self._lc.active.items()
                   if key[2] and getattr(self._by_name.get(key[0]), "kind", "") == "anomaly"]
        for key, a in retired:
            self._lc.resolve(key, ts=a.ts, t=self._ts(a.ts), keep_value=True)
        if retired:
            self._persist()

    def checkpoint(self) -> dict:
        """Save the full engine state to the store (if any) and return it."""
        with self._lock:
            state = self.get_state()
            if self.store is not None:
                self.store.commit(Commit(engine_state=state))
            return state

    # ================================================================ operator API
    def active(self) -> list[Alert]:
        """Active alerts (firing, acknowledged or not), newest first — for snapshots."""
        with self._lock:
            return self._sorted(list(self._lc.active.values()))

    def get(self, alert_id: str) -> Alert | None:
        with self._lock:
            a = self._lc.get(alert_id)
            if a is None and self.store is not None:
                a = self.store.get_alert(alert_id)
            return a

    def history(self, alert_id: str) -> list[dict]:
        """Audit entries of one alert, oldest first."""
        with self._lock:
            if self.store is not None:
                return self.store.history(alert_id)
            return self._lc.history(alert_id)

    def acknowledge(self, alert_id: str, by: str, comment: str | None = None, at: float | None = None) -> Alert:
        """Acknowledge an active alert; `at` is the wall-clock time of the operator action (epoch s).

        Raises NotFound (unknown id) or NotActive (already resolved).
        Acknowledging twice is idempotent (returns the alert as it is).
        """
        with self._lock:
            a = self._lc.get(alert_id)
            if a is None and self.store is not None and self.store.get_alert(alert_id) is not None:
                raise NotActive(f"alert {alert_id} is already resolved")
            at_s = format_ts(at) if at is not None else (a.ts if a is not None else "")
            a = self._lc.acknowledge(alert_id, by, comment, at_s)
            self._persist()
            return a

    def check_acknowledge(self, alert_id: str, comment: str | None = None) -> bool:
        """Would acknowledge() change anything?  False when already acknowledged and there is no comment
        to add; raises NotFound, NotActive or ThreadFull as acknowledge() would (so a caller journals
        only actions that apply)."""
        with self._lock:
            a = self._active(alert_id)
            if comment:
                self._lc.check_comment(alert_id)
            return not a.acknowledged or bool(comment)

    def _active(self, alert_id: str) -> Alert:
        """The active alert of that id; NotActive when it is resolved (here or only in the store)."""
        key = self._lc.by_id.get(alert_id)
        if key is None:
            if alert_id in self._lc.resolved or (self.store is not None and self.store.get_alert(alert_id)):
                raise NotActive(f"alert {alert_id} is already resolved")
            raise NotFound(alert_id)
        return self._lc.active[key]

    def _action(self, alert_id: str, do) -> Alert:
        with self._lock:
            self._active(alert_id)
            a = do()
            self._persist()
            return a

    def comment(self, alert_id: str, by: str, text: str, at: float) -> Alert:
        """Add {by, at, text} to an active alert's thread (`at`: wall-clock epoch s of the action).
        Raises NotFound, NotActive, or ThreadFull past MAX_COMMENTS."""
        return self._action(alert_id, lambda: self._lc.comment(alert_id, by, text, format_ts(at)))

    def check_comment(self, alert_id: str) -> None:
        with self._lock:
            self._active(alert_id)
            self._lc.check_comment(alert_id)

    def assign(self, alert_id: str, to: str, by: str, at: float) -> Alert:
        """Make `to` responsible for an active alert; the same assignee again changes nothing."""
        return self._action(alert_id, lambda: self._lc.assign(alert_id, to, by, format_ts(at)))

    def unassign(self, alert_id: str, by: str, at: float) -> Alert:
        return self._action(alert_id, lambda: self._lc.unassign(alert_id, by, format_ts(at)))

    def check_assign(self, alert_id: str, to: str | None) -> bool:
        """Would assign(to) / unassign() (to=None) change anything?  Raises NotFound or NotActive."""
        with self._lock:
            a = self._active(alert_id)
            current = (a.assignee or {}).get("name")
            return current != to if to is not None else current is not None

    def check_silence(self, matchers: Any, ends_at: Any, starts_at: Any = None) -> None:
        """Raise ValueError for a silence add_silence() would refuse."""
        if not isinstance(matchers, dict) or not matchers or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in matchers.items()):
            raise ValueError("matchers must be a non-empty mapping of names to text, e.g. {\"rule\": \"rain_*\"}")
        ends = check_silence_time(ends_at, "ends_at")
        if starts_at is not None and ends <= check_silence_time(starts_at, "starts_at"):
            raise ValueError("ends_at must be after starts_at")

    # ---------------------------------------------------------------- test alert (alerts/test_alert.py)
    def active_test_alert(self) -> Alert | None:
        with self._lock:
            return self._lc.active.get(test_alert.KEY)

    def send_test_alert(self, by: str, at: float, *, unit: str | None = None,
                        ttl_s: float = test_alert.DEFAULT_TTL_S) -> Alert:
        """Fire the operator's test alert at `at` (wall-clock epoch s of the action); one at a time:
        while one is active it is returned unchanged."""
        with self._lock:
            cur = self._lc.active.get(test_alert.KEY)
            if cur is not None:
                return cur
            self._lc.fire(test_alert.KEY, ts=format_ts(at), t=at, value=None, severity=test_alert.SEVERITY,
                          labels=test_alert.labels(by, unit, ttl_s), message=dict(test_alert.MESSAGE),
                          feed=test_alert.TEST_RULE)
            self._persist()
            return self._lc.active[test_alert.KEY]

    def check_resolve_test_alert(self, alert_id: str) -> None:
        """Raise what resolve_test_alert() would: NotFound, NotActive, or ValueError for a real alert
        (those end when their condition clears, never by hand)."""
        with self._lock:
            if not test_alert.is_test(self._active(alert_id)):
                raise ValueError(f"alert {alert_id} is not a test alert: real alerts end when their condition clears")

    def resolve_test_alert(self, alert_id: str, at: float) -> Alert:
        """End the test alert `alert_id` at `at` (see check_resolve_test_alert)."""
        with self._lock:
            self.check_resolve_test_alert(alert_id)
            out = self._lc.resolve(test_alert.KEY, ts=format_ts(at), t=at, keep_value=True,
                                   message=dict(test_alert.RESOLVED_MESSAGE))
            self._persist()
            return out

    def drain_updates(self) -> list[Alert]:
        """Lifecycle updates made outside process() (acknowledgements) since the last call."""
        with self._lock:
            return self._lc.drain_updates()

    def drain_notifications(self) -> list[dict]:
        """Outbox entries produced since the last call (for store-less use; with a store, use its outbox)."""
        with self._lock:
            out, self._notifications = self._notifications, []
            return out

    def add_silence(self, matchers: dict[str, str], ends_at: float, *, starts_at: float | None = None,
                    by: str = "", comment: str = "", created_at: float | None = None) -> Silence:
        """Mute notifications of alerts matching every matcher (shell wildcards) until `ends_at` (epoch s,
        compared with the alert's event time)."""
        self.check_silence(matchers, ends_at, starts_at)
        with self._lock:
            raw = json.dumps([matchers, ends_at, starts_at, by, comment, created_at, len(self._lc.silences)],
                             sort_keys=True)
            sid = hashlib.sha1(raw.encode()).hexdigest()[:16]
            s = self._lc.add_silence(Silence(sid, dict(matchers), float(ends_at), starts_at, by, created_at, comment))
            self._persist()
            return s

    def remove_silence(self, silence_id: str, by: str = "", at: float | None = None) -> bool:
        """Expire (delete) a silence; `by` and `at` (wall-clock epoch s) go to the audit log."""
        with self._lock:
            ok = self._lc.remove_silence(silence_id, by, at)
            self._persist()
            return ok

    def silences(self) -> list[Silence]:
        with self._lock:
            return sorted(self._lc.silences.values(), key=lambda s: (s.ends_at, s.id))

    def silence_expired(self, s: Silence) -> bool:
        """Expired relative to event time (the most advanced feed watermark)."""
        wm = max(self._wm.values(), default=None)
        return wm is not None and s.ends_at <= wm

    def list(self, state: str | None = None, severity: str | None = None, rule: str | None = None,
             unit: str | None = None, limit: int = 500) -> list[Alert]:
        """Filtered alerts, newest first.  state: firing|active (all active), acknowledged,
        unacknowledged, resolved; unit also matches alerts of its child units."""
        with self._lock:
            items: list[Alert] = []
            if state in (None, "firing", "active", "acknowledged", "unacknowledged"):
                items.extend(self._lc.active.values())
            if state in (None, "resolved"):
                resolved = {a.id: a for a in self._lc.resolved.values()}
                if self.store is not None:
                    for a in self.store.list_alerts(state="resolved", limit=limit):
                        resolved.setdefault(a.id, a)
                items.extend(resolved.values())
            if state == "acknowledged":
                items = [a for a in items if a.acknowledged]
            elif state == "unacknowledged":
                items = [a for a in items if not a.acknowledged]
            if severity:
                items = [a for a in items if a.severity == severity]
            if rule:
                items = [a for a in items if a.rule == rule]
            if unit:
                items = [a for a in items if self._in_unit(a, unit)]
            return self._sorted(items)[:limit]

    def _in_unit(self, a: Alert, unit: str) -> bool:
        u = a.labels.get("unit")
        if u is None:
            return a.entity == unit
        if u == unit:
            return True
        return self.catalog is not None and unit in self.catalog.ancestors(u)

    def _sorted(self, items: list[Alert]) -> list[Alert]:
        return sorted(items, key=lambda a: (self._ts(a.ts), a.id), reverse=True)

    # ================================================================ checkpoints
    def get_state(self) -> dict:
        with self._lock:
            return {"version": 1, "core": self._core_state(), "lifecycle": self._lc.get_state()}

    def set_state(self, state: dict) -> None:
        with self._lock:
            self._set_core_state(state.get("core", {}))
            if "lifecycle" in state:
                self._lc.set_state(state["lifecycle"])

    def _core_state(self) -> dict:
        return {
            "wm": dict(self._wm),
            "latest": {_SEP.join(k): v for k, v in self._latest.items()},
            "conds": {_SEP.join(k): st.to_list() for k, st in self._conds.items()},
            "days": {_SEP.join(k): {str(d): v for d, v in dd.items()} for k, dd in self._days.items()},
            "stale": {f: tr.get_state() for f, tr in self._stale.items()},
            "seeded": sorted(self._seeded),
            "tracks": {f: {e: tr.to_list() for e, tr in d.items()} for f, d in self._tracks.items()},
            "bad_active": {f: sorted(s) for f, s in self._bad_active.items()},
            "anomaly": {f"{r}{_SEP}{e}": {"sampler": sm.to_list(), "detector": det.get_state()}
                        for (r, e), (sm, det) in self._anom.items()},
            "anomaly_entities": {r: list(ents) for r, ents in self._anom_ents.items()},
            "risk": self._risk.get_state() if self._risk is not None else {},
            "risk_manual": [[r, a, ov] for (r, a), ov in sorted(self._risk_manual.items())],
        }

    def _set_core_state(self, s: dict) -> None:
        self._reset_core()
        self._wm = {k: float(v) for k, v in s.get("wm", {}).items()}
        self._latest = {tuple(k.split(_SEP)): v for k, v in s.get("latest", {}).items()}
        self._conds = {tuple(k.split(_SEP)): CondState.from_list(v) for k, v in s.get("conds", {}).items()}
        self._ticking = {k: None for k, st in self._conds.items() if st.ticking}
        self._days = {tuple(k.split(_SEP)): {int(d): v for d, v in dd.items()} for k, dd in s.get("days", {}).items()}
        for f, st in s.get("stale", {}).items():
            if f in self._stale:
                self._stale[f].set_state(st)
        self._seeded = set(s.get("seeded", []))
        for f, d in s.get("tracks", {}).items():
            self._tracks[f] = {e: SensorTrack.from_list(v) for e, v in d.items()}
        for f, ents in s.get("bad_active", {}).items():
            self._bad_active[f] = set(ents)
        if self._risk is not None:
            self._risk.set_state(s.get("risk", {}))
        self._risk_manual = {(r, a): dict(ov) for r, a, ov in s.get("risk_manual", [])}
        for r, ents in s.get("anomaly_entities", {}).items():
            if r in self._anom_ents:
                self._anom_ents[r] = dict.fromkeys(ents)
        for k, st in s.get("anomaly", {}).items():
            r, e = k.split(_SEP, 1)
            rule = self._by_name.get(r)
            if rule is None or rule.kind != "anomaly":
                continue  # the rule was removed: its detectors go with it
            step_s, increase, _, _ = self._anom_cfg(rule)
            self._anom[(r, e)] = [StepSampler(step_s, increase, *st["sampler"]), detector_from_state(st["detector"])]

    # convenience for tests / tools
    @property
    def watermarks(self) -> dict[str, float]:
        return dict(self._wm)

    def rule(self, name: str) -> Rule | None:
        return self._by_name.get(name)


