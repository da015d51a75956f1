"""Distributed persistence: the same store contract on a real Redis (tests/conftest.py: redis_url)."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from alerts.notify_webhook import WebhookNotifier
from alerts.store_redis import RedisAlertStore

from alerttest_util import T0, engine_for, ind

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_store(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    prefix = f"test-alerts-{uuid.uuid4().hex[:12]}"
    stores = []

    def make():
        s = RedisAlertStore(redis.Redis.from_url(redis_url, decode_responses=True), prefix=prefix)
        stores.append(s)
        return s

    yield make
    stores[0].clear()
    assert list(client.scan_iter(match=f"{prefix}:*")) == []
    client.close()


def test_redis_store_restart_keeps_ack_silence_and_sends_once(rules, redis_store, receiver):
    recv = receiver(fail_first=1)
    store = redis_store()
    eng = engine_for(rules, "rain_24h_very_heavy", "dossier_overdue", store=store)
    (a,) = eng.process([], [ind("rain_mm", "24h", "VP-001", T0, 150)], {"rain": T0})
    (d,) = eng.process([], [ind("dossier_overdue_open", "now", "u1", T0, 3)], {"dossier": T0})
    eng.acknowledge(a.id, by="lan", at=T0 + 30)
    s = eng.add_silence({"unit": "tam-dao"}, ends_at=T0 + 3600)
    notifier = WebhookNotifier(recv.url, sleep=lambda _s: None, max_attempts=3)
    assert notifier.dispatch(store) == 2  # first POST got a 503 and was retried
    del eng

    store2 = redis_store()
    eng2 = engine_for(rules, "rain_24h_very_heavy", "dossier_overdue", store=store2)
    assert {x.id for x in eng2.active()} == {a.id, d.id}
    assert eng2.get(a.id).acknowledged["by"] == "lan"
    assert [x.id for x in eng2.silences()] == [s.id]
    assert eng2.process([], [ind("rain_mm", "24h", "VP-001", T0, 150)], {"rain": T0}) == []
    assert notifier.dispatch(store2) == 0
    (r,) = eng2.process([], [ind("dossier_overdue_open", "now", "u1", T0 + 60, 0)], {"dossier": T0 + 60})
    assert r.state == "resolved"
    assert notifier.dispatch(store2) == 1
    keys = [q["headers"]["Idempotency-Key"] for q in recv.requests]
    assert keys[0] == keys[1]  # the retry reused the key
    assert sorted(set(keys)) == sorted([f"{a.id}:firing", f"{d.id}:firing", f"{d.id}:resolved"])
    assert [e["transition"] for e in eng2.history(d.id)] == ["firing", "resolved"]
    assert [x.id for x in eng2.list(state="resolved")] == [d.id]
    assert json.loads(recv.requests[-1]["body"])["alert"]["state"] == "resolved"


def test_redis_store_keeps_comments_assignee_and_names(rules, redis_store):
    store = redis_store()
    eng = engine_for(rules, "rain_24h_very_heavy", store=store)
    (a,) = eng.process([], [ind("rain_mm", "24h", "VP-001", T0, 150)], {"rain": T0})
    eng.acknowledge(a.id, by="lan", comment="đã nhận", at=T0 + 30)
    eng.comment(a.id, by="minh", text="đang xử lý", at=T0 + 40)
    eng.assign(a.id, to="minh", by="lan", at=T0 + 50)
    s = eng.add_silence({"rule": "rain_*"}, ends_at=T0 + 3600, by="lan")
    eng.remove_silence(s.id, by="minh", at=T0 + 60)
    del eng

    eng2 = engine_for(rules, "rain_24h_very_heavy", store=redis_store())
    b = eng2.get(a.id)
    assert [(c["by"], c["text"]) for c in b.comments] == [("lan", "đã nhận"), ("minh", "đang xử lý")]
    assert b.assignee == {"name": "minh", "by": "lan", "at": "2026-10-28T13:00:50+07:00"}
    assert [(e["transition"], e.get("by")) for e in eng2.history(a.id)] == [
        ("firing", None), ("acknowledged", "lan"), ("commented", "minh"), ("assigned", "lan")]
    assert eng2.silences() == []
    removed = [e for e in store.audit_log() if e["id"] == s.id][-1]
    assert removed["by"] == "minh" and removed["silence"]["expired_by"] == "minh"
