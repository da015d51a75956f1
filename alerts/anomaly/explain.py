"""Operator-facing explanation of a detector's Score, in Vietnamese and English (message placeholders).

Numbers are written for people: comma decimals and dot thousands in Vietnamese (12,5; 1.250), the
reverse in English; times are local (Asia/Ho_Chi_Minh) HH:MM.
"""

from __future__ import annotations

from typing import Any

from alerts.anomaly.score import Score
from ioc.timeutil import local

SCALES = {  # scale → (vi, en)
    "point": ("một lần đo đơn lẻ", "a single reading"),
    "level": ("lần đo so với mức thường lệ dài hạn", "the reading against its long-run level"),
    "step": ("bước nhảy so với lần đo trước", "the jump from the previous reading"),
    "spread": ("độ dao động gần đây", "the recent spread of readings"),
}
DIRECTIONS = {"above": ("cao hơn", "above"), "below": ("thấp hơn", "below"),
              "wider": ("dao động mạnh bất thường quanh", "swinging unusually widely around")}
SEASONAL = {"daily": (" (so với cùng giờ các ngày trước)", " (against the same hour on previous days)"),
            "weekly": (" (so với cùng giờ các tuần trước)", " (against the same hour in previous weeks)")}


def fmt_number(x: float, lang: str) -> str:
    """12.5 → '12,5' (vi) / '12.5' (en); 1250 → '1.250' / '1,250'; at most 2 decimals (3 significant digits below 1)."""
    if abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 1 or x == 0:
        text = f"{x:,.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{x:.3g}"  # a series near 0.01 keeps its digits
    if text in ("-0", ""):
        text = "0"
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def _scale_names(scale: str) -> tuple[str, str]:
    if scale.startswith("mean_"):
        k = scale[5:]
        return f"trung bình {k} lần đo gần nhất", f"the mean of the last {k} readings"
    return SCALES.get(scale, (scale, scale))


def explain(sc: Score, t_s: float, indicator: str, window: str) -> dict[str, Any]:
    vi, en = _scale_names(sc.scale)
    svi, sen = SEASONAL.get(sc.seasonal, ("", ""))
    dvi, den = DIRECTIONS.get(sc.direction, DIRECTIONS["above"])
    out: dict[str, Any] = {"indicator": indicator, "window": window, "at": local(t_s).strftime("%H:%M"),
                           "scale_vi": vi + svi, "scale_en": en + sen, "seasonal": sc.seasonal,
                           "direction_vi": dvi, "direction_en": den,
                           "score": fmt_number(sc.likelihood or sc.score, "en"),
                           "score_vi": fmt_number(sc.likelihood or sc.score, "vi")}
    for key, v in (("observed", sc.observed), ("expected", sc.expected), ("expected_low", sc.expected_low),
                   ("expected_high", sc.expected_high)):
        out[key] = fmt_number(v, "en")
        out[f"{key}_vi"] = fmt_number(v, "vi")
    return out
