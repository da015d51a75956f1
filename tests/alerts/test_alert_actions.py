"""Attributable operator actions (issue 17): acknowledge, comment thread, assign/unassign, silence expiry.

Each records the acting person's name; the audit log shows it; SQLite store, checkpoint state and a
journal replay (apply_op) all give the same alert back; none of them notifies anybody again.
"""

from __future__ import annotations

import json

import pytest

from alerts.cap import alert_to_cap
from alerts.lifecycle import MAX_COMMENTS, NotActive, NotFound, ThreadFull
from alerts.notify_webhook import WebhookNotifier
from alerts.store_sqlite import SqliteAlertStore
from ioc.records import encode
from ioc.wiring import apply_op

from alerttest_util import T0, engine_for, ind


def fire(eng, t=T0, v=120.0, station="VP-001"):
    return eng.process([], [ind("rain_mm", "24h", station, t, v)], {"rain": t})


def test_second_ack_with_comment_appends_it_and_without_changes_nothing(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = fire(eng)
    first = eng.acknowledge(a.id, by="lan", comment="đã gọi trạm", at=T0 + 60)
    assert first.acknowledged == {"by": "lan", "at": "2026-10-28T13:01:00+07:00", "comment": "đã gọi trạm"}
    second = eng.acknowledge(a.id, by="minh", comment="xã đã sơ tán 12 hộ", at=T0 + 120)
    assert second.acknowledged == first.acknowledged  # the first acknowledgement stands ...
    assert second.comments == [  # ... and both comments are kept, each with its author and time
        {"by": "lan", "at": "2026-10-28T13:01:00+07:00", "text": "đã gọi trạm"},
        {"by": "minh", "at": "2026-10-28T13:02:00+07:00", "text": "xã đã sơ tán 12 hộ"}]
    assert eng.acknowledge(a.id, by="hoa", at=T0 + 180) == second  # no comment: a no-op
    hist = eng.history(a.id)
    assert [(h["transition"], h.get("by")) for h in hist] == [
        ("firing", None), ("acknowledged", "lan"), ("commented", "minh")]
    assert hist[2]["text"] == "xã đã sơ tán 12 hộ" and "comments" not in hist[2]["alert"]
    assert [u.comments[-1]["by"] for u in eng.drain_updates()] == ["lan", "minh"]  # the walls hear of both


def test_comment_thread_is_bounded_and_refused_on_resolved_alerts(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = fire(eng)
    for i in range(MAX_COMMENTS):
        eng.comment(a.id, by="lan", text=f"ghi chú {i}", at=T0 + i)
    with pytest.raises(ThreadFull, match=str(MAX_COMMENTS)):
        eng.comment(a.id, by="lan", text="one too many", at=T0 + 999)
    with pytest.raises(ThreadFull):
        eng.check_acknowledge(a.id, "an ack that would add a comment")
    assert eng.check_acknowledge(a.id) is True  # acknowledging without a comment still works
    assert len(eng.get(a.id).comments) == MAX_COMMENTS
    # equal comments in the same second are still two entries of the thread and of the audit log
    (b,) = fire(eng, station="VP-002")
    eng.comment(b.id, by="lan", text="ok", at=T0 + 5)
    eng.comment(b.id, by="lan", text="ok", at=T0 + 5)
    assert len(eng.get(b.id).comments) == 2
    assert [h["n"] for h in eng.history(b.id) if h["transition"] == "commented"] == [1, 2]
    (r,) = fire(eng, T0 + 300, 10.0, station="VP-002")
    assert r.state == "resolved" and len(r.comments) == 2  # the thread stays with the resolved alert
    with pytest.raises(NotActive):
        eng.comment(b.id, by="lan", text="late", at=T0 + 400)
    with pytest.raises(NotFound):
        eng.assign("nope", to="lan", by="minh", at=T0)


def test_assign_reassign_unassign_with_names(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = fire(eng)
    assert eng.check_assign(a.id, "hoa") is True
    x = eng.assign(a.id, to="hoa", by="lan", at=T0 + 60)
    assert x.assignee == {"name": "hoa", "by": "lan", "at": "2026-10-28T13:01:00+07:00"}
    assert eng.check_assign(a.id, "hoa") is False and eng.assign(a.id, to="hoa", by="minh", at=T0 + 90) == x
    y = eng.assign(a.id, to="minh", by="minh", at=T0 + 120)
    assert y.assignee["name"] == "minh"
    z = eng.unassign(a.id, by="lan", at=T0 + 180)
    assert z.assignee is None and eng.unassign(a.id, by="lan", at=T0 + 200) == z
    assert eng.check_assign(a.id, None) is False
    acts = [(h["transition"], h.get("by"), h.get("to"), h.get("previous")) for h in eng.history(a.id)[1:]]
    assert acts == [("assigned", "lan", "hoa", None), ("assigned", "minh", "minh", "hoa"),
                    ("unassigned", "lan", None, "minh")]
    assert b'"assignee"' not in encode(z)  # unset fields stay off the wire


def test_silence_expiry_records_who(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    s = eng.add_silence({"rule": "rain_*"}, ends_at=T0 + 86400, by="lan", created_at=T0)
    assert eng.remove_silence(s.id, by="minh", at=T0 + 60) is True
    added, removed = [e for e in eng._lc.audit if e["id"] == s.id]
    assert (added["transition"], added["by"]) == ("silence_added", "lan")
    assert (removed["transition"], removed["by"]) == ("silence_removed", "minh")
    assert removed["silence"]["expired_by"] == "minh" and removed["silence"]["expired_at"] == T0 + 60


def test_actions_survive_store_restart_and_notify_nobody_twice(rules, tmp_path, receiver):
    recv = receiver()
    store = SqliteAlertStore(tmp_path)
    eng = engine_for(rules, "rain_24h_very_heavy", store=store)
    (a,) = fire(eng)
    eng.acknowledge(a.id, by="lan", comment="đã nhận", at=T0 + 60)
    eng.acknowledge(a.id, by="minh", comment="đã báo xã", at=T0 + 61)
    eng.assign(a.id, to="minh", by="lan", at=T0 + 62)
    notifier = WebhookNotifier(recv.url, sleep=lambda s: None)
    assert notifier.dispatch(store) == 1  # the firing only: actions never notify
    store.close()

    store2 = SqliteAlertStore(tmp_path)
    eng2 = engine_for(rules, "rain_24h_very_heavy", store=store2)
    (b,) = eng2.active()
    assert [c["by"] for c in b.comments] == ["lan", "minh"] and b.assignee["name"] == "minh"
    assert b.acknowledged["by"] == "lan"
    assert [(h["transition"], h.get("by")) for h in eng2.history(a.id)] == [
        ("firing", None), ("acknowledged", "lan"), ("commented", "minh"), ("assigned", "lan")]
    assert notifier.dispatch(store2) == 0
    assert [json.loads(q["body"])["kind"] for q in recv.requests] == ["firing"]


def test_journal_replay_and_checkpoint_state_give_the_same_alert(rules):
    """What a crash restart does: checkpoint state (JSON) or a fresh engine + the journaled ops."""
    ops = [{"op": "ack", "id": None, "by": "lan", "comment": "đã nhận", "at": T0 + 60},
           {"op": "comment", "id": None, "by": "minh", "text": "đang xử lý", "at": T0 + 61},
           {"op": "ack", "id": None, "by": "minh", "comment": "thêm ghi chú", "at": T0 + 62},
           {"op": "assign", "id": None, "to": "hoa", "by": "minh", "at": T0 + 63},
           {"op": "unassign", "id": None, "by": "lan", "at": T0 + 64},
           {"op": "assign", "id": None, "to": "lan", "by": "lan", "at": T0 + 65}]

    def run():
        eng = engine_for(rules, "rain_24h_very_heavy")
        (a,) = fire(eng)
        for op in ops:
            apply_op(eng, {**op, "id": a.id})
        return eng, a.id

    eng1, aid = run()
    eng2, _ = run()
    assert encode(eng1.get(aid)) == encode(eng2.get(aid))  # deterministic
    got = eng1.get(aid)
    assert [(c["by"], c["text"]) for c in got.comments] == [("lan", "đã nhận"), ("minh", "đang xử lý"),
                                                            ("minh", "thêm ghi chú")]
    assert got.assignee == {"name": "lan", "by": "lan", "at": "2026-10-28T13:01:05+07:00"}
    restored = engine_for(rules, "rain_24h_very_heavy")
    restored.set_state(json.loads(json.dumps(eng1.get_state())))
    assert encode(restored.get(aid)) == encode(got)
    # a replayed action for an alert that is gone is skipped, not an error
    apply_op(restored, {"op": "comment", "id": "gone", "by": "lan", "text": "x", "at": T0})
    apply_op(restored, {"op": "silence_remove", "id": "gone"})  # a journal from before issue 17


def test_state_without_the_new_fields_still_loads(rules):
    eng = engine_for(rules, "rain_24h_very_heavy")
    (a,) = fire(eng)
    eng.acknowledge(a.id, by="lan", comment="ok", at=T0 + 60)
    state = json.loads(json.dumps(eng.get_state()))
    for rec, _meta in state["lifecycle"]["active"]:  # as an older version wrote it
        rec.pop("comments"), rec.pop("assignee", None)
    old = engine_for(rules, "rain_24h_very_heavy")
    old.set_state(state)
    b = old.get(a.id)
    assert b.comments == [] and b.assignee is None and b.acknowledged["by"] == "lan"
    assert old.comment(a.id, by="minh", text="tiếp", at=T0 + 70).comments[-1]["by"] == "minh"


def test_cap_of_an_alert_with_comments_and_assignee_parses_and_keeps_notes_internal(rules, catalog):
    from xml.etree import ElementTree as ET

    eng = engine_for(rules, "rain_3h_intense", catalog=catalog)
    (a,) = eng.process([], [ind("rain_mm", "3h", "VP-002", T0, 80)], {"rain": T0})
    eng.acknowledge(a.id, by="lan", comment="ghi chú nội bộ <b>&", at=T0 + 10)
    x = eng.assign(a.id, to="minh", by="lan", at=T0 + 20)
    xml = alert_to_cap(x, catalog=catalog, rule=eng.rule(x.rule))
    ET.fromstring(xml)
    public = xml.replace("thông minh".encode(), b"")  # the default senderName, "Trung tâm Điều hành thông minh ..."
    assert "nội bộ".encode() not in xml and b"minh" not in public  # operator notes are not published
