"""Hub: snapshots, seq'd deltas, coalescing, bounded queues, resume, filters."""

import msgspec

from ioc.hub import Hub, Subscription
from ioc.records import Alert, Indicator


def rain(entity: str, value: float, window: str = "24h") -> Indicator:
    return Indicator(name="rain_mm", window=window, entity=entity, ts="2026-10-28T13:10:00+07:00", value=value)


def decode(raw: bytes) -> dict:
    return msgspec.json.decode(raw)


def test_snapshot_holds_latest_value_per_key():
    hub = Hub()
    hub.publish([rain("A", 1.0), rain("B", 2.0)])
    hub.publish([rain("A", 5.0)])
    client = hub.connect(Subscription())
    snap = decode(hub.snapshot_message(client))
    assert snap["type"] == "snapshot" and snap["seq"] == 2 and snap["protocol"] == 1
    assert sorted((r["entity"], r["value"]) for r in snap["records"]) == [("A", 5.0), ("B", 2.0)]


def test_slow_client_gets_latest_value_only_and_increasing_seq():
    coalesced = []
    hub = Hub(on_coalesced=coalesced.append)
    client = hub.connect(Subscription())
    for v in range(10):
        hub.publish([rain("A", float(v))])
    seq, raws = client.take()
    assert seq == 10
    assert [decode(r)["value"] for r in raws] == [9.0]
    assert sum(coalesced) == 9
    hub.publish([rain("B", 1.0)])
    seq2, raws2 = client.take()
    assert seq2 > seq and [decode(r)["entity"] for r in raws2] == ["B"]


def test_queue_is_bounded_and_falls_back_to_snapshot():
    hub = Hub(max_pending=5)
    client = hub.connect(Subscription())
    hub.publish([rain(f"S{i}", 1.0) for i in range(6)])
    assert client.needs_snapshot and not client.pending
    snap = decode(hub.snapshot_message(client))
    assert len(snap["records"]) == 6 and not client.needs_snapshot


def test_resume_sends_only_missed_records_or_none_when_too_old():
    hub = Hub(history_batches=3)
    hub.publish([rain("A", 1.0)])
    hub.publish([rain("B", 1.0)])
    hub.publish([rain("A", 2.0)])
    client = hub.connect(Subscription())
    msg = decode(hub.resume(client, 1))
    assert msg["type"] == "delta" and msg["seq"] == 3
    assert sorted((r["entity"], r["value"]) for r in msg["records"]) == [("A", 2.0), ("B", 1.0)]
    hub.publish([rain("C", 1.0)])
    assert hub.resume(client, 0) is None  # history no longer covers seq 1
    assert hub.resume(client, 99) is None  # from a previous server life


def test_topic_and_entity_filters():
    hub = Hub()
    client = hub.connect(Subscription(topics=frozenset({"alerts"}), entities=frozenset({"A"})))
    alert = Alert(rule="rain_3h_intense", entity="A", state="firing", severity="critical", ts="t", id="x1")
    other = Alert(rule="rain_3h_intense", entity="B", state="firing", severity="critical", ts="t", id="x2")
    hub.publish([rain("A", 1.0), alert, other])
    _, raws = client.take()
    assert [decode(r)["id"] for r in raws] == ["x1"]


def test_resolved_alerts_are_bounded_in_snapshot():
    hub = Hub()
    for i in range(300):
        hub.publish([Alert(rule="r", entity=f"E{i}", state="resolved", severity="info", ts="t", id=f"id{i}")])
    client = hub.connect(Subscription())
    assert len(decode(hub.snapshot_message(client))["records"]) == 200


def test_snapshot_uses_fresh_indicators_once_per_seq():
    calls = []

    def fresh():
        calls.append(1)
        return [rain("A", 7.0)]

    hub = Hub(fresh_indicators=fresh)
    hub.publish([rain("A", 7.0), Alert(rule="r", entity="A", state="firing", severity="info", ts="t", id="a1")])
    c1, c2 = hub.connect(Subscription()), hub.connect(Subscription())
    for c in (c1, c2):
        recs = decode(hub.snapshot_message(c))["records"]
        assert sorted(r["type"] for r in recs) == ["alert", "indicator"]
    assert len(calls) == 1
    hub.publish([rain("A", 8.0)])
    hub.snapshot_message(c1)
    assert len(calls) == 2
