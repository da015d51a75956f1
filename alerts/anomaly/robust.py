"""RobustDetector: a scale-free, multi-scale, seasonal, self-calibrating streaming detector.

Why this design (docs/architecture.md lists the indicators it watches): published streaming detectors that do
well on labelled real-world streams share three traits — a context-aware expectation (what is normal *now*,
not a global mean), a score normalised by the series' own recent behaviour, and a post-processing step that
turns noisy raw scores into a sparse "this is new" signal (the HTM "anomaly likelihood").  This detector
keeps those traits with O(1) state per series (a few hundred floats, so one per entity fits in the engine's
checkpoints):

1. **Expectation** — an ensemble of forecasters, each scored by its own running absolute error: a fast and a
   slow robust level (exponentially weighted means updated with clipped residuals, so outliers barely move
   them), and, once two days (two weeks) of data exist, the slow level plus an hour-of-day (hour-of-week)
   profile.  The forecaster with the lowest error wins, so seasonality is used exactly when the data shows it.
2. **Raw surprise on several scales**, each in units of its own running spread (so × 1000 changes nothing):
   the point against the best forecaster (a 5-minute spike), the step from the previous point less the step
   the seasonal profile expects (a jump in a random-walk-like series; office opening is no jump), the means
   of the last 6 and 36 residuals against the best slow forecaster (a drift or a seasonal break too gentle
   for any single point), the point against a very slow level (`long_half_life`: a drift that the other
   levels follow), and the ratio of short to long spread (noise that grows).  Floors are the series' own
   resolution (its smallest non-zero step), never absolute units.
3. **Calibration**: the square root of the largest surprise (the maximum of several scales has a heavier tail
   than a Gaussian) is compared with its own running mean and spread (a Gaussian tail, as the anomaly
   likelihood does), and mapped to [0, 1] on a log scale, so a heavy-tailed series does not
   alarm more often than a quiet one; a surprise that was common lately (≥ `common_tail` of recent points,
   by a decayed histogram) is no alarm, which a Gaussian alone gets wrong on bursty, mostly-zero series.
4. **Adaptation and suppression**: a run of `shift_points` consecutive large residuals of the same sign is a
   new level — the levels re-anchor on it (flagged, then absorbed); many large residuals of either sign
   lately are a noisier regime — the spreads re-anchor on the recent residuals; after an alarm the score is
   damped for `refractory_points` unless something clearly stronger happens, so one event is one alarm.

`score_one` has no side effects; `learn_one` updates the state.  Deterministic: the same points in the same
order give the same scores, bit for bit; `get_state()`/`from_state()` round-trip exactly.
"""

from __future__ import annotations

import math
from typing import Any

from alerts.anomaly.score import Score

_SD_PER_MAD = 1.25  # a running mean absolute deviation is ~0.8 standard deviation (Gaussian)
_LN_1E10 = math.log(1e10)
_Z_CAP = 60.0
_PRIOR_N, _PRIOR_MU, _PRIOR_VAR = 20.0, 2.0, 1.0
_HIST_BINS = 32
_LN_ZCAP = math.log(_Z_CAP)


def _bin(a: float) -> int:
    """Log-spaced bins of the raw surprise: [0, 1) is bin 0, up to the cap."""
    if a <= 1.0:
        return 0
    return min(_HIST_BINS - 1, 1 + int(math.log(a) / _LN_ZCAP * (_HIST_BINS - 1)))


def _alpha(half_life_pts: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(half_life_pts, 1e-9))


def _log_tail(z: float) -> float:
    """−ln Q(z) for the standard normal upper tail Q, stable far out in the tail."""
    if z < 5.0:
        q = 0.5 * math.erfc(z / math.sqrt(2.0))
        return -math.log(max(q, 1e-300))
    # asymptotic: Q(z) ≈ φ(z)/z · (1 − 1/z²)
    return 0.5 * z * z + math.log(z) + 0.5 * math.log(2.0 * math.pi) - math.log(1.0 - 1.0 / (z * z))


