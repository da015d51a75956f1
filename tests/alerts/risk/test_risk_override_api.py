"""An operator sets or raises an area's Decision 18 level over a real `ioc run`: API, audit, CAP, SIGKILL restart."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import AS_INGEST, AS_OPERATOR, AS_VIEWER, wait_for

from captest_util import t, validate_cap

pytestmark = pytest.mark.integration
REASON = "Lũ thượng nguồn sông Phó Đáy kết hợp mưa lớn (thiên tai kết hợp)"


def readings(n: int, mm: float, start_min: int = 5) -> list[dict]:
    return [{"kind": "rain", "station": "VP-010", "ts": f"2026-10-28T{13 + (start_min + 5 * k) // 60:02d}:"
             f"{(start_min + 5 * k) % 60:02d}:00+07:00", "rain_mm": mm} for k in range(n)]


def level_alert(url: str, unit: str, rule: str = "rain_risk_level", state: str = "active") -> dict | None:
    got = httpx.get(url + "/api/alerts", params={"rule": rule, "state": state}, headers=AS_VIEWER).json()["alerts"]
    mine = [a for a in got if a["entity"] == unit]
    return mine[0] if mine else None


def test_operator_raises_and_sets_area_levels_recorded_and_kept_across_a_restart(ioc_server, tmp_path):
    server = ioc_server(data_dir=tmp_path / "data")
    url = server.url
    post = lambda path, body, who=AS_OPERATOR: httpx.post(url + path, headers=who, json=body)  # noqa: E731
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=readings(12, 10.0)).json()["accepted"] == 12
    observed = wait_for(lambda: level_alert(url, "tt-tam-dao"))  # 120 mm in 1 h: level 1, observed
    assert observed and observed["labels"]["level"] == "1" and observed["labels"]["basis"] == "observed", server.log()

    # refused with a reason, nothing changed
    assert post("/api/areas/tt-tam-dao/risk-level", {"raise_by": 1, "reason": REASON}, AS_VIEWER).status_code == 403
    for body, status, words in [
        ({"raise_by": 3, "reason": REASON}, 422, "by 1 or 2"),
        ({"raise_by": 1}, 422, "reason: say why"),
        ({"level": 6, "reason": REASON}, 422, "0–5"),
        ({"level": 2, "raise_by": 1, "reason": REASON}, 422, "either level"),
        ({"level": 2, "reason": REASON, "rule": "rain_3h_intense"}, 422, "not a Decision 18 risk rule"),
    ]:
        r = post("/api/areas/tt-tam-dao/risk-level", body)
        assert r.status_code == status and words in r.json()["detail"], (body, r.text)
    r = post("/api/areas/nowhere/risk-level", {"level": 2, "reason": REASON})
    assert r.status_code == 404 and "nowhere" in r.json()["detail"]
    r = post("/api/areas/tam-dao/risk-level", {"level": 2, "reason": REASON, "rule": "flash_flood_landslide_risk"})
    assert r.status_code == 422 and "commune's" in r.json()["detail"]
    assert level_alert(url, "tt-tam-dao")["labels"]["basis"] == "observed"

    # Art. 4: raised by one level for a compound hazard, with who and why
    r = post("/api/areas/tt-tam-dao/risk-level", {"raise_by": 1, "reason": REASON})
    assert r.status_code == 200 and r.json()["result"] == "raised", r.text
    a = r.json()["alert"]
    assert (a["labels"]["level"], a["labels"]["basis"], a["labels"]["set_by"]) == ("2", "manual", "operator")
    assert a["labels"]["reason"] == REASON and a["labels"]["observed_level"] == "1" and a["severity"] == "critical"
    assert a["labels"]["clause"] == "Điều 4 khoản 4" and a["id"] == observed["id"]
    assert "do operator đặt: " + REASON in a["message"]["vi"] and "set by operator" in a["message"]["en"]
    hist = httpx.get(f"{url}/api/alerts/{a['id']}/history", headers=AS_VIEWER).json()["history"]
    assert any((h.get("alert") or {}).get("labels", {}).get("set_by") == "operator" for h in hist), hist
    cap = validate_cap(httpx.get(f"{url}/api/alerts/{a['id']}/cap", headers=AS_VIEWER).content)
    assert t(cap, "cap:msgType") == "Update" and REASON in t(cap, "cap:info/cap:description")

    # a level set on an area without heavy rain (e.g. from the official bulletin)
    r = post("/api/areas/vinh-tuong/risk-level", {"level": 3, "reason": "Bản tin cảnh báo số 12 của Đài KTTV"})
    assert r.status_code == 200 and r.json()["result"] == "set"
    vt = r.json()["alert"]
    assert (vt["labels"]["level"], vt["labels"]["basis"], vt["labels"]["clause"]) == ("3", "manual", "Điều 4")

    # SIGKILL: the journal replays the operators' levels; more rain does not undo them
    server.kill()
    server.start()
    assert level_alert(url, "tt-tam-dao")["labels"]["basis"] == "manual"
    assert level_alert(url, "vinh-tuong")["labels"]["level"] == "3"
    assert httpx.post(url + "/api/ingest", headers=AS_INGEST, json=readings(1, 1.0, 65)).json()["accepted"] == 1
    assert wait_for(lambda: level_alert(url, "tt-tam-dao")["value"] == 121.0)
    assert level_alert(url, "tt-tam-dao")["labels"]["level"] == "2"

    # level 0 removes the operator's level: back to the observed level; the dry district ends
    r = post("/api/areas/tt-tam-dao/risk-level", {"level": 0})
    assert r.status_code == 200 and r.json()["result"] == "removed"
    assert r.json()["alert"]["labels"]["basis"] == "observed" and r.json()["alert"]["labels"]["level"] == "1"
    assert post("/api/areas/vinh-tuong/risk-level", {"level": 0}).json()["result"] == "removed"
    assert wait_for(lambda: level_alert(url, "vinh-tuong", state="resolved"))
    assert level_alert(url, "vinh-tuong") is None
