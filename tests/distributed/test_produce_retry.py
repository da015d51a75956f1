"""A produce whose acknowledgement was lost is retried without writing an alert twice."""

from __future__ import annotations

import asyncio
import time

from ioc.distributed.kafka_io import RecordProducer, ensure_topics, read_alerts_since
from ioc.distributed.redis_store import alert_id, transition_of
from ioc.distributed.worker import _kafka_transient, produce_once
from ioc.records import Alert


def _alerts(n: int) -> list[Alert]:
    return [Alert(rule="rain_3h_intense", entity=f"VP-{i:03d}", ts="2026-10-28T08:00:00+07:00", id=f"a{i}",
                  started="2026-10-28T08:00:00+07:00", state="firing", severity="critical") for i in range(n)]


def test_a_lost_acknowledgement_does_not_write_a_transition_twice(proxied_broker):
    kafka, proxy = proxied_broker
    alerts = _alerts(20)

    async def main() -> list[Alert]:
        await ensure_topics(kafka, 2)
        producer = RecordProducer(kafka, request_timeout_s=3.0)
        await producer.start()
        try:
            await producer.send_keyed("ioc.indicators", [(b"warm-up", b"{}")])  # connected before the cut
            attempt = produce_once(producer, lambda since: read_alerts_since(kafka, since), [], alerts)
            proxy.muted = True  # the broker writes the batch; its answer never arrives, the send times out
            failures = 0
            deadline = time.monotonic() + 60
            while True:
                try:
                    await attempt()
                    break
                except Exception as e:  # what PartitionWorker._retry does with an outage of Kafka
                    assert _kafka_transient(e), repr(e)
                    failures += 1
                    proxy.muted = False
                    assert time.monotonic() < deadline, "produce never succeeded"
                    await asyncio.sleep(0.5)
            assert failures >= 1, "the lost acknowledgement was not seen as a failure"
        finally:
            await producer.stop()
        return await read_alerts_since(kafka, 0)

    written = asyncio.run(main())
    keys = [(alert_id(a), transition_of(a)) for a in written]
    assert sorted(keys) == sorted((alert_id(a), transition_of(a)) for a in alerts)  # each exactly once
