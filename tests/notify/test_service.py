"""The service over a real SQLite alert store: a restart resumes the timers from notify.sqlite3 and adds
no delivery twice; a changed configuration file is used at the next round, without a restart."""

from __future__ import annotations

import os
import time

from alerts.lifecycle import Commit
from alerts.notify.config import ConfigSource
from alerts.notify.service import NotifyService
from alerts.store_sqlite import SqliteAlertStore

from tests.notify.helpers import BASE, CATALOG, ENV, UNITS, alert, write

T0 = 1_800_000_000.0


def enqueue(store, record: dict, kind: str = "firing") -> None:
    store.commit(Commit(outbox=[{"key": f"{record['id']}:{kind}", "kind": kind, "alert_id": record["id"],
                                 "ts": record["ts"], "alert": record}]))


def test_restart_resumes_group_wait_and_never_adds_a_delivery_twice(tmp_path):
    data = tmp_path / "data"
    store = SqliteAlertStore(data)
    path = write(tmp_path / "notify.yaml", BASE)
    clock = [T0]

    def service():
        return NotifyService(ConfigSource(path, UNITS, env=ENV), store, data, CATALOG, clock=lambda: clock[0])

    enqueue(store, alert("VP-001"))
    svc = service()
    assert svc.step() == 0 and len(svc.groups) == 1  # waiting for group_wait
    svc.close()
    clock[0] = T0 + 30
    svc = service()  # a restart: the group and its due time come back from notify.sqlite3
    assert svc.step() == 1
    assert [(d["recipient"], d["channel"], d["status"]) for d in svc.store.all()] == [("binh", "telegram", "pending")]
    svc.close()
    svc = service()
    assert svc.step() == 0 and svc.step() == 0 and len(svc.store.all()) == 1  # nothing new, nothing twice
    # the outbox cursor moved: the same row is not folded in again after a restart
    assert svc.store.cursor() == store.outbox_since(0)[-1][0]
    svc.close()


def test_a_changed_file_is_used_at_the_next_round(tmp_path):
    data = tmp_path / "data"
    store = SqliteAlertStore(data)
    path = write(tmp_path / "notify.yaml", BASE)
    clock = [T0]
    svc = NotifyService(ConfigSource(path, UNITS, env=ENV), store, data, CATALOG, clock=lambda: clock[0])
    enqueue(store, alert("VP-001"))
    svc.step()
    clock[0] = T0 + 30
    assert svc.step() == 1
    text = BASE.replace("members: [binh]", "members: [binh, an]").replace(
        "people:\n", 'people:\n  - {id: an, name: "Nguyễn Văn An", language: en, units: [vinh-yen], telegram: "555"}\n')
    write(path, text)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    enqueue(store, alert("VP-002"))
    clock[0] = T0 + 40
    svc.step()
    clock[0] = T0 + 330
    assert svc.step() == 2
    new = {d["recipient"]: d for d in svc.store.all()[1:]}
    assert sorted(new) == ["an", "binh"] and new["an"]["text"].startswith("[Vinh Phuc IOC] WARNING")
    assert svc.source.reloads == 1
    svc.close()
