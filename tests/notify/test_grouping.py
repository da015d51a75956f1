"""Grouping, escalation and messages (pure): one message per incident and person, timers, keys."""

from __future__ import annotations

from alerts.notify.messages import render
from alerts.notify.planner import Planner

from tests.notify.helpers import CATALOG, alert, cfg

T0 = 1_800_000_000.0
STORM = [s for s in CATALOG.stations if CATALOG.stations[s].district in ("vinh-yen", "tam-dao")]  # 4 + 6


def run(planner, c, groups, records, now, acked=None):
    for r in records:
        planner.ingest(c, groups, r, now)
    _, new = planner.tick(c, groups, now, lambda ids: {i: {"by": "op"} for i in ids if i in (acked or set())})
    return new


def test_a_storm_is_one_message_per_person_listing_their_stations():
    c, p, groups = cfg(), Planner(CATALOG.ancestors), {}
    assert run(p, c, groups, [alert(s) for s in STORM], T0) == []  # group_wait holds the first message
    new = run(p, c, groups, [], T0 + 30)
    by = {d.recipient: d for d in new}
    assert sorted(by) == ["binh", "cuong"] and all(d.channel == "telegram" for d in new)
    binh = by["binh"].text
    assert binh.count("\n- ") == 4 and "Trạm đo mưa Liên Bảo" in binh and "104,2 mm" in binh  # comma decimal
    assert by["cuong"].text.count("\n- ") == 6 and "Liên Bảo" not in by["cuong"].text
    assert by["binh"].subject == "[IOC Vĩnh Phúc] CẢNH BÁO: 4 cảnh báo" and by["binh"].kind == "firing"
    assert run(p, c, groups, [], T0 + 60) == []  # nothing changed, nothing sent


def test_update_waits_group_interval_then_resolution_is_one_more_message():
    c, p, groups = cfg(), Planner(CATALOG.ancestors), {}
    run(p, c, groups, [alert("VP-001"), alert("VP-002")], T0)
    assert len(run(p, c, groups, [], T0 + 30)) == 1  # binh only (Vĩnh Yên)
    assert run(p, c, groups, [alert("VP-003")], T0 + 40) == []  # within group_interval of the first message
    upd = run(p, c, groups, [], T0 + 330)
    assert [d.kind for d in upd] == ["update"] and upd[0].text.count("\n- ") == 3
    resolved = [alert(s, state="resolved") for s in ("VP-001", "VP-002", "VP-003")]
    assert run(p, c, groups, resolved, T0 + 400) == []
    end = run(p, c, groups, [], T0 + 630)
    assert [d.kind for d in end] == ["resolved"] and "ĐÃ KẾT THÚC" in end[0].subject
    assert groups == {}  # the incident is over


def test_escalation_after_the_route_time_unless_acknowledged():
    c, p = cfg(), Planner(CATALOG.ancestors)
    g1, g2 = {}, {}
    run(p, c, g1, [alert("VP-001")], T0)
    run(p, c, g2, [alert("VP-001")], T0)
    run(p, c, g1, [], T0 + 30)
    run(p, c, g2, [], T0 + 30)
    assert run(p, c, g1, [], T0 + 30 + 599) == []
    tier = run(p, c, g1, [], T0 + 30 + 600)
    assert [(d.recipient, d.kind, d.transition) for d in tier] == [("tinh", "unacked", "tier1")]
    assert "Chưa ai xác nhận sau 10 phút." in tier[0].text
    assert run(p, c, g2, [], T0 + 30 + 600, acked={"id-VP-001"}) == []  # acknowledged: stopped
    assert next(iter(g2.values())).escalation_stopped == "acknowledged"
    assert run(p, c, g2, [], T0 + 30 + 1200) == []


def test_replaying_the_same_transitions_derives_the_same_keys():
    c, p = cfg(), Planner(CATALOG.ancestors)
    keys = []
    for _ in range(2):
        groups = {}
        run(p, c, groups, [alert(s) for s in STORM], T0)
        keys.append(sorted(d.key for d in run(p, c, groups, [], T0 + 30)))
    assert keys[0] == keys[1] and keys[0][0].startswith("binh|telegram|incident=inc1|msg:")


def test_quiet_hours_hold_the_non_critical_and_not_the_critical():
    from ioc.timeutil import parse_ts

    night = parse_ts("2026-10-28T23:00:00+07:00")
    c, p = cfg(), Planner(CATALOG.ancestors)
    groups = {}
    run(p, c, groups, [alert("VP-001", labels={"category": "data_quality"})], night)
    [d] = run(p, c, groups, [], night + 30)
    assert d.recipient == "eng" and d.next_at == parse_ts("2026-10-29T06:00:00+07:00")
    groups = {}
    run(p, c, groups, [alert("VP-001", severity="critical")], night)
    eng = [d for d in run(p, c, groups, [], night + 30) if d.recipient == "eng"]
    assert eng and eng[0].next_at == night + 30 and eng[0].text.startswith("[Vinh Phuc IOC] CRITICAL")


def test_message_in_english_with_more_than_ten_and_a_link():
    alerts = [alert(s) for s in list(CATALOG.stations)[:15]]
    m = render(alerts, "firing", "en", title="IOC", link="https://ioc.example.vn/console#alert=x")
    assert m.subject == "[IOC] WARNING: 15 alerts" and "… and 5 more" in m.text and "104.2 mm" in m.text
    assert m.text.endswith("Open: https://ioc.example.vn/console#alert=x") and "2026-10-28 13:10 (UTC+7)" in m.text
    vi = render(alerts[:1], "firing", "vi")
    assert "13:10 28/10/2026" in vi.text and len(vi.short) <= 160


def test_a_severity_rise_is_an_escalation_update_and_a_same_content_replay_is_nothing():
    c, p, groups = cfg(), Planner(CATALOG.ancestors), {}
    run(p, c, groups, [alert("VP-001")], T0)
    [first] = run(p, c, groups, [], T0 + 30)
    up = alert("VP-001", severity="critical")
    run(p, c, groups, [up], T0 + 100)
    news = run(p, c, groups, [], T0 + 330)
    binh = [d for d in news if d.recipient == "binh"]
    assert [d.kind for d in binh] == ["escalated"] and binh[0].subject.startswith("[IOC Vĩnh Phúc] KHẨN CẤP — Tăng mức")
    assert binh[0].key != first.key
    run(p, c, groups, [up], T0 + 400)  # the same transition again (a replayed outbox row)
    assert [d for d in run(p, c, groups, [], T0 + 700) if d.recipient == "binh"] == []


def test_a_person_first_told_by_an_update_gets_a_first_message():
    c, p, groups = cfg(), Planner(CATALOG.ancestors), {}
    run(p, c, groups, [alert("VP-001")], T0)
    assert [d.recipient for d in run(p, c, groups, [], T0 + 30)] == ["binh"]
    run(p, c, groups, [alert("VP-010")], T0 + 60)  # the storm reaches Tam Đảo
    kinds = {d.recipient: d.kind for d in run(p, c, groups, [], T0 + 330)}
    assert kinds == {"cuong": "firing"}  # Bình's stations did not change: nothing new for her