class RobustDetector:
    """See the module docstring.  Parameters are in points (samples) unless named `_s` (seconds)."""

    KIND = "robust"
    _PARAMS = ("warmup_points", "warmup_s", "min_points", "fast_half_life", "slow_half_life", "err_half_life",
               "agg", "shift_points", "refractory_points", "calib_half_life", "threshold", "suppress_from",
               "damp", "utc_offset_s", "seasonal", "spread_half_life", "long_half_life",
               "hist_half_life", "common_tail", "calib")

    def __init__(self, warmup_points: int = 288, warmup_s: float = 86400.0, min_points: int = 24,
                 fast_half_life: float = 4.0, slow_half_life: float = 96.0, err_half_life: float = 288.0,
                 agg: tuple[int, ...] | list[int] = (6, 36), shift_points: int = 12, refractory_points: int = 144,
                 calib_half_life: float = 2000.0, threshold: float = 0.5, suppress_from: float = 0.3,
                 damp: float = 0.1, utc_offset_s: float = 0.0, seasonal: bool = True,
                 spread_half_life: float = 12.0, long_half_life: float = 1000.0,
                 hist_half_life: float = 250.0, common_tail: float = 0.005, calib: str = "sqrt") -> None:
        if calib not in ("none", "sqrt", "log"):
            raise ValueError("calib: none, sqrt or log")
        self.calib = calib
        self.hist_half_life = float(hist_half_life)
        self.common_tail = float(common_tail)
        self.long_half_life = float(long_half_life)
        self.warmup_points = int(warmup_points)
        self.warmup_s = float(warmup_s)
        self.min_points = int(min_points)
        self.fast_half_life = float(fast_half_life)
        self.slow_half_life = float(slow_half_life)
        self.err_half_life = float(err_half_life)
        self.agg = tuple(int(k) for k in agg)
        self.shift_points = int(shift_points)
        self.refractory_points = int(refractory_points)
        self.calib_half_life = float(calib_half_life)
        self.threshold = float(threshold)
        self.suppress_from = float(suppress_from)
        self.damp = float(damp)
        self.utc_offset_s = float(utc_offset_s)
        self.seasonal = bool(seasonal)
        self.spread_half_life = float(spread_half_life)
        if not self.agg or min(self.agg) < 2:
            raise ValueError("agg: window sizes must be ≥ 2 points")
        if not 0.0 < self.threshold <= 1.0 or not 0.0 < self.suppress_from <= 1.0:
            raise ValueError("threshold and suppress_from must be in (0, 1]")
        self._af, self._as = _alpha(self.fast_half_life), _alpha(self.slow_half_life)
        self._ae = _alpha(self.err_half_life)
        self._ac, self._av = _alpha(self.calib_half_life), _alpha(self.spread_half_life)
        self._ah = _alpha(self.hist_half_life)
        self._k = max(self.agg)
        self._cache: tuple[float, float, tuple] | None = None
        self.n = 0
        self.lo = 0.0  # smallest and largest value seen (set by the first point: the state stays finite)
        self.hi = 0.0
        self.t0 = 0.0
        self.t_last = 0.0
        self.x_prev = 0.0
        self.res = 0.0  # smallest non-zero |step| seen: the series' own resolution
        self.lf = 0.0
        self.ls = 0.0
        self.pday = [0.0] * 24
        self.nday = [0] * 24
        self.pweek = [0.0] * 168
        self.nweek = [0] * 168
        self.err = {"fast": 0.0, "slow": 0.0, "daily": 0.0, "weekly": 0.0}
        self.nerr = {"fast": 0, "slow": 0, "daily": 0, "weekly": 0}
        self.errd = 0.0
        self.buf: list[float] = []
        self.erragg = [0.0] * len(self.agg)
        self.nagg = [0] * len(self.agg)
        self.vs = 0.0  # short-horizon spread of the best forecaster's residual
        self.errv = 0.0  # running mean |ln(short/long spread)|
        self.nv = 0
        self.ll = 0.0  # a very slow level (drifts show against it) and the spread around it
        self.errl = 0.0
        self.nlong = 0
        self.run_n = 0
        self.run_sign = 0
        self.run_sum = 0.0
        self.cmu = 0.0  # calibration: running mean and mean square of the raw surprise
        self.cm2 = 0.0
        self.nc = 0
        self.hist = [0.0] * _HIST_BINS
        self.htot = 0.0
        self.hw = 1.0
        self.vrun = 0.0  # recent fraction of large residuals of either sign (> 0.4: a noisier regime)
        self.quiet = 0
        self.peak = 0.0

    # ------------------------------------------------------------------ evaluation (no side effects)
    def _bins(self, t_s: float) -> tuple[int, int]:
        lt = t_s + self.utc_offset_s
        day = math.floor(lt / 86400.0)
        hd = int(math.floor(lt / 3600.0)) % 24
        return hd, ((day + 3) % 7) * 24 + hd  # 1970-01-01 was a Thursday: 0 = Monday 00h

    def _preds(self, t_s: float) -> tuple[dict[str, float], int, int]:
        hd, hw = self._bins(t_s)
        preds = {"fast": self.lf, "slow": self.ls}
        if self.seasonal:
            span = t_s - self.t0
            if span >= 2 * 86400.0 and self.nday[hd] >= 2:
                preds["daily"] = self.ls + self.pday[hd]
            if span >= 14 * 86400.0 and self.nweek[hw] >= 2:
                preds["weekly"] = self.ls + self.pweek[hw]
        return preds, hd, hw

    def _best(self, preds: dict[str, float], names: tuple[str, ...]) -> str:
        best, best_e = "", math.inf
        for name in names:
            if name not in preds:
                continue
            e = self.err[name]
            if name in ("daily", "weekly"):
                if self.nerr[name] < 24:
                    continue  # not yet proven on enough points
                e *= 1.1  # a seasonal model must beat the plain one clearly
            if e < best_e:
                best, best_e = name, e
        return best

    def _floor(self) -> float:
        return max(self.res, 1e-9 * abs(self.ls), 1e-300)

    def _eval(self, t_s: float, x: float) -> tuple:
        """(raw surprise, scale, observed, expected, half-range, seasonal, r_slow, best_all, preds, hd, hw)."""
        preds, hd, hw = self._preds(t_s)
        fl = self._floor()
        ball = self._best(preds, ("fast", "slow", "daily", "weekly"))
        bslow = self._best(preds, ("slow", "daily", "weekly"))
        e_all = preds[ball]
        s_all = _SD_PER_MAD * max(self.err[ball], fl)
        a = abs(x - e_all) / s_all
        scale, obs, exp_, half = "point", x, e_all, 3.0 * s_all
        e_slow = preds[bslow]
        r = x - e_slow
        s_step = _SD_PER_MAD * max(self.errd, fl)
        exp_step = self._expected_step(ball, hd, hw)
        z = abs(x - self.x_prev - exp_step) / s_step
        if z > a:
            a, scale, obs, exp_, half = z, "step", x, self.x_prev + exp_step, 3.0 * s_step
        buf = self.buf
        for i, k in enumerate(self.agg):
            if len(buf) + 1 < k or self.nagg[i] < 10:
                continue
            m = (sum(buf[len(buf) - k + 1:]) + r) / k
            # overlapping means give few independent samples of their own spread: never below the
            # spread a mean of k independent residuals would have
            s_m = _SD_PER_MAD * max(self.erragg[i], max(self.err[bslow], fl) / math.sqrt(k))
            z = abs(m) / s_m
            if z > a:
                a, scale, obs, exp_, half = z, f"mean_{k}", e_slow + m, e_slow, 3.0 * s_m
        e_long = self.ll + self._season(bslow, hd, hw)
        if self.long_half_life > 0 and self.nlong >= 48:
            s_long = _SD_PER_MAD * max(self.errl, fl)
            z = abs(x - e_long) / s_long
            if z > a:
                a, scale, obs, exp_, half = z, "level", x, e_long, 3.0 * s_long
        vs = (1.0 - self._av) * self.vs + self._av * abs(x - e_all)
        if self.nv >= 10 and self.errv > 0.0:
            lr = math.log(max(vs, fl) / max(self.err[ball], fl))
            # only a spread that grows: a narrower one is mostly a quiet hour of a count series (and a stuck
            # sensor is the flatline detector's job)
            z = max(lr, 0.0) / (_SD_PER_MAD * max(self.errv, 0.05))
            if z > a:
                a, scale, obs, exp_, half = z, "spread", x, e_all, 3.0 * s_all
        seasonal = {"daily": "daily", "weekly": "weekly"}.get(bslow if scale.startswith("mean") else ball, "none")
        return min(a, _Z_CAP), scale, obs, exp_, half, seasonal, r, ball, preds, hd, hw, vs, exp_step, e_long

    def _season(self, name: str, hd: int, hw: int) -> float:
        return self.pday[hd] if name == "daily" else self.pweek[hw] if name == "weekly" else 0.0

    def _expected_step(self, ball: str, hd: int, hw: int) -> float:
        """The change from the previous point the winning seasonal profile expects (office opening is no jump)."""
        if ball not in ("daily", "weekly"):
            return 0.0
        phd, phw = self._bins(self.t_last)
        if ball == "daily":
            return self.pday[hd] - self.pday[phd]
        return self.pweek[hw] - self.pweek[phw]

    def _calibrated(self, a: float) -> float:
        """Score in [0, 1]: the Gaussian tail of the raw surprise against its own running distribution.

        While few surprises are known, their mean and variance are blended with a cautious prior
        (mean 2, variance 1, worth `_PRIOR_N` points), so the first verdicts after the warm-up are not
        alarms made of a calibration that has seen a dozen points.
        """
        w = self.nc / (self.nc + _PRIOR_N)
        g, mu0 = self._g(a), self._g(_PRIOR_MU)
        var0 = (self._g(_PRIOR_MU + math.sqrt(_PRIOR_VAR)) - mu0) ** 2
        mu = w * self.cmu + (1.0 - w) * mu0
        m2 = w * self.cm2 + (1.0 - w) * (var0 + mu0 * mu0)
        var = max(m2 - mu * mu, 1e-12)
        zc = (g - mu) / math.sqrt(var)
        if zc <= 0.0:
            return 0.0
        lt = _log_tail(zc)
        if self.htot > 0.0:  # the surprise's empirical tail: bimodal (bursty) series fool a Gaussian
            p = sum(self.hist[_bin(a):]) / self.htot
            if p >= self.common_tail:
                lt = min(lt, -math.log(p))
        return min(1.0, lt / _LN_1E10)

    def _g(self, a: float) -> float:
        """The calibrated quantity: the surprise itself, or its square root / log (tames heavy tails)."""
        return a if self.calib == "none" else math.sqrt(a) if self.calib == "sqrt" else math.log1p(a)

    def _final(self, a: float) -> float:
        s = self._calibrated(a)
        if self.quiet > 0 and a <= 1.5 * self.peak:
            s *= self.damp
        return s

    def ready(self, t_s: float) -> bool:
        """Past the warm-up: a verdict after `warmup_points` points or `warmup_s` seconds, whichever first."""
        return self.n >= self.min_points and (self.n >= self.warmup_points or t_s - self.t0 >= self.warmup_s)

    def score_one(self, t_s: float, x: float) -> Score | None:
        """The score of x at t_s given everything learnt so far; None while warming up."""
        if self.n == 0 or not self.ready(t_s):
            return None
        ev = self._eval(t_s, x)
        self._cache = (t_s, x, ev)
        a, scale, obs, exp_, half, seasonal = ev[:6]
        lik = self._calibrated(a)
        s = self._final(a)
        # the usual range never extends past what the series has shown (no "−3 to 4 dossiers")
        lo, hi = max(exp_ - half, self.lo), min(exp_ + half, self.hi)
        direction = "wider" if scale == "spread" else "above" if obs >= exp_ else "below"
        return Score(score=round(s, 6), alert=s >= self.threshold, scale=scale, observed=obs, expected=exp_,
                     expected_low=min(lo, exp_), expected_high=max(hi, exp_), seasonal=seasonal, z=round(a, 3),
                     likelihood=round(lik, 6), direction=direction)

    # ------------------------------------------------------------------ learning
    def learn_one(self, t_s: float, x: float) -> None:
        x = float(x)
        if self.n == 0:
            self.lo = self.hi = x
            self.n, self.t0, self.t_last, self.x_prev = 1, t_s, t_s, x
            self.lf = self.ls = self.ll = x
            return
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)
        c = self._cache
        ev = c[2] if c is not None and c[0] == t_s and c[1] == x else self._eval(t_s, x)
        self._cache = None
        a, _, _, _, _, _, r, ball, preds, hd, hw, vs, exp_step, e_long = ev
        ready = self.ready(t_s)
        n = self.n
        warm = 1.0 / (n + 1)
        fl = self._floor()
        # calibration (from the 10th point, so it is ripe when the warm-up ends) and suppression see the
        # surprise before the state moves
        if ready:
            s = self._final(a)
            if self.quiet > 0:
                self.quiet -= 1
                if a > 1.5 * self.peak and self._calibrated(a) >= self.suppress_from:
                    self.quiet, self.peak = self.refractory_points, a
            elif s >= self.suppress_from:
                self.quiet, self.peak = self.refractory_points, a
        if n >= 10:
            ac = max(self._ac, 1.0 / (self.nc + 1))
            g = self._g(a)
            if self.nc >= 10:
                sd = math.sqrt(max(self.cm2 - self.cmu * self.cmu, 1e-12))
                g = min(g, self.cmu + 6.0 * sd)  # one extreme point must not blunt the next alarm
            self.cmu += ac * (g - self.cmu)
            self.cm2 += ac * (g * g - self.cm2)
            self.nc += 1
            # decayed histogram with a growing weight instead of decaying every bin (ratios are the same)
            self.hist[_bin(ev[0])] += self.hw
            self.htot += self.hw
            self.hw /= 1.0 - self._ah
            if self.hw > 1e100:
                self.hist = [h / self.hw for h in self.hist]
                self.htot /= self.hw
                self.hw = 1.0
        # forecaster errors (clipped: an outlier does not inflate the spread much)
        for name, p in preds.items():
            e = abs(x - p)
            cur = self.err[name]
            ae = max(self._ae, 1.0 / (self.nerr[name] + 1))
            if self.nerr[name] >= 10:
                e = min(e, 4.0 * max(cur, fl))
            self.err[name] = cur + ae * (e - cur)
            self.nerr[name] += 1
        step = abs(x - self.x_prev)
        if step > 0.0 and (self.res == 0.0 or step < self.res):
            self.res = step
        step = abs(x - self.x_prev - exp_step)
        ad = max(self._ae, warm)
        self.errd += ad * ((min(step, 4.0 * max(self.errd, fl)) if n >= 10 else step) - self.errd)
        # spread ratio statistics
        if self.nerr[ball] > 2 * self.spread_half_life:
            lr = abs(math.log(max(vs, fl) / max(self.err[ball], fl)))
            if self.nv >= 10:
                lr = min(lr, 4.0 * max(self.errv, 0.05))
            self.errv += max(self._ae, 1.0 / (self.nv + 1)) * (lr - self.errv)
            self.nv += 1
        self.vs = vs
        # multi-scale residual means
        buf = self.buf
        for i, k in enumerate(self.agg):
            if len(buf) + 1 >= k:
                m = abs((sum(buf[len(buf) - k + 1:]) + r) / k)
                cur = self.erragg[i]
                if self.nagg[i] >= 10:
                    m = min(m, 4.0 * cur)
                self.erragg[i] = cur + max(self._ae, 1.0 / (self.nagg[i] + 1)) * (m - cur)
                self.nagg[i] += 1
        buf.append(r)
        if len(buf) > self._k:
            del buf[0]
        if self.long_half_life > 0:
            el = abs(x - e_long)
            if self.nlong >= 10:
                el = min(el, 4.0 * max(self.errl, fl))
            self.errl += max(_alpha(2 * self.long_half_life), 1.0 / (self.nlong + 1)) * (el - self.errl)
            self.nlong += 1
            rl = x - self.ll
            cl = 3.0 * max(self.errl, fl)
            self.ll += max(_alpha(self.long_half_life), warm) * max(-cl, min(rl, cl))
        # levels: robust (clipped) exponentially weighted means
        s_slow = max(self.err["slow"], fl)
        rf = x - self.lf
        self.lf += max(self._af, warm) * max(-3.0 * max(self.err["fast"], fl), min(rf, 3.0 * max(self.err["fast"], fl)))
        rs = x - self.ls
        self.ls += max(self._as, warm) * max(-3.0 * s_slow, min(rs, 3.0 * s_slow))
        # seasonal profiles, relative to the slow level
        if self.seasonal:
            d = x - self.ls
            self.nday[hd] += 1
            self.pday[hd] += max(0.05, 1.0 / self.nday[hd]) * (d - self.pday[hd])
            self.nweek[hw] += 1
            self.pweek[hw] += max(0.1, 1.0 / self.nweek[hw]) * (d - self.pweek[hw])
        # a persisting new level: re-anchor on it instead of alarming forever
        big = abs(r) > 3.0 * _SD_PER_MAD * max(self.err["slow"] if "daily" not in preds else min(
            self.err["slow"], self.err["daily"]), fl)
        sign = 1 if r > 0 else -1
        if big and sign == self.run_sign:
            self.run_n += 1
            self.run_sum += x
        elif big:
            self.run_sign, self.run_n, self.run_sum = sign, 1, x
        else:
            self.run_sign, self.run_n, self.run_sum = 0, 0, 0.0
        # many large residuals of either sign lately: a noisier regime (or a flat series come alive) — the
        # spreads jump to what the recent residuals show instead of creeping up for days
        big_any = abs(x - preds[ball]) > 2.0 * _SD_PER_MAD * max(self.err[ball], fl)  # ~5 % of points normally
        self.vrun += _alpha(self.shift_points) * (big_any - self.vrun)
        if self.vrun > 0.4 and len(buf) >= self.shift_points:
            recent = buf[-self.shift_points:]
            mid = sum(recent) / len(recent)
            m = sum(abs(v - mid) for v in recent) / len(recent)
            for name in self.err:
                self.err[name] = max(self.err[name], m)
            self.errd = max(self.errd, m * math.sqrt(2.0))
            self.erragg = [max(e, m / math.sqrt(k)) for e, k in zip(self.erragg, self.agg)]
            self.errl = max(self.errl, m)
            self.vrun = 0.0
        if self.run_n >= self.shift_points:
            new = self.run_sum / self.run_n
            jump = new - self.ls
            self.ls += jump
            self.lf = x
            self.buf = [v - jump for v in buf]
            self.run_sign, self.run_n, self.run_sum = 0, 0, 0.0
        self.x_prev = x
        self.t_last = t_s
        self.n = n + 1

    # ------------------------------------------------------------------ state
    def params(self) -> dict[str, Any]:
        return {k: (list(getattr(self, k)) if k == "agg" else getattr(self, k)) for k in self._PARAMS}

    _STATE = ("n", "lo", "hi", "t0", "t_last", "x_prev", "res", "lf", "ls", "pday", "nday", "pweek", "nweek", "err",
              "nerr", "errd", "buf", "erragg", "nagg", "vs", "errv", "nv", "ll", "errl", "nlong", "run_n", "run_sign",
              "run_sum", "cmu", "cm2", "nc", "hist", "htot", "hw", "vrun", "quiet",
              "peak")

    def get_state(self) -> dict[str, Any]:
        """Plain JSON-able dict (floats survive JSON exactly: repr round-trips)."""
        out: dict[str, Any] = {"kind": self.KIND, "params": self.params()}
        for k in self._STATE:
            v = getattr(self, k)
            out[k] = dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "RobustDetector":
        det = cls(**state.get("params", {}))
        for k in cls._STATE:
            if k in state:
                v = state[k]
                setattr(det, k, dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
        return det
