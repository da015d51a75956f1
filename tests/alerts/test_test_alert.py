"""The operator's test alert in the core (alerts/test_alert.py, issue 16): it fires on the reserved entity
with the test label, one at a time, is never a CAP message, is marked in notification subjects, ends only
as a test alert (a real one is refused), and a journal replay of its actions re-derives the same alert."""

from __future__ import annotations

import pytest

from alerts import test_alert
from alerts.cap_feed import FeedItem, current
from alerts.cap_messages import cap_messages
from alerts.engine import AlertEngine
from alerts.lifecycle import NotActive
from alerts.notify.messages import render
from alerts.rules import builtin_rules
from ioc.catalog import demo_catalog
from ioc.wiring import apply_op

CATALOG = demo_catalog()
AT = 1796281200.25  # 2026-12-03 14:00:00.25 +07:00


def engine() -> AlertEngine:
    return AlertEngine(builtin_rules(), CATALOG)


def test_fires_once_on_the_reserved_entity_with_the_test_label():
    e = engine()
    a = e.send_test_alert("lan", AT, unit="vinh-yen", ttl_s=120)
    assert (a.rule, a.entity, a.state, a.severity) == ("test_alert", "ioc-test", "firing", "info")
    assert a.labels == {"test": "true", "requested_by": "lan", "ttl_s": "120", "category": "test", "unit": "vinh-yen"}
    assert a.message == {"vi": "Cảnh báo thử — không phải sự cố thật", "en": "Test alert — not a real incident"}
    assert test_alert.TEST_ENTITY not in CATALOG.stations and test_alert.TEST_ENTITY not in CATALOG.units
    assert test_alert.TEST_ENTITY not in CATALOG.sites
    # a second one while it is active: the same alert, nothing new in the outbox
    e.drain_notifications()
    assert e.send_test_alert("minh", AT + 5, ttl_s=120).id == a.id
    assert e.drain_notifications() == []
    assert test_alert.expires_at(a, AT) == AT + 120


def test_it_has_no_cap_message_and_never_enters_the_feed():
    e = engine()
    a = e.send_test_alert("lan", AT, ttl_s=120)
    assert cap_messages(a, e.history(a.id)) == []
    assert current([FeedItem(a, cap_messages(a, e.history(a.id)), None)], AT + 10) == []
    ended = e.resolve_test_alert(a.id, AT + 30)
    assert cap_messages(ended, e.history(a.id)) == []


def test_only_a_test_alert_can_be_resolved_by_hand():
    e = engine()
    a = e.send_test_alert("lan", AT, ttl_s=120)
    out = e.resolve_test_alert(a.id, AT + 120)
    assert out.state == "resolved" and out.ts == "2026-12-03T14:02:00.250+07:00"
    assert out.message["en"] == "Test alert ended — not a real incident"
    assert [h["transition"] for h in e.history(a.id)] == ["firing", "resolved"]
    with pytest.raises(NotActive):
        e.resolve_test_alert(a.id, AT + 130)
    # a real alert: refused
    e._lc.fire(("sensor_stale", "VP-001", "rain"), ts="2026-12-03T14:00:00+07:00", t=AT, value=None,
               severity="warning", labels={}, message={"vi": "x", "en": "x"})
    real = e._lc.active[("sensor_stale", "VP-001", "rain")]
    with pytest.raises(ValueError, match="not a test alert"):
        e.check_resolve_test_alert(real.id)


def test_notification_subject_says_test_in_both_languages():
    a = {"id": "t1", "rule": "test_alert", "entity": "ioc-test", "state": "firing", "severity": "info",
         "ts": "2026-12-03T14:05:00+07:00", "labels": {"test": "true"}, "message": dict(test_alert.MESSAGE)}
    vi = render([a], "firing", "vi", title="IOC Vĩnh Phúc")
    en = render([a], "firing", "en", title="Vinh Phuc IOC")
    assert vi.subject == "[IOC Vĩnh Phúc] [THỬ] THÔNG TIN: Cảnh báo thử — không phải sự cố thật"
    assert en.subject == "[Vinh Phuc IOC] [TEST] INFO: Test alert — not a real incident"
    assert "14:05 03/12/2026" in vi.text
    real = dict(a, labels={})
    assert "[THỬ]" not in render([real], "firing", "vi").subject


def test_journal_replay_of_its_actions_gives_the_same_alert():
    live = engine()
    ops = [{"op": "test_alert", "by": "lan", "at": AT, "unit": None, "ttl_s": 120.0}]
    a = live.send_test_alert("lan", AT, ttl_s=120.0)
    ops.append({"op": "test_alert_resolve", "id": a.id, "by": "", "at": AT + 120})
    ended = live.resolve_test_alert(a.id, AT + 120)
    replayed = engine()
    for op in ops:
        apply_op(replayed, op)
    assert replayed.get(a.id) == ended
    assert replayed.get_state() == live.get_state()


def test_ttl_must_be_a_positive_number_of_seconds():
    assert test_alert.check_ttl("5") == 5.0
    for bad in ("0", "-3", "abc", "1e9", True, None):
        with pytest.raises(ValueError, match="number of seconds"):
            test_alert.check_ttl(bad)
