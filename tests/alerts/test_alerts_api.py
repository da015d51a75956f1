"""Operator API: auth (401/403), filters, ack, comments, assignment, history, CAP, silences — TestClient
and a real uvicorn.  Principals are real ones (ioc.auth.Authenticator over a SQLite store in tmp_path)."""

from __future__ import annotations

import logging
import threading
import time
from xml.etree import ElementTree as ET

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alerts.cap import CAP_NS
from alerts.lifecycle import MAX_COMMENTS
from ioc.alerts_api import TokenRedactingFilter, build_alerts_router
from ioc.auth import Authenticator, SqlitePrincipalStore

from alerttest_util import T0, engine_for, free_port, ind

ENV_TOKENS = {"viewer": "view-tok", "operator": "op2-tok"}  # principals named "viewer" and "operator"
V = {"Authorization": "Bearer view-tok"}
OP = {}  # lan, an operator: filled by the `people` fixture
MINH = {}  # minh, another operator


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def people(tmp_path):
    """A real authenticator: stored operators lan and minh, viewer hoa, plus the environment tokens."""
    auth = Authenticator(SqlitePrincipalStore(tmp_path / "principals"), ENV_TOKENS)
    tokens = {name: auth.add(name, role)[1] for name, role in (("lan", "operator"), ("minh", "operator"),
                                                              ("hoa", "viewer"))}
    OP.update(bearer(tokens["lan"]))
    MINH.update(bearer(tokens["minh"]))
    yield auth, tokens
    auth.close()


@pytest.fixture
def setup(rules, catalog, people):
    eng = engine_for(rules, "rain_24h_very_heavy", "rain_3h_intense", "dossier_overdue", catalog=catalog)
    eng.process([], [ind("rain_mm", "24h", "VP-001", T0, 150), ind("rain_mm", "3h", "VP-002", T0, 75)], {"rain": T0})
    eng.process([], [ind("dossier_overdue_open", "now", "vinh-yen", T0, 2)], {"dossier": T0})
    updates = []
    app = FastAPI()
    app.state.auth = people[0]
    app.include_router(build_alerts_router(eng, people[0], on_update=updates.append, clock=lambda: T0 + 3600))
    return eng, TestClient(app), updates


