"""SensorThings observations over MQTT (a real Mosquitto broker) → RainEvents / Rejections."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiomqtt
import pytest

from ioc.errors import Reason
from ioc.timeutil import parse_ts
from sensors.sensorthings import SensorThingsSubscriber, convert, datastream_of, load_datastream_map
from sensors.sink import CollectingSink

MAP = {"17": {"kind": "rain", "station": "VP-001"}, "18": {"station": "VP-002", "factor": 0.2},
       "gauge-x": {"kind": "rain", "station": "VP-003"}}


def test_topic_parsing_and_map():
    assert datastream_of("v1.1/Datastreams(17)/Observations") == "17"
    assert datastream_of("v1.1/Datastreams('gauge-x')/Observations") == "gauge-x"
    assert datastream_of("v1.1/Things(1)/Locations") is None
    m = load_datastream_map(MAP)
    assert m["18"].factor == 0.2 and m["17"].kind == "rain"
    with pytest.raises(ValueError, match="datastreams\\[9\\]"):
        load_datastream_map({"9": {"kind": "dossier", "station": "x"}})
    with pytest.raises(ValueError):
        load_datastream_map({"9": {"kind": "rain"}})


CASES = [
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 2.4}', ("VP-001", "2026-10-28T13:10:00+07:00", 2.4)),
    ("18", b'{"phenomenonTime": "2026-10-28T06:05:00Z", "result": 3, "resultTime": "2026-10-28T06:05:02Z"}',
     ("VP-002", "2026-10-28T13:05:00+07:00", 0.6)),
    ("17", b'{"phenomenonTime": "2026-10-28T13:05:00+07:00/2026-10-28T13:10:00+07:00", "result": 0}',
     ("VP-001", "2026-10-28T13:10:00+07:00", 0.0)),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": -0.2}', Reason.NEGATIVE_VALUE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": "2.4"}', Reason.WRONG_TYPE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": null}', Reason.MISSING_FIELD),
    ("17", b'{"result": 1.0}', Reason.MISSING_FIELD),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00", "result": 1.0}', Reason.BAD_TIMESTAMP),
    ("17", b'{"phenomenonTime": "soon", "result": 1.0}', Reason.BAD_TIMESTAMP),
    ("17", b'{"phenomenonTime": ', Reason.BAD_JSON),
    ("17", b'[1]', Reason.NOT_AN_OBJECT),
    ("99", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1.0}', Reason.INVALID_VALUE),
    # ISO 8601 intervals: the end is the event time
    ("17", b'{"phenomenonTime": "2026-10-28T13:05:00+07:00/PT5M", "result": 1}', ("VP-001", "2026-10-28T13:10:00+07:00", 1.0)),
    ("17", b'{"phenomenonTime": "PT5M/2026-10-28T13:10:00+07:00", "result": 1}', ("VP-001", "2026-10-28T13:10:00+07:00", 1.0)),
    ("17", b'{"phenomenonTime": "2026-10-28T13:05:00+07:00/P1M", "result": 1}', Reason.BAD_TIMESTAMP),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00/2026-10-28T13:05:00+07:00", "result": 1}', Reason.BAD_TIMESTAMP),
    ("17", b'{"phenomenonTime": "9999-12-31T23:59:59-12:00/PT1H", "result": 1}', Reason.BAD_TIMESTAMP),
    ("17", b'{"phenomenonTime": "9999-12-31T23:59:59Z", "result": 1}', Reason.BAD_TIMESTAMP),
    ("17", b'{"phenomenonTime": 1793167800, "result": 1}', Reason.BAD_TIMESTAMP),
    # results: huge, not a number
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1e400}', Reason.OUT_OF_RANGE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1e30}', Reason.OUT_OF_RANGE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1' + b"0" * 400 + b'}', Reason.OUT_OF_RANGE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": true}', Reason.WRONG_TYPE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": {"mm": 1}}', Reason.WRONG_TYPE),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": NaN}', Reason.BAD_JSON),
    ("17", b'"just a string"', Reason.NOT_AN_OBJECT),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     Reason.TOO_DEEP),
    ("17", b'{"phenomenonTime": "2026-10-28T13:10:00+07:00", "result": 1, "x": "' + b"y" * 70_000 + b'"}',
     Reason.TOO_LARGE),
]


@pytest.mark.parametrize("ds,payload,expected", CASES)
def test_convert(ds, payload, expected):
    out = convert(f"v1.1/Datastreams({ds})/Observations", payload, load_datastream_map(MAP))
    if isinstance(expected, Reason):
        assert out.reason == expected and out.feed == "rain", out
        assert out.raw == (payload if len(payload) <= 65536 else payload[:4096])
    else:
        station, ts, mm = expected
        assert (out.station, out.t, out.rain_mm) == (station, parse_ts(ts), pytest.approx(mm))


def test_an_observation_update_is_a_correction_of_the_same_reading():
    """Same @iot.id: same (station, ts), even when the update moves phenomenonTime."""
    sink = CollectingSink()
    sub = SensorThingsSubscriber(sink, MAP, identity_max=2)
    topic = "v1.1/Datastreams(17)/Observations"

    def obs(iot_id, ts, mm):
        return json.dumps({"@iot.id": iot_id, "phenomenonTime": ts, "result": mm}).encode()

    sub.handle(topic, obs(501, "2026-10-28T13:10:00+07:00", 2.4))
    sub.handle(topic, obs(501, "2026-10-28T13:10:00+07:00", 2.6))  # corrected result
    sub.handle(topic, obs(501, "2026-10-28T13:15:00+07:00", 2.8))  # the update also moved the time
    sub.handle(topic, obs(502, "2026-10-28T13:15:00+07:00", 1.0))  # another Observation
    sub.handle(topic, obs(503, "2026-10-28T13:20:00+07:00", 1.0))
    sub.handle(topic, obs(501, "2026-10-28T13:25:00+07:00", 3.0))  # 501 left the 2-entry map: a new reading
    sub._flush()
    t = [(e.t, e.rain_mm) for e in sink.events]
    t0 = parse_ts("2026-10-28T13:10:00+07:00")
    assert t == [(t0, 2.4), (t0, 2.6), (t0, 2.8), (t0 + 300, 1.0), (t0 + 600, 1.0), (t0 + 900, 3.0)]
    assert sub.identity.updates == 2 and sub.identity.moved == 1 and len(sub.identity) == 2


@pytest.mark.integration
def test_subscriber_against_mosquitto(mqtt_broker):
    host, port = mqtt_broker
    prefix = f"ioc-test-{uuid.uuid4().hex[:8]}/v1.1"
    sink = CollectingSink()
    good = [(ds, p) for ds, p, exp in CASES[:3] if not isinstance(exp, Reason) and ds != "99"]
    bad = [(ds, p) for ds, p, exp in CASES[:12] if isinstance(exp, Reason) and ds != "99"]

    async def main():
        sub = SensorThingsSubscriber(sink, MAP, host=host, port=port, topic_prefix=prefix, flush_s=0.05)
        assert f"{prefix}/Datastreams('gauge-x')/Observations" in sub.topics()
        stop = asyncio.Event()
        task = asyncio.create_task(sub.run(stop))
        await asyncio.wait_for(sub.ready.wait(), 10)
        async with aiomqtt.Client(host, port) as pub:
            for ds, payload in good + bad:
                await pub.publish(f"{prefix}/Datastreams({ds})/Observations", payload, qos=1)
            obs = json.dumps({"phenomenonTime": "2026-10-28T13:15:00+07:00", "result": 1.2})
            await pub.publish(f"{prefix}/Datastreams('gauge-x')/Observations", obs, qos=1)
        for _ in range(500):
            if len(sink.events) + len(sink.rejections) >= len(good) + len(bad) + 1:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        return sub

    sub = asyncio.run(main())
    assert sub.received == len(good) + len(bad) + 1
    assert sorted((e.station, e.rain_mm) for e in sink.events) == sorted(
        [("VP-001", 2.4), ("VP-002", pytest.approx(0.6)), ("VP-001", 0.0), ("VP-003", 1.2)]
    )
    assert sorted(r.reason for r in sink.rejections) == sorted(
        exp for ds, p, exp in CASES[:12] if isinstance(exp, Reason) and ds != "99"
    )
    assert sink.batches < sub.received  # batched, not one call per message


def test_topic_prefixes():
    sub = SensorThingsSubscriber(CollectingSink(), {"17": {"station": "VP-001"}})
    assert sub.topics() == ["v1.0/Datastreams(17)/Observations", "v1.1/Datastreams(17)/Observations"]
    from sensors.sensorthings import load_prefixes

    assert load_prefixes(["v1.1/", "v1.1", "site/v1.0"]) == ("v1.1", "site/v1.0")
    for bad in ("v1.1/#", "+/v1.0", [], "/", [3]):
        with pytest.raises(ValueError, match="topic_prefixes"):
            load_prefixes(bad)


@pytest.mark.integration
def test_v1_0_and_v1_1_observations_with_iso_intervals(mqtt_broker):
    """Both API versions' topics, interval phenomenonTimes (the end is the time), bad ones refused beside good ones."""
    host, port = mqtt_broker
    tag = uuid.uuid4().hex[:8]
    ds_a, ds_b = f"h4-{tag}-a", f"h4-{tag}-b"  # string ids: no cross-talk with other tests on the shared broker
    sink = CollectingSink()
    msgs = [
        ("v1.0", ds_a, {"@iot.id": 1, "phenomenonTime": "2026-10-28T13:00:00+07:00/PT5M", "result": 1.4}),
        ("v1.1", ds_b, {"@iot.id": 2, "phenomenonTime": "2026-10-28T13:00:00+07:00/2026-10-28T13:05:00+07:00",
                        "result": 0.6}),
        ("v1.1", ds_a, {"@iot.id": 3, "phenomenonTime": "2026-10-28T06:05:00Z/PT1H", "result": 2}),
        ("v1.0", ds_b, {"@iot.id": 4, "phenomenonTime": "2026-10-28T13:00:00+07:00/P1M", "result": 1}),
        ("v1.0", ds_b, {"@iot.id": 5, "phenomenonTime": "2026-10-28T13:05:00+07:00/2026-10-28T13:00:00+07:00",
                        "result": 1}),
        ("v1.1", ds_a, {"@iot.id": 6, "phenomenonTime": "2026-10-28T13:00:00+07:00/PT5X", "result": 1}),
    ]

    async def main():
        sub = SensorThingsSubscriber(sink, {ds_a: {"station": "VP-001"}, ds_b: {"station": "VP-002"}},
                                     host=host, port=port, flush_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(sub.run(stop))
        await asyncio.wait_for(sub.ready.wait(), 10)
        async with aiomqtt.Client(host, port) as pub:
            for prefix, ds, obs in msgs:
                await pub.publish(f"{prefix}/Datastreams('{ds}')/Observations", json.dumps(obs), qos=1)
        for _ in range(500):
            if len(sink.events) + len(sink.rejections) >= len(msgs):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        return sub

    sub = asyncio.run(main())
    assert sub.received == len(msgs)
    assert sorted((e.station, e.t, e.rain_mm) for e in sink.events) == [
        ("VP-001", parse_ts("2026-10-28T13:05:00+07:00"), 1.4),  # v1.0, start/PT5M → start + 5 min
        ("VP-001", parse_ts("2026-10-28T14:05:00+07:00"), 2.0),  # v1.1, 06:05Z/PT1H → 07:05Z
        ("VP-002", parse_ts("2026-10-28T13:05:00+07:00"), 0.6),  # v1.1, start/end → end
    ]
    details = sorted(r.detail for r in sink.rejections)
    assert [r.reason for r in sink.rejections] == [Reason.BAD_TIMESTAMP] * 3
    assert any("years and months are not supported" in d for d in details)
    assert any("ends before it starts" in d for d in details)
    assert any("'PT5X' is not an ISO 8601 duration" in d for d in details)
