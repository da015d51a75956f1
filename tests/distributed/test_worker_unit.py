"""The partition worker's pure parts: batch cuts for deterministic replays, partitioning."""

from __future__ import annotations

from types import SimpleNamespace

from ioc.catalog import demo_catalog
from ioc.distributed.partitioning import key_of, partition_catalog, partition_of, root_unit
from ioc.distributed.worker import _chunks
from ioc.events import parse_event


def msgs(*offsets):
    return [SimpleNamespace(offset=o) for o in offsets]


def offs(chunks):
    return [[m.offset for m in c] for c in chunks]


def test_live_batches_end_where_the_delivery_ends():
    chunks, carry = _chunks(msgs(5, 6, 7), [], 0)
    assert offs(chunks) == [[5, 6, 7]] and carry == []
    chunks, _ = _chunks(msgs(62, 63, 64, 65), [], 64)
    assert offs(chunks) == [[62, 63], [64, 65]]


def test_replay_cuts_where_the_crashed_run_did_and_waits_for_the_rest():
    chunks, carry = _chunks(msgs(10, 11, 12, 13, 14), [11, 16], 0)
    assert offs(chunks) == [[10, 11]]
    assert [m.offset for m in carry] == [12, 13, 14]  # the crashed run processed 12..16 at once
    chunks, carry = _chunks(msgs(12, 13, 14, 15, 16, 17, 18), [16], 0)
    assert offs(chunks) == [[12, 13, 14, 15, 16], [17, 18]] and carry == []


def test_every_entity_lives_in_exactly_one_partition():
    cat = demo_catalog()
    n = 4
    for feed, ids in (("rain", cat.stations), ("camera", cat.sites)):
        seen = [set((partition_catalog(cat, feed, p, n).stations if feed == "rain" else partition_catalog(cat, feed, p, n).sites)) for p in range(n)]
        assert sum(len(s) for s in seen) == len(ids) and set().union(*seen) == set(ids)
    # dossiers: a unit tree stays whole, keyed by its root
    units = [set(partition_catalog(cat, "dossier", p, n).units) for p in range(n)]
    assert sum(len(u) for u in units) == len(cat.units)
    commune = next(u for u in cat.units.values() if u.level == "commune")
    ev = parse_event(b'{"kind":"dossier","dossier":"d1","unit":"%s","ts":"2026-10-28T08:00:00+07:00","status":"received"}' % commune.id.encode())
    assert key_of(ev, cat) == root_unit(cat, commune.id) == cat.roots()[0]
    p = partition_of(key_of(ev, cat), n)
    assert commune.id in units[p] and set(cat.ancestors(commune.id)) <= units[p]


def test_an_escalation_is_a_transition_of_its_own():
    from ioc.distributed.redis_store import transition_of
    from ioc.records import Alert

    base = dict(rule="rain_risk_level", entity="VP-001", ts="2026-10-28T08:00:00+07:00", id="a1",
                started="2026-10-28T08:00:00+07:00")
    l1 = Alert(state="firing", severity="warning", labels={"level": "1"}, **base)
    l2 = Alert(state="firing", severity="critical", labels={"level": "2"}, **base)
    again = Alert(state="firing", severity="warning", labels={"level": "1"}, value=3.0, **base)
    done = Alert(state="resolved", severity="critical", labels={"level": "2"}, **base)
    assert len({transition_of(a) for a in (l1, l2, done)}) == 3
    assert transition_of(again) == transition_of(l1)  # back to a level it had: an update


def test_rewind_when_delivery_skips_past_the_state():
    """A delivery past the state's next offset (Redis behind the committed offset) is held, not
    processed, and the partition is sought back to its next offset."""
    import asyncio

    from ioc.distributed.worker import Owned, PartitionWorker
    from ioc.metrics import WorkerMetrics

    seeks, held = [], []

    async def seek(tp, off):
        seeks.append((tp, off))

    async def log_start(tp):
        return 0

    w = PartitionWorker(demo_catalog(), store=None, metrics=WorkerMetrics(), partitions=4, seek=seek, log_start=log_start)
    owned = Owned("ioc.rain", 0, "rain", pipeline=None, epoch=1, offset=9)
    w.owned[owned.tp] = owned
    out = asyncio.run(w._contiguous(owned, msgs(10, 11, 20, 21), held.append))
    # 10 and 11 continue the state; 20 does not: held (never acked), and a seek back to 12
    assert [m.offset for m in out] == [10, 11] and [m.offset for m in held] == [20, 21]
    assert seeks == [(("ioc.rain", 0), 12)] and owned.seeking == 12
    owned.offset = 11
    out = asyncio.run(w._contiguous(owned, msgs(21, 22), held.append))  # fetched before the seek: dropped
    assert out == [] and len(seeks) == 1
    out = asyncio.run(w._contiguous(owned, msgs(12, 13), held.append))  # the rewind delivers
    assert [m.offset for m in out] == [12, 13] and owned.seeking is None
