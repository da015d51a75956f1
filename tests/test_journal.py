"""Journal and checkpoints: accepted input survives a crash, torn writes are ignored."""

from ioc.events import parse_event
from ioc.journal import Checkpoint, Journal, read_checkpoint, write_checkpoint


def ev(i: int):
    return parse_event(b'{"kind":"rain","station":"A","ts":"2026-10-28T13:%02d:00+07:00","rain_mm":%d}' % (i, i))


def test_read_from_position_returns_only_later_events_and_meta(tmp_path):
    j = Journal(tmp_path)
    j.append([ev(1), ev(2)])
    pos = j.position()
    j.append([ev(3)], meta={"sim": {"until": 5.0}})
    j.close()
    j2 = Journal(tmp_path)
    batches = list(j2.read_from(*pos))
    assert [[e.rain_mm for e in events] for events, _ in batches] == [[3.0]]
    assert batches[0][1] == {"sim": {"until": 5.0}}


def test_torn_last_line_is_ignored(tmp_path):
    j = Journal(tmp_path)
    j.append([ev(1)])
    j.close()
    with open(tmp_path / "journal-00000000.jsonl", "ab") as fh:
        fh.write(b'{"kind":"rain","station":"A","ts":"2026-10')
    batches = list(Journal(tmp_path).read_from(0, 0))
    assert [e.rain_mm for events, _ in batches for e in events] == [1.0]


def test_rotate_and_prune(tmp_path):
    j = Journal(tmp_path)
    j.append([ev(1)])
    seg, off = j.rotate()
    j.append([ev(2)])
    j.prune_before(seg)
    assert j.segments() == [seg]
    assert [e.rain_mm for events, _ in j.read_from(seg, off) for e in events] == [2.0]


def test_checkpoint_atomic_round_trip(tmp_path):
    path = tmp_path / "cp.msgpack"
    assert read_checkpoint(path) is None
    write_checkpoint(path, Checkpoint(version=1, journal_segment=3, journal_offset=10, pipeline={"a": [1, 2]}))
    cp = read_checkpoint(path)
    assert cp.journal_segment == 3 and cp.pipeline == {"a": [1, 2]}
    assert not path.with_suffix(".tmp").exists()


def test_consecutive_meta_lines_each_come_back_in_order(tmp_path):
    """A meta line travels with the events after it; the reader applies it before them."""
    j = Journal(tmp_path)
    j.append([], meta={"op": {"op": "ack", "id": "a"}})
    j.append([], meta={"op": {"op": "ack", "id": "b"}})
    j.append([ev(1)])
    out = [(len(events), meta) for events, meta in Journal(tmp_path).read_from(0, 0)]
    assert out == [(0, {"op": {"op": "ack", "id": "a"}}), (1, {"op": {"op": "ack", "id": "b"}})]