def test_auth_missing_wrong_and_viewer_acting(setup):
    eng, c, _ = setup
    r = c.get("/api/alerts")
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["detail"]
    r = c.get("/api/alerts", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid" in r.json()["detail"] and "nope" not in r.text
    assert c.get("/api/alerts", headers={"Authorization": "Basic abc"}).status_code == 401
    aid = eng.active()[0].id
    r = c.post(f"/api/alerts/{aid}/ack", headers=V, json={})
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    assert c.post("/api/silences", headers=V, json={"matchers": {"rule": "x"}, "duration": "1h"}).status_code == 403
    assert c.get("/api/alerts?token=view-tok").status_code == 200
    assert c.get("/api/alerts", headers=OP).status_code == 200  # operator implies viewer


def test_list_filters_get_history_and_cap(setup):
    eng, c, _ = setup
    body = c.get("/api/alerts", headers=V).json()
    assert body["count"] == 3 and {a["rule"] for a in body["alerts"]} == {"rain_24h_very_heavy", "rain_3h_intense",
                                                                          "dossier_overdue"}
    assert [a["rule"] for a in c.get("/api/alerts?severity=critical", headers=V).json()["alerts"]] == ["rain_3h_intense"]
    assert [a["entity"] for a in c.get("/api/alerts?rule=rain_24h_very_heavy", headers=V).json()["alerts"]] == ["VP-001"]
    assert {a["entity"] for a in c.get("/api/alerts?unit=vinh-yen", headers=V).json()["alerts"]} == {"VP-002",
                                                                                                    "vinh-yen"}
    assert c.get("/api/alerts?state=resolved", headers=V).json()["count"] == 0
    assert c.get("/api/alerts?state=bogus", headers=V).status_code == 422
    a = eng.list(rule="rain_24h_very_heavy")[0]
    got = c.get(f"/api/alerts/{a.id}", headers=V).json()
    assert got["id"] == a.id and got["type"] == "alert" and got["state"] == "firing"
    assert c.get("/api/alerts/nope", headers=V).status_code == 404
    hist = c.get(f"/api/alerts/{a.id}/history", headers=V).json()["history"]
    assert [h["transition"] for h in hist] == ["firing"]
    r = c.get(f"/api/alerts/{a.id}/cap", headers=V)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.findtext(f"{{{CAP_NS}}}identifier") == f"ioc.{a.id}"


def test_ack_returns_updated_record_and_notifies_hub(setup):
    eng, c, updates = setup
    a = eng.list(rule="rain_3h_intense")[0]
    r = c.post(f"/api/alerts/{a.id}/ack", headers=OP, json={"comment": "đã báo xã"})
    assert r.status_code == 200
    rec = r.json()
    assert rec["acknowledged"] == {"by": "lan", "at": "2026-10-28T14:00:00+07:00", "comment": "đã báo xã"}
    assert rec["result"] == "acknowledged"
    assert [u.id for u in updates] == [a.id]
    assert [h["transition"] for h in c.get(f"/api/alerts/{a.id}/history", headers=V).json()["history"]] == [
        "firing", "acknowledged"]
    r = c.post(f"/api/alerts/{a.id}/ack", headers=bearer("op2-tok"))  # no comment: nothing changes
    assert r.status_code == 200 and r.json()["acknowledged"]["by"] == "lan"  # the first ack is kept
    assert r.json()["result"] == "already_acknowledged" and "already acknowledged by lan" in r.json()["detail"]
    b = eng.list(rule="dossier_overdue")[0]
    r = c.post(f"/api/alerts/{b.id}/ack", headers=bearer("op2-tok"), json={"by": "someone else"})
    assert r.json()["acknowledged"]["by"] == "operator"  # the principal, never a name from the body
    assert c.get("/api/alerts?state=acknowledged", headers=V).json()["count"] == 2
    assert c.post("/api/alerts/nope/ack", headers=OP).status_code == 404
    eng.process([], [ind("dossier_overdue_open", "now", "vinh-yen", T0 + 60, 0)], {"dossier": T0 + 60})
    c2 = eng.list(rule="dossier_overdue", state="resolved")[0]
    r = c.post(f"/api/alerts/{c2.id}/ack", headers=OP)
    assert r.status_code == 409 and "resolved" in r.json()["detail"]


def test_silences_create_list_delete(setup):
    eng, c, _ = setup
    r = c.post("/api/silences", headers=OP, json={"matchers": {"rule": "rain_*"}, "duration": "2h", "comment": "bảo trì"})
    assert r.status_code == 201
    s = r.json()
    assert s["matchers"] == {"rule": "rain_*"} and s["ends_at"] == "2026-10-28T16:00:00+07:00"
    assert s["created_by"] == "lan" and s["expired"] is False
    assert [x["id"] for x in c.get("/api/silences", headers=V).json()["silences"]] == [s["id"]]
    r = c.post("/api/silences", headers=OP, json={"matchers": {"entity": "VP-002"},
                                                  "ends_at": "2026-10-28T20:00:00+07:00"})
    assert r.status_code == 201
    assert c.post("/api/silences", headers=OP, json={"matchers": {}, "duration": "1h"}).status_code == 422
    assert c.post("/api/silences", headers=OP, json={"matchers": {"rule": "x"}}).status_code == 422
    bad = c.post("/api/silences", headers=OP, json={"matchers": {"rule": "x"}, "ends_at": "2020-01-01T00:00:00+07:00"})
    assert bad.status_code == 422 and "future" in bad.json()["detail"]
    assert c.post("/api/silences", headers=OP, content=b"{not json").status_code == 400
    assert c.delete(f"/api/silences/{s['id']}", headers=V).status_code == 403
    assert c.delete(f"/api/silences/{s['id']}", headers=MINH).json() == {
        "deleted": s["id"], "expired_by": "minh", "expired_at": "2026-10-28T14:00:00+07:00"}
    assert c.delete(f"/api/silences/{s['id']}", headers=OP).status_code == 404
    assert len(eng.silences()) == 1


def test_token_redaction_filter():
    rec = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                            ("1.2.3.4", "GET", "/api/alerts?state=firing&token=secret-tok", "1.1", 200), None)
    TokenRedactingFilter().filter(rec)
    assert "secret-tok" not in rec.getMessage() and "token=***" in rec.getMessage()


def test_router_on_real_uvicorn(rules, catalog, people):
    eng = engine_for(rules, "rain_3h_intense", catalog=catalog)
    (a,) = eng.process([], [ind("rain_mm", "3h", "VP-001", T0, 88)], {"rain": T0})
    app = FastAPI()
    app.include_router(build_alerts_router(eng, people[0]))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5) as h:
            assert h.get("/api/alerts").status_code == 401
            assert h.get("/api/alerts", headers=V).json()["alerts"][0]["id"] == a.id
            r = h.post(f"/api/alerts/{a.id}/ack", headers=MINH, json={"by": "lan"})
            assert r.status_code == 200 and r.json()["acknowledged"]["by"] == "minh"
            assert eng.drain_updates()[0].id == a.id
    finally:
        server.should_exit = True
        th.join(10)


