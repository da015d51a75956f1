"""Deferred store commits (the embedded runtime journals a batch before anything of it leaves the
process), Commit.merge, and silences whose times cannot be represented."""

from __future__ import annotations

import pytest

from alerts.lifecycle import Commit, Lifecycle
from alerts.store_sqlite import SqliteAlertStore

from alerttest_util import T0, engine_for, ind


def batch(t, v, station="VP-001"):
    return [], [ind("rain_mm", "24h", station, t, v)], {"rain": t}


def test_deferred_commits_reach_the_store_only_when_written(rules, tmp_path):
    store = SqliteAlertStore(tmp_path)
    eng = engine_for(rules, "rain_24h_very_heavy", store=store)
    eng.defer_commits = True
    (a,) = eng.process(*batch(T0, 120))
    eng.process(*batch(T0 + 300, 130, "VP-002"))
    assert store.outbox_all() == [] and store.get_alert(a.id) is None  # nothing left the engine yet
    commit = eng.take_deferred()
    assert len(commit.outbox) == 2 and len(commit.upserts) == 2
    eng.write_commit(commit)
    assert [o["key"] for o in store.outbox_all()] == [f"{a.id}:firing", commit.outbox[1]["key"]]
    assert not eng.take_deferred()  # taken once
    eng.write_commit(commit)  # a replay re-derives the same commit: still one row per key
    assert len(store.outbox_all()) == 2


def test_a_dropped_deferred_commit_never_reaches_the_store(rules, tmp_path):
    store = SqliteAlertStore(tmp_path)
    eng = engine_for(rules, "rain_24h_very_heavy", store=store)
    eng.defer_commits = True
    eng.process(*batch(T0, 120))
    eng.take_deferred()  # the batch failed: dropped
    eng.defer_commits = False
    assert store.outbox_all() == []


def test_merge_keeps_order_and_the_last_write_of_each_alert():
    a = Commit(audit=[{"id": "x", "transition": "firing"}], upserts={"x": ({"v": 1}, True, {})},
               outbox=[{"key": "x:firing"}])
    b = Commit(audit=[{"id": "x", "transition": "resolved"}], upserts={"y": ({"v": 0}, True, {}), "x": ({"v": 2}, False, {})},
               outbox=[{"key": "x:resolved"}], silences_put=[{"id": "s"}])
    m = a.merge(b)
    assert [e["transition"] for e in m.audit] == ["firing", "resolved"]
    assert m.upserts == {"y": ({"v": 0}, True, {}), "x": ({"v": 2}, False, {})} and list(m.upserts) == ["y", "x"]
    assert [o["key"] for o in m.outbox] == ["x:firing", "x:resolved"] and m.silences_put == [{"id": "s"}]


@pytest.mark.parametrize("ends_at", [1e300, float("inf"), float("nan"), -1e300, 10**30, True, "2026-10-28"])
def test_a_silence_outside_representable_time_is_refused(rules, ends_at):
    eng = engine_for(rules, "rain_24h_very_heavy")
    with pytest.raises(ValueError):
        eng.add_silence({"rule": "rain_*"}, ends_at)
    assert eng.silences() == []


def test_a_stored_silence_that_cannot_apply_is_dropped_on_load():
    lc = Lifecycle()
    lc.restore([], [], [{"id": "bad", "matchers": {"rule": "*"}, "ends_at": 1e300},
                        {"id": "ok", "matchers": {"rule": "*"}, "ends_at": T0 + 3600}])
    assert list(lc.silences) == ["ok"]


def test_check_acknowledge_answers_like_acknowledge(rules):
    from alerts.lifecycle import NotFound

    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = eng.process(*batch(T0, 120))
    assert eng.check_acknowledge(a.id) is True
    eng.acknowledge(a.id, by="lan", at=T0)
    assert eng.check_acknowledge(a.id) is False  # already acknowledged: nothing to journal
    with pytest.raises(NotFound):
        eng.check_acknowledge("nope")
