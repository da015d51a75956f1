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
