"""Journal, checkpoints, quarantine and the data-dir lock.

The journal holds validated, accepted input with its batch boundaries; torn
writes are cut off; a damaged line is reported, never fatal; a checkpoint has
two generations.
"""

import os
import subprocess
import sys

import pytest

from ioc.events import parse_event
from ioc.journal import (
    Checkpoint,
    DataDirLock,
    DataDirLocked,
    Journal,
    previous_path,
    read_checkpoint,
    write_checkpoint,
)


def ev(i: int):
    return parse_event(b'{"kind":"rain","station":"A","ts":"2026-10-28T13:%02d:00+07:00","rain_mm":%d}' % (i, i))


def batches(j: Journal, seg: int = 0, off: int = 0):
    return [([e.rain_mm for e in entry.events], entry.now, entry.meta) for entry in j.read_from(seg, off)]


def test_read_from_position_returns_only_later_entries_with_their_now_and_meta(tmp_path):
    j = Journal(tmp_path)
    j.append_batch([ev(1), ev(2)], now=100.0)
    j.flush()
    pos = j.position()
    j.append_batch([ev(3)], now=200.5, sim={"until": 5.0})
    j.flush()
    j.close()
    assert batches(Journal(tmp_path), *pos) == [([3.0], 200.5, {"sim": {"until": 5.0}})]


def test_batches_come_back_exactly_as_written_never_rebatched(tmp_path):
    j = Journal(tmp_path)
    sizes = [1, 5000, 3, 4097, 2]
    k = 0
    for n in sizes:
        j.append_batch([ev(k % 60) for _ in range(n)], now=float(k))
        k += 1
    j.flush()
    entries = list(Journal(tmp_path).read_from(0, 0))
    assert [len(e.events) for e in entries] == sizes
    assert [e.now for e in entries] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_torn_entry_is_cut_off_when_the_journal_opens(tmp_path):
    j = Journal(tmp_path)
    j.append_batch([ev(1)], now=1.0)
    j.flush()
    j.close()
    path = tmp_path / "journal-00000000.jsonl"
    good = path.stat().st_size
    with open(path, "ab") as fh:  # a crash in the middle of the next entry
        fh.write(b'#{"batch":3,"now":2.0}\n' + ev(2).__class__.__name__.encode() + b"\n")
        fh.write(b'{"kind":"rain","station":"A","ts":"2026-10')
    j2 = Journal(tmp_path)
    assert j2.torn_bytes > 0 and path.stat().st_size == good
    j2.append_batch([ev(4)], now=4.0)  # appends after the cut: never glued to half a line
    j2.flush()
    assert [x[0] for x in batches(j2)] == [[1.0], [4.0]]


def test_damaged_line_is_reported_and_the_rest_of_its_entry_kept(tmp_path):
    j = Journal(tmp_path)
    j.append_batch([ev(1), ev(2), ev(3)], now=1.0)
    j.flush()
    j.close()
    path = tmp_path / "journal-00000000.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"kind":"rain","station":"A","ts":"garbage\x00'
    path.write_bytes(b"\n".join(lines))
    (entry,) = Journal(tmp_path).read_from(0, 0)
    assert [e.rain_mm for e in entry.events] == [1.0, 3.0]
    assert len(entry.damaged) == 1 and b"garbage" in entry.damaged[0][0]


def test_undecodable_header_is_reported_and_its_lines_salvaged(tmp_path):
    j = Journal(tmp_path)
    j.append_batch([ev(1)], now=1.0)
    j.flush()
    j.close()
    path = tmp_path / "journal-00000000.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'#{"batch": 2, "now": \n')  # a hand-edited header
        fh.write(b'{"kind":"rain","station":"A","ts":"2026-10-28T13:07:00+07:00","rain_mm":7}\n')
    entries = list(Journal(tmp_path).read_from(0, 0))
    assert [e.kind for e in entries] == ["batch", "bad", "legacy"]
    assert [e.rain_mm for e in entries[2].events] == [7.0]


def test_legacy_journal_without_boundaries_is_still_read(tmp_path):
    path = tmp_path / "journal-00000000.jsonl"
    path.write_bytes(
        b'{"kind":"rain","station":"A","ts":"2026-10-28T13:01:00+07:00","rain_mm":1}\n'
        b'#{"sim":{"until":5.0}}\n'
        b'{"kind":"rain","station":"A","ts":"2026-10-28T13:02:00+07:00","rain_mm":2}\n'
        b'#{"op":{"op":"ack","id":"a"}}\n'
    )
    out = batches(Journal(tmp_path))
    assert out == [([1.0], None, None), ([2.0], None, {"sim": {"until": 5.0}}), ([], None, {"op": {"op": "ack", "id": "a"}})]


def test_ops_come_back_in_order_with_the_batches(tmp_path):
    j = Journal(tmp_path)
    j.append_op({"op": "ack", "id": "a"})
    j.append_batch([ev(1)], now=1.0)
    j.append_op({"op": "ack", "id": "b"})
    j.flush()
    out = [(e.kind, len(e.events), e.meta) for e in Journal(tmp_path).read_from(0, 0)]
    assert out == [("op", 0, {"op": {"op": "ack", "id": "a"}}), ("batch", 1, None), ("op", 0, {"op": {"op": "ack", "id": "b"}})]


def test_rotate_and_prune(tmp_path):
    j = Journal(tmp_path)
    j.append_batch([ev(1)])
    seg, off = j.rotate()
    j.append_batch([ev(2)])
    j.prune_before(seg)
    assert j.segments() == [seg]
    assert [x[0] for x in batches(j, seg, off)] == [[2.0]]


def test_checkpoint_atomic_round_trip_keeps_the_previous_generation(tmp_path):
    path = tmp_path / "cp.msgpack"
    assert read_checkpoint(path) is None
    write_checkpoint(path, Checkpoint(version=1, journal_segment=3, journal_offset=10, pipeline={"a": [1, 2]}))
    write_checkpoint(path, Checkpoint(version=1, journal_segment=4, journal_offset=0, pipeline={"a": [3]}))
    assert read_checkpoint(path).journal_segment == 4
    assert read_checkpoint(previous_path(path)).journal_segment == 3
    assert not path.with_suffix(".tmp").exists()


def test_truncated_checkpoint_raises_on_read(tmp_path):
    path = tmp_path / "cp.msgpack"
    write_checkpoint(path, Checkpoint(version=1, journal_segment=3, journal_offset=10, pipeline={"a": [1, 2]}))
    path.write_bytes(path.read_bytes()[:7])
    with pytest.raises(Exception):
        read_checkpoint(path)


def test_data_dir_lock_is_exclusive_and_names_the_holder(tmp_path):
    lock = DataDirLock(tmp_path)
    with pytest.raises(DataDirLocked) as info:
        DataDirLock(tmp_path)
    assert info.value.pid == str(os.getpid()) and str(tmp_path) in str(info.value)
    lock.release()
    DataDirLock(tmp_path).release()


def test_data_dir_lock_is_released_when_the_holder_is_killed(tmp_path):
    code = f"from ioc.journal import DataDirLock; DataDirLock({str(tmp_path)!r}); print('locked', flush=True); import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(DataDirLocked) as info:
            DataDirLock(tmp_path)
        assert info.value.pid == str(proc.pid)
    finally:
        proc.kill()
        proc.wait(10)
    DataDirLock(tmp_path).release()  # SIGKILL: the kernel released it
