"""The embedded Runtime in-process (real files, real SQLite store): what is journaled, when things
leave the process, containment of a failing batch, restore passes around a poisoned entry,
and exact recovery after an abandoned (crashed) runtime.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from ioc.catalog import demo_catalog
from ioc.config import Config
from ioc.events import parse_event
from ioc.journal import Journal
from ioc.runtime import BatchReport, Runtime, cancel_and_wait
from ioc.timeutil import format_ts, parse_ts
from ioc.wiring import build_alerting, build_pipeline

CAT = demo_catalog()
T0 = parse_ts("2026-10-28T08:00:00+07:00")
STATIONS = sorted(CAT.stations)[:6]


def rain(station: str, t: float, mm: float):
    return parse_event(msgspec.json.encode({"kind": "rain", "station": station, "ts": format_ts(t), "rain_mm": mm}))


def step(i: int, half: int | None = None) -> list:
    """Readings of step i (station k at +20·k s); a storm on the first three stations from step 6."""
    out = []
    for k, st in enumerate(STATIONS):
        if half is not None and k // 3 != half:
            continue
        out.append(rain(st, T0 + i * 300 + 20 * k, 9.0 if (k < 3 and 6 <= i < 30) else 0.2))
    return out


class Rig:
    """A runtime with the alerting adapter, as `ioc run` wires it (clock fixed: nothing is future-dated)."""

    def __init__(self, data: Path) -> None:
        self.config = Config(data_dir=data, checkpoint_interval_s=3600)
        self.alerting = build_alerting(self.config, CAT)
        self.runtime = Runtime(self.config, CAT, build_pipeline(CAT, self.alerting.engine),
                               clock=lambda: T0 + 86400 * 30)
        self.alerting.attach(self.runtime)

    async def start(self) -> "Rig":
        await self.runtime.start()
        return self

    async def crash(self) -> None:
        """As SIGKILL: no stop, no final checkpoint; the OS would free the lock and the files."""
        await cancel_and_wait(self.runtime.tasks)
        self.runtime.lock.release()
        self.runtime.journal.close()
        self.alerting.close()

    async def stop(self) -> None:
        await self.runtime.stop()
        self.alerting.close()

    def alerts(self):
        return sorted((a.id, a.rule, a.entity, a.started, a.state, (a.acknowledged or {}).get("comment"))
                      for a in self.alerting.engine.list(limit=10000))


def run(coro):
    return asyncio.run(coro)


def test_submit_reports_per_position_and_journals_only_accepted_events(tmp_path):
    async def main():
        rig = await Rig(tmp_path).start()
        rt = rig.runtime
        first = step(0)
        assert await rt.submit(first, wait=True) == BatchReport([], [], [])
        again = [first[1], rain(STATIONS[0], T0 - 100 * 86400, 1.0),
                 rain(STATIONS[0], T0 + 86400 * 31, 1.0), step(1)[0]]
        report = await rt.submit(again, positions=[3, 5, 6, 9], wait=True)
        assert sorted((r.position, str(r.reason)) for r in report.rejections) == [(5, "too_late"), (6, "future_timestamp")]
        assert report.duplicates == [3]
        await rig.stop()
        entries = [e for e in Journal(tmp_path / "journal").read_from(0, 0) if e.kind == "batch"]
        # the first submission crosses a 5-minute step: two entries (one group); of the second, only
        # the new reading is journaled (the duplicate and the refused ones never are)
        assert [len(e.events) for e in entries] == [1, len(first) - 1, 1]
        assert entries[-1].events[0] == step(1)[0] and entries[-1].now == T0 + 86400 * 30

    run(main())


def test_crash_at_any_batch_restores_the_same_alerts_and_acknowledgements(tmp_path):
    async def script(data: Path, crash_after: set[int]):
        rig = await Rig(data).start()
        for i in range(40):
            for half in (0, 1):  # batches that do not line up with the 5-minute steps
                await rig.runtime.submit(step(i, half), wait=True)
            if i == 16:
                a = sorted((a for a in rig.alerting.engine.list(state="active") if a.rule == "rain_3h_intense"), key=lambda a: a.entity)[0]
                from ioc.wiring import JournaledActions

                JournaledActions(rig.alerting.engine, rig.runtime).acknowledge(a.id, "op", "đã nhận", at=T0)
            if i in crash_after:
                await rig.crash()
                rig = await Rig(data).start()
        result = rig.alerts()
        await rig.stop()
        return result

    ref = run(script(tmp_path / "ref", set()))
    got = run(script(tmp_path / "crash", {3, 7, 15, 16, 17, 29, 35}))
    assert len(ref) >= 6 and any(r[5] == "đã nhận" for r in ref)
    assert got == ref


class Boom(Exception):
    pass


def test_a_batch_that_raises_is_answered_never_journaled_and_the_state_rebuilt(tmp_path, monkeypatch):
    async def main():
        rig = await Rig(tmp_path).start()
        rt = rig.runtime
        for i in range(10):
            await rt.submit(step(i), wait=True)
        before = (dict(rt.watermarks()), rig.alerts(), rt.pipeline.get_state())
        outbox = len(rig.alerting.store.outbox_all())
        real = rt.pipeline.processors["rain"].process

        def half_then_boom(events, now=None):
            out = real(events, now)  # the state is changed ...
            if any(ev.rain_mm == 80.0 for ev in events):
                raise Boom("processor bug")  # ... then the processor fails on this input
            return out

        monkeypatch.setattr(rt.pipeline.processors["rain"], "process", half_then_boom)
        storm = [rain(STATIONS[0], T0 + 10 * 300 + s, 80.0) for s in (1, 2)]
        report = await rt.submit(storm, positions=[0, 1], wait=True)
        assert [(r.position, str(r.reason)) for r in report.rejections] == [(0, "internal_error"), (1, "internal_error")]
        monkeypatch.undo()
        assert rt.health()["status"] == "degraded" and rt.quarantined == 0
        assert (dict(rt.watermarks()), rig.alerts()) == before[:2]  # nothing half-applied
        same = msgspec.msgpack.decode(msgspec.msgpack.encode(rt.pipeline.get_state()))
        assert same == msgspec.msgpack.decode(msgspec.msgpack.encode(before[2]))
        assert len(rig.alerting.store.outbox_all()) == outbox  # nothing of it reached the notifier
        assert rt.metrics.batch_failures.labels("http")._value.get() == 1
        # it goes on: the next batch is processed, a checkpoint clears the degraded state
        assert not (await rt.submit(step(10), wait=True)).rejections
        await rt.checkpoint_async()
        assert rt.health()["status"] == "ok"
        await rig.stop()
        journaled = [ev for e in Journal(tmp_path / "journal").read_from(0, 0) for ev in e.events]
        assert not any(ev.rain_mm == 80.0 for ev in journaled)

    run(main())


def test_an_entry_that_fails_to_reprocess_is_quarantined_and_the_restore_starts_over(tmp_path, monkeypatch):
    async def main():
        rig = await Rig(tmp_path).start()
        for i in range(8):
            await rig.runtime.submit(step(i), wait=True)
        await rig.crash()
        ref = Rig(tmp_path)
        await ref.start()
        expected = (dict(ref.runtime.watermarks()), ref.alerts())
        await ref.crash()

        # a later version refuses what an older one journaled: station VP-003's entry raises on replay
        journal = tmp_path / "journal" / "journal-00000000.jsonl"
        poison = b'#{"batch":1,"now":null}\n' + msgspec.json.encode(
            {"kind": "rain", "station": "POISON", "ts": format_ts(T0 + 8 * 300), "rain_mm": 1.0}) + b"\n"
        journal.write_bytes(journal.read_bytes() + poison)
        from streams.rain import RainProcessor

        real = RainProcessor.process

        def picky(self, events, now=None):
            out = real(self, events, now)
            if any(ev.station == "POISON" for ev in events):
                raise Boom("cannot re-process")
            return out

        monkeypatch.setattr(RainProcessor, "process", picky)
        rig = Rig(tmp_path)
        await rig.start()
        rt = rig.runtime
        assert (dict(rt.watermarks()), rig.alerts()) == expected  # the poison's half-applied effect is gone
        assert rt.quarantined == 1 and rt.health()["status"] == "degraded"
        assert rt.metrics.restore_quarantined.labels("journal_entry")._value.get() == 1
        q = [json.loads(x) for x in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
        assert [x["what"] for x in q] == ["journal_entry"] and "POISON" in q[0]["raw"]
        await rig.stop()

    run(main())


def test_nothing_reaches_the_alert_store_before_its_journal_entry_is_flushed(tmp_path, monkeypatch):
    async def main():
        rig = await Rig(tmp_path).start()
        rt = rig.runtime
        order: list[str] = []
        real_flush, real_commit = rt.journal.flush, rig.alerting.store.commit
        monkeypatch.setattr(rt.journal, "flush", lambda: (order.append("journal"), real_flush())[1])
        monkeypatch.setattr(rig.alerting.store, "commit", lambda c: (order.append("store"), real_commit(c))[1])
        for i in range(12):
            await rt.submit(step(i), wait=True)
        assert "store" in order
        for k, what in enumerate(order):
            if what == "store":
                assert order[k - 1] == "journal"
        await rig.stop()

    run(main())


def test_an_unanswered_torn_submission_is_dropped_whole(tmp_path):
    j = Journal(tmp_path)
    j.append_batch([step(0)[0]], now=1.0)
    j.append_batch([step(1)[0]], now=1.0, more=True)  # a submission of two segments, the crash after the first
    j.flush()
    j.close()
    j2 = Journal(tmp_path)
    assert j2.torn_bytes > 0
    assert [len(e.events) for e in j2.read_from(0, 0)] == [1]


@pytest.mark.parametrize("ends_at", [1e300, float("inf"), float("nan"), -1e300, 10**30])
def test_a_silence_outside_representable_time_is_refused_and_never_journaled(tmp_path, ends_at):
    async def main():
        rig = await Rig(tmp_path).start()
        from ioc.wiring import JournaledActions

        actions = JournaledActions(rig.alerting.engine, rig.runtime)
        with pytest.raises(ValueError):
            actions.add_silence({"rule": "rain_*"}, ends_at, by="op")
        await rig.stop()
        assert not [e for e in Journal(tmp_path / "journal").read_from(0, 0) if e.kind == "op"]

    run(main())


def test_a_journal_write_that_fails_leaves_no_half_entry_and_no_state(tmp_path, monkeypatch):
    async def main():
        rig = await Rig(tmp_path).start()
        rt = rig.runtime
        for i in range(4):
            await rt.submit(step(i), wait=True)
        before = dict(rt.watermarks())
        real = rt.journal.append_batch

        def disk_full(events, now=None, sim=None, more=False):
            rt.journal._fh.write(b'#{"batch":9,"now":1.0}\n{"kind":"ra')  # part of it reached the file
            rt.journal._fh.flush()
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(rt.journal, "append_batch", disk_full)
        report = await rt.submit(step(4), wait=True)
        assert {str(r.reason) for r in report.rejections} == {"internal_error"}
        assert len(report.rejections) == len(step(4))
        monkeypatch.setattr(rt.journal, "append_batch", real)
        assert dict(rt.watermarks()) == before  # rebuilt: the unjournaled batch is not in the state
        assert "journal" in " ".join(rt.health()["degraded"])
        assert not (await rt.submit(step(4), wait=True)).rejections  # the retry goes through
        await rig.crash()
        rig = await Rig(tmp_path).start()
        assert rig.runtime.quarantined == 0 and dict(rig.runtime.watermarks())["rain"] > before["rain"]
        await rig.stop()

    run(main())
