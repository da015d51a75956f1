"""Admission maths: the vectorised path equals the sequential definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.window import FUTURE, OK, TOO_LATE, admit_times, bucket_of, buckets_of


def sequential(ts, watermark, now, horizon):
    out, prior, w = [], [], watermark
    for t in ts:
        prior.append(-np.inf if w is None else w)
        ref = now + 300 if now is not None else w
        if ref is not None and t > ref + 86400:
            out.append(FUTURE)
        elif w is not None and t <= w - horizon:
            out.append(TOO_LATE)
        else:
            out.append(OK)
            w = t if w is None else max(w, t)
    return out, prior


@settings(max_examples=200, deadline=None)
@given(
    ts=st.lists(st.integers(0, 5 * 86400).map(float), min_size=1, max_size=30),
    watermark=st.one_of(st.none(), st.integers(0, 3 * 86400).map(float)),
    now=st.one_of(st.none(), st.integers(0, 3 * 86400).map(float)),
)
def test_admit_times_matches_sequential_definition(ts, watermark, now):
    status, prior = admit_times(np.array(ts), watermark, now, 3600.0)
    exp_status, exp_prior = sequential(ts, watermark, now, 3600.0)
    assert status.tolist() == exp_status
    assert prior.tolist() == exp_prior


def test_bucket_is_right_closed():
    assert bucket_of(600.0, 300) == 2 and bucket_of(600.5, 300) == 3 and bucket_of(301.0, 300) == 2
    assert buckets_of(np.array([600.0, 600.5, 301.0]), 300).tolist() == [2, 3, 2]
