"""Webhook notifier against a real local HTTP receiver: retries with backoff, stable idempotency key."""

from __future__ import annotations

import asyncio
import json

from alerts.notify_webhook import AsyncWebhookNotifier, WebhookNotifier
from alerts.store_sqlite import SqliteAlertStore

from alerttest_util import T0, engine_for, free_port, ind


def _fire(rules, store):
    eng = engine_for(rules, "rain_3h_intense", store=store)
    (a,) = eng.process([], [ind("rain_mm", "3h", "VP-001", T0, 90)], {"rain": T0})
    return eng, a


def test_failure_then_retry_with_backoff_and_same_idempotency_key(rules, tmp_path, receiver):
    recv = receiver(fail_first=2)
    store = SqliteAlertStore(tmp_path)
    _, a = _fire(rules, store)
    slept = []
    n = WebhookNotifier(recv.url, sleep=slept.append, backoff_s=0.5, max_attempts=4)
    assert n.dispatch(store) == 1
    assert len(recv.requests) == 3 and slept == [0.5, 1.0]  # exponential backoff between attempts
    keys = {r["headers"]["Idempotency-Key"] for r in recv.requests}
    assert keys == {f"{a.id}:firing"}
    body = json.loads(recv.requests[-1]["body"])
    assert body["idempotency_key"] == f"{a.id}:firing" and body["kind"] == "firing"
    assert body["alert"]["id"] == a.id and body["alert"]["message"]["vi"]
    assert recv.requests[-1]["headers"]["Content-Type"] == "application/json"
    assert store.outbox_status(f"{a.id}:firing")["status"] == "delivered"
    assert n.dispatch(store) == 0 and len(recv.requests) == 3


def test_unreachable_receiver_stays_pending_and_is_retried_later_with_same_key(rules, tmp_path, receiver):
    store = SqliteAlertStore(tmp_path)
    _, a = _fire(rules, store)
    now = [1000.0]
    dead = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", sleep=lambda s: None, max_attempts=2,
                           retry_later_s=60, clock=lambda: now[0], timeout_s=1)
    assert dead.dispatch(store) == 0
    st = store.outbox_status(f"{a.id}:firing")
    assert st["status"] == "pending" and st["attempts"] == 2 and st["next_at"] == 1060.0
    recv = receiver()
    live = WebhookNotifier(recv.url, sleep=lambda s: None, clock=lambda: now[0])
    assert live.dispatch(store) == 0  # not due yet
    now[0] = 1061.0
    assert live.dispatch(store) == 1
    assert recv.requests[0]["headers"]["Idempotency-Key"] == f"{a.id}:firing"


def test_permanent_4xx_is_marked_failed(rules, tmp_path, receiver):
    recv = receiver(fail_first=5, fail_status=400)
    store = SqliteAlertStore(tmp_path)
    _, a = _fire(rules, store)
    n = WebhookNotifier(recv.url, sleep=lambda s: None)
    assert n.dispatch(store) == 0 and len(recv.requests) == 1
    assert store.outbox_status(f"{a.id}:firing")["status"] == "failed"


def test_async_notifier_and_cap_format(rules, tmp_path, receiver, catalog):
    recv = receiver(fail_first=1)
    store = SqliteAlertStore(tmp_path)
    _, a = _fire(rules, store)

    async def nosleep(_s):
        return None

    async def go():
        n = AsyncWebhookNotifier(recv.url, sleep=nosleep, format="cap", catalog=catalog)
        try:
            return await n.dispatch(store)
        finally:
            await n.aclose()

    assert asyncio.run(go()) == 1
    assert len(recv.requests) == 2
    assert recv.requests[1]["headers"]["Content-Type"].startswith("application/cap+xml")
    assert b"urn:oasis:names:tc:emergency:cap:1.2" in recv.requests[1]["body"]