def test_two_operators_ack_and_comment_both_kept_with_authors(setup):
    eng, c, updates = setup
    a = eng.list(rule="rain_3h_intense")[0]
    r = c.post(f"/api/alerts/{a.id}/ack", headers=OP, json={"comment": "đã báo xã"})
    assert r.json()["result"] == "acknowledged"
    r = c.post(f"/api/alerts/{a.id}/ack", headers=MINH, json={"comment": "đội cứu hộ đã đến"})
    body = r.json()
    assert r.status_code == 200 and body["result"] == "commented" and "already acknowledged by lan" in body["detail"]
    assert body["acknowledged"]["by"] == "lan"
    assert [(x["by"], x["text"]) for x in body["comments"]] == [("lan", "đã báo xã"), ("minh", "đội cứu hộ đã đến")]
    r = c.post(f"/api/alerts/{a.id}/comments", headers=OP, json={"text": "  mực nước đang giảm  "})
    assert r.status_code == 200 and r.json()["comments"][-1] == {
        "by": "lan", "at": "2026-10-28T14:00:00+07:00", "text": "mực nước đang giảm"}
    hist = c.get(f"/api/alerts/{a.id}/history", headers=V).json()["history"]
    assert [(h["transition"], h.get("by")) for h in hist] == [
        ("firing", None), ("acknowledged", "lan"), ("commented", "minh"), ("commented", "lan")]
    assert len(updates) == 3  # each action reached the walls
    # the alert as every reader sees it
    got = c.get(f"/api/alerts/{a.id}", headers=V).json()
    assert [x["by"] for x in got["comments"]] == ["lan", "minh", "lan"] and "result" not in got


def test_comment_refusals_have_reasons(setup):
    eng, c, _ = setup
    a = eng.list(rule="rain_3h_intense")[0]
    assert c.post(f"/api/alerts/{a.id}/comments", headers=V, json={"text": "x"}).status_code == 403
    for body, status, reason in (({}, 422, "missing_field"), ({"text": "   "}, 422, "missing_field"),
                                 ({"text": 5}, 422, "wrong_type"), ({"text": "x" * 2001}, 413, "too_large")):
        r = c.post(f"/api/alerts/{a.id}/comments", headers=OP, json=body)
        assert (r.status_code, r.json()["reason"]) == (status, reason), body
    r = c.post(f"/api/alerts/{a.id}/ack", headers=OP, json={"comment": "x" * 2001})
    assert (r.status_code, r.json()["reason"]) == (413, "too_large") and not eng.get(a.id).acknowledged
    r = c.post("/api/alerts/nope/comments", headers=OP, json={"text": "x"})
    assert (r.status_code, r.json()["reason"]) == (404, "not_found")
    for i in range(MAX_COMMENTS):
        eng.comment(a.id, by="lan", text=str(i), at=T0)
    r = c.post(f"/api/alerts/{a.id}/comments", headers=MINH, json={"text": "one more"})
    assert (r.status_code, r.json()["reason"]) == (409, "too_many_comments") and "200" in r.json()["detail"]
    assert c.post(f"/api/alerts/{a.id}/ack", headers=MINH, json={"comment": "one more"}).status_code == 409
    assert not eng.get(a.id).acknowledged  # refused as a whole: not acknowledged without its comment
    assert c.post(f"/api/alerts/{a.id}/ack", headers=MINH).json()["result"] == "acknowledged"


def test_assign_to_a_colleague_and_unassign(setup):
    eng, c, updates = setup
    a = eng.list(rule="rain_3h_intense")[0]
    r = c.post(f"/api/alerts/{a.id}/assign", headers=OP, json={"to": "minh"})
    assert r.status_code == 200 and r.json()["result"] == "assigned"
    assert r.json()["assignee"] == {"name": "minh", "by": "lan", "at": "2026-10-28T14:00:00+07:00"}
    assert c.post(f"/api/alerts/{a.id}/assign", headers=OP, json={"to": "minh"}).json()["result"] == "unchanged"
    for to, reason in (("hoa", "unknown_person"), ("nobody", "unknown_person"), ("", "invalid_value")):
        r = c.post(f"/api/alerts/{a.id}/assign", headers=OP, json={"to": to})
        assert (r.status_code, r.json()["reason"]) == (422, reason), to  # hoa is a viewer: cannot act
    assert c.post(f"/api/alerts/{a.id}/assign", headers=OP, json={}).json()["reason"] == "missing_field"
    assert c.post(f"/api/alerts/{a.id}/assign", headers=V, json={"to": "lan"}).status_code == 403
    assert c.post(f"/api/alerts/{a.id}/assign", headers=MINH, json={"to": "operator"}).json()["assignee"]["name"] == \
        "operator"  # the IOC_OPERATOR_TOKEN principal is a person of the directory too
    r = c.post(f"/api/alerts/{a.id}/unassign", headers=MINH)
    assert r.json()["result"] == "unassigned" and "assignee" not in r.json() and "operator unassigned by minh" in \
        r.json()["detail"]
    assert c.post(f"/api/alerts/{a.id}/unassign", headers=MINH).json()["result"] == "unchanged"
    hist = c.get(f"/api/alerts/{a.id}/history", headers=V).json()["history"]
    assert [(h["transition"], h.get("by"), h.get("to")) for h in hist[1:]] == [
        ("assigned", "lan", "minh"), ("assigned", "minh", "operator"), ("unassigned", "minh", None)]
    assert len(updates) == 3
    eng.process([], [ind("rain_mm", "3h", "VP-002", T0 + 600, 1)], {"rain": T0 + 600})
    r = c.post(f"/api/alerts/{a.id}/assign", headers=OP, json={"to": "minh"})
    assert (r.status_code, r.json()["reason"]) == (409, "resolved")
