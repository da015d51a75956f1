"""Property/fuzz tests over HTTP against a real `ioc run` (uvicorn, subprocess, no demo feed).

Ingest (`POST /api/ingest`): random JSON of any shape, mutated valid events
(huge and odd numbers, odd timestamps, missing/extra fields, deep nesting),
random bytes, arrays / JSONL / pretty-printed mixes, random content types.
Operator API: random bodies for acknowledgements and silences.

Asserted every time: no 5xx; the answer is well-formed JSON with the
documented shape; counts add up per position; an all-rejected body leaves
/api/snapshot, the watermarks and the ingest counters unchanged; a refused
operator body leaves the silences unchanged and every listing renders.  At
the end the server is killed with SIGKILL and restarted on the same data dir:
whatever the fuzzing journaled must restore.

Bounded and derandomized (fixed examples, no database): ~3,000 requests, ~20 s.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpfuzz_util import AS_INGEST, OPERATOR, VIEWER, IocProcess
from ioc.timeutil import format_ts

pytestmark = pytest.mark.integration

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
OP = {"Authorization": f"Bearer {OPERATOR}"}
VW = {"Authorization": f"Bearer {VIEWER}"}
STATS = {"requests": 0, "by_status": {}}


@pytest.fixture(scope="module")
def ioc(tmp_path_factory):
    server = IocProcess(tmp_path_factory.mktemp("fuzz-http") / "data").start()
    client = httpx.Client(base_url=server.url, timeout=30)
    # one alert to acknowledge: 11 × 7.5 mm within 3 h at a catalog station → rain_3h_intense
    storm = [{"kind": "rain", "station": "VP-001", "ts": f"2026-10-28T13:{m:02d}:00+07:00", "rain_mm": 7.5}
             for m in range(5, 60, 5)]
    assert client.post("/api/ingest", json=storm, headers=AS_INGEST).status_code == 200
    yield server, client
    client.close()
    server.stop()
    print(f"\nfuzz over HTTP: {STATS['requests']} requests, statuses {dict(sorted(STATS['by_status'].items()))}")


def _count(r: httpx.Response) -> None:
    STATS["requests"] += 1
    STATS["by_status"][r.status_code] = STATS["by_status"].get(r.status_code, 0) + 1


def _state(client: httpx.Client) -> tuple:
    snap = client.get("/api/snapshot", headers=VW).json()
    snap.pop("seq", None)
    health = client.get("/healthz").json()
    metrics = client.get("/metrics").text
    ingested = sorted(re.findall(r'^ioc_events_ingested_total\{feed="(\w+)"\} (\S+)$', metrics, re.M))
    return json.dumps(snap, sort_keys=True), json.dumps(health.get("watermarks"), sort_keys=True), ingested


def post_ingest(client: httpx.Client, body: bytes, content_type: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": content_type, **AS_INGEST} if content_type else AS_INGEST
    r = client.post("/api/ingest", content=body, headers=headers)
    _count(r)
    assert r.status_code < 500, (r.status_code, r.text[:500], body[:300])
    assert r.status_code in (200, 400, 413), (r.status_code, r.text[:300])
    out = r.json()
    for key in ("accepted", "duplicates", "corrected", "rejected", "rejections", "results"):
        assert key in out, (key, out)
    assert out["rejected"] == len(out["rejections"])
    assert all(set(x) == {"position", "reason", "feed", "detail"} for x in out["rejections"])
    positions = [x["position"] for x in out["results"]]
    assert positions == sorted(set(positions))
    assert len(out["results"]) == out["rejected"] + out["duplicates"] + out["corrected"]
    assert {x["status"] for x in out["results"]} <= {"rejected", "duplicate", "corrected"}
    ok = out["accepted"] + out["duplicates"] + out["corrected"]
    assert (r.status_code == 200) == (ok > 0), out
    return r.status_code, out


# -- strategies ------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e308, -1e308, 2**63, 2**64, -(2**63) - 1, 10**30, 1e23, 5e-324]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

ODD_TS = st.sampled_from([
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+23:59", "0000-01-01T00:00:00Z", "2026-10-28T13:10:00+24:00",
    "2026-10-28T13:10:00-23:59", "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "2026-02-30T00:00:00Z",
    "2026-10-28T13:10:00", "2026-10-28", "yesterday", "", "2026-10-28T13:10:00.123456789+07:00",
    "2026-10-28T13:10:60+07:00", "+2026-10-28T13:10:00Z", "2026-10-28T13:10:00+07:00\u0000",
])
any_ts = st.one_of(ODD_TS, st.datetimes().map(lambda d: d.isoformat() + "+07:00"), json_scalars)

RAIN = {"kind": "rain", "station": "VP-002", "ts": "2026-10-28T14:00:00+07:00", "rain_mm": 0.4}
CAMERA = {"kind": "camera", "camera": "cam-vy-1", "site": "vinh-yen", "ts": "2026-10-28T14:00:00+07:00",
          "waiting": 4, "counters_open": 2}
DOSSIER = {"kind": "dossier", "dossier": "H62.01-261028-0001", "unit": "vinh-yen", "ts": "2026-10-28T08:00:00+07:00",
           "status": "received", "channel": "online", "due": "2026-10-30T17:00:00+07:00"}


@st.composite
def mutated_event(draw) -> dict:
    ev = dict(draw(st.sampled_from([RAIN, CAMERA, DOSSIER])))
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(sorted(ev) + ["extra", "t", "kind"]))
        how = draw(st.sampled_from(["drop", "value", "ts", "nest", "big"]))
        if how == "drop":
            ev.pop(field, None)
        elif how == "value":
            ev[field] = draw(json_values)
        elif how == "ts":
            ev[draw(st.sampled_from(["ts", "due"]))] = draw(any_ts)
        elif how == "nest":
            depth = draw(st.integers(1, 80))
            ev[field] = json.loads("[" * depth + "]" * depth)
        else:
            ev[field] = draw(st.sampled_from([10**400, -(10**400), 1e308, 2**63, 10_001, 1001, 1000.0, 10_000]))
    return ev


def encode(value) -> bytes:
    try:
        return msgspec.json.encode(value)
    except (TypeError, OverflowError, msgspec.EncodeError):
        return json.dumps(value).encode()


@st.composite
def body_of(draw, items) -> bytes:
    values = draw(st.lists(items, min_size=1, max_size=8))
    form = draw(st.sampled_from(["jsonl", "array", "one", "crlf", "pretty", "blank_lines"]))
    raws = [encode(v) for v in values]
    if form == "array":
        return b"[" + b",".join(raws) + b"]"
    if form == "one":
        return raws[0]
    if form == "crlf":
        return b"\r\n".join(raws)
    if form == "pretty":
        return json.dumps(values[0], indent=2).encode()
    if form == "blank_lines":
        return b"\n\n".join(raws) + b"\n\n"
    return b"\n".join(raws)


CONTENT_TYPES = st.sampled_from([None, "application/json", "application/x-ndjson", "text/plain",
                                 "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                                 "application/octet-stream", "application/json; charset=latin-1", "image/png"])


# -- ingest ------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=400)
@given(body=body_of(json_values), ctype=CONTENT_TYPES)
def test_ingest_random_json_never_5xx(ioc, body, ctype):
    _, client = ioc
    try:
        post_ingest(client, body, ctype)
    except httpx.LocalProtocolError:  # an illegal header value never leaves the client
        pass


@settings(FUZZ, max_examples=600)
@given(body=body_of(mutated_event()))
def test_ingest_mutated_events_never_5xx(ioc, body):
    _, client = ioc
    post_ingest(client, body)


@settings(FUZZ, max_examples=100)
@given(body=st.binary(max_size=400) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_ingest_random_bytes_never_5xx(ioc, body):
    _, client = ioc
    post_ingest(client, body)


@st.composite
def invalid_event(draw) -> dict:
    """An event that must be refused, whatever else is in it."""
    ev = draw(mutated_event())
    poison = draw(st.sampled_from([
        ("ts", "9999-12-31T23:59:59Z"), ("ts", "0001-01-01T00:00:00+23:59"), ("kind", "snow"),
        ("rain_mm", -1), ("rain_mm", 1e23), ("waiting", 1e23), ("waiting", 2**63), ("counters_open", 10**30),
        ("ts", "2026-10-28T13:10:00"), ("station", ""), ("kind", None), ("ts", 1793167800),
    ]))
    key, value = poison
    ev[key] = value
    if key in ("rain_mm",):
        ev["kind"] = "rain"
        ev.setdefault("station", "VP-003")
    elif key in ("waiting", "counters_open"):
        ev["kind"] = "camera"
    elif key == "station":
        ev["kind"] = "rain"
    return ev


@settings(FUZZ, max_examples=60)
@given(body=body_of(invalid_event()))
def test_all_rejected_body_changes_nothing(ioc, body):
    _, client = ioc
    before = _state(client)
    status, out = post_ingest(client, body)
    assert status == 400 and out["accepted"] == out["duplicates"] == out["corrected"] == 0, out
    assert _state(client) == before


def test_poison_inputs_of_the_issue_are_refused_and_counted(ioc):
    _, client = ioc
    before = _state(client)
    poison = [RAIN | {"ts": "9999-12-31T23:59:59Z"}, RAIN | {"ts": "0001-01-01T00:00:00+23:59"},
              CAMERA | {"waiting": 1e23}, CAMERA | {"waiting": 2**63}, CAMERA | {"counters_open": 2**64},
              RAIN | {"rain_mm": 10**400}]
    status, out = post_ingest(client, b"\n".join(encode(p) for p in poison))
    assert status == 400 and [x["position"] for x in out["rejections"]] == list(range(len(poison)))
    assert {x["reason"] for x in out["rejections"]} <= {"bad_timestamp", "wrong_type", "out_of_range"}
    assert _state(client) == before


def test_valid_events_around_bad_ones_are_answered_per_position(ioc):
    _, client = ioc
    good = RAIN | {"station": "VP-004", "ts": "2026-10-28T14:05:00+07:00"}
    body = b"\n".join([encode(good), b"{oops", b"", encode(good | {"rain_mm": -1}), encode(good)])
    status, out = post_ingest(client, body)
    assert status == 200
    assert [(x["position"], x["reason"]) for x in out["rejections"]] == [(1, "bad_json"), (3, "negative_value")]
    # position 4 repeats position 0: a duplicate once event identity is in place (else accepted)
    assert out["accepted"] + out["duplicates"] + out["corrected"] == 2


# -- operator API -------------------------------------------------------------------------------------

def _alert_id(client: httpx.Client) -> str:
    alerts = client.get("/api/alerts", headers=VW).json()["alerts"]
    return alerts[0]["id"] if alerts else "no-such-alert"


def _silences(client: httpx.Client) -> list:
    r = client.get("/api/silences", headers=VW)
    _count(r)
    assert r.status_code == 200, r.text[:300]
    return r.json()["silences"]


def _check_operator_answer(r: httpx.Response) -> dict:
    _count(r)
    assert r.status_code < 500, (r.status_code, r.text[:500])
    out = r.json()
    assert isinstance(out, dict)
    if r.status_code >= 400:
        assert isinstance(out.get("detail"), (str, list)), out
    return out


times = st.one_of(any_ts, st.floats(allow_nan=False), st.sampled_from([1e300, -1e300, 2**63, 10**400, 0, -1, True]),
                  st.datetimes().map(lambda d: d.isoformat() + "Z"))
matchers = st.one_of(json_values, st.dictionaries(st.text(max_size=10), st.text(max_size=10) | json_scalars, max_size=4))


@st.composite
def silence_body(draw) -> dict:
    body = {}
    if draw(st.integers(0, 3)) == 0:
        body["matchers"] = draw(matchers)
    else:
        body["matchers"] = {"rule": draw(st.sampled_from(["rain_*", "x", "*"]))}
    soon = st.integers(60, 40 * 86400).map(lambda s: format_ts(time.time() + s))
    durations = st.sampled_from(["2h", "1h30m", "0s", "-1h", "99999999999d", "1e400s", "", "2x", "400d"])
    for key, odd, usual in (("ends_at", times, soon), ("starts_at", times, st.none()),
                            ("duration", st.one_of(durations, json_scalars), st.just("2h")),
                            ("comment", json_scalars, st.text(max_size=30)), ("by", json_scalars, st.text(max_size=30))):
        how = draw(st.integers(0, 2))  # absent, usual, odd
        if how:
            body[key] = draw(usual if how == 1 else odd)
    return body


@settings(FUZZ, max_examples=400)
@given(body=silence_body())
def test_silence_bodies_never_5xx_and_nothing_unrenderable_is_stored(ioc, body):
    _, client = ioc
    before = _silences(client)
    r = client.post("/api/silences", headers=OP, content=encode(body))
    out = _check_operator_answer(r)
    after = _silences(client)
    if r.status_code == 201:
        assert out["ends_at"] and any(s["id"] == out["id"] for s in after)
        client.delete(f"/api/silences/{out['id']}", headers=OP)
    else:
        assert r.status_code in (400, 413, 422) and "reason" in out, out
        assert after == before


@settings(FUZZ, max_examples=150)
@given(body=st.one_of(st.dictionaries(st.sampled_from(["by", "comment", "x"]), json_values, max_size=3),
                      json_values, st.binary(max_size=60)), existing=st.booleans())
def test_ack_bodies_never_5xx(ioc, body, existing):
    _, client = ioc
    aid = _alert_id(client) if existing else "nope-" + str(len(str(body)))
    content = body if isinstance(body, bytes) else encode(body)
    r = client.post(f"/api/alerts/{aid}/ack", headers=OP, content=content)
    _check_operator_answer(r)
    assert r.status_code in (200, 400, 404, 409, 413, 422), r.text[:300]
    lst = client.get("/api/alerts", headers=VW)
    assert lst.status_code == 200 and "alerts" in lst.json()


@settings(FUZZ, max_examples=100)
@given(action=st.sampled_from(["comments", "assign", "unassign"]),
       body=st.one_of(st.dictionaries(st.sampled_from(["text", "to", "by", "x"]), json_values, max_size=3),
                      json_values, st.binary(max_size=60)), existing=st.booleans())
def test_comment_and_assign_bodies_never_5xx(ioc, action, body, existing):
    _, client = ioc
    aid = _alert_id(client) if existing else "nope-" + str(len(str(body)))
    content = body if isinstance(body, bytes) else encode(body)
    r = client.post(f"/api/alerts/{aid}/{action}", headers=OP, content=content)
    out = _check_operator_answer(r)
    assert r.status_code in (200, 400, 404, 409, 413, 422), r.text[:300]
    if r.status_code == 200:  # whatever was sent, the action is the signed-in principal's
        assert out["result"] in ("commented", "assigned", "unassigned", "unchanged")
        if action == "comments":
            assert out["comments"][-1]["by"] == "operator"
    a = client.get(f"/api/alerts/{_alert_id(client)}", headers=VW)
    assert a.status_code == 200 and isinstance(a.json().get("comments", []), list)


def test_silence_with_ends_at_1e300_is_refused_and_listing_works(ioc):
    _, client = ioc
    for bad in (1e300, 10**400, "9999-12-31T23:59:59-12:00", "NaN", True, [1], {"a": 1}):
        r = client.post("/api/silences", headers=OP, content=encode({"matchers": {"rule": "x"}, "ends_at": bad}))
        assert r.status_code in (400, 422), (bad, r.status_code, r.text)
    assert client.post("/api/silences", headers=OP, content=b'{"matchers":{"rule":"x"},"ends_at":1e400}').status_code == 400
    _silences(client)


def test_the_server_restarts_after_the_fuzzing(ioc):
    server, client = ioc
    before = client.get("/api/snapshot", headers=VW).json()
    server.kill()
    server.start()
    after = client.get("/api/snapshot", headers=VW).json()
    assert {(r.get("name"), r.get("window"), r.get("entity")) for r in after["indicators"]} >= {
        (r.get("name"), r.get("window"), r.get("entity")) for r in before["indicators"]}
    _silences(client)
    assert client.get("/api/alerts", headers=VW).status_code == 200
