"""What /openapi.json says about each operation, and that the live app answers the same: media types,
documented refusals, one error shape (ErrorBody) for every refusal, and /docs served from local files."""

from __future__ import annotations

import httpx
import jsonschema_rs
import pytest

from ioc.security_headers import CONTENT_SECURITY_POLICY
from tests.conftest import AS_INGEST, AS_OPERATOR, AS_VIEWER

pytestmark = pytest.mark.integration
ROLE_OPS = {"viewer", "operator", "admin", "ingest"}


@pytest.fixture(scope="module")
def doc(live_api) -> dict:
    r = httpx.get(live_api.url + "/openapi.json", headers=AS_VIEWER)
    assert r.status_code == 200
    return r.json()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def error_validator(doc: dict):
    schema = {"$ref": "#/components/schemas/ErrorBody", "components": doc["components"]}
    return jsonschema_rs.validator_for(schema)


def test_every_operation_is_described_for_people_and_declares_its_refusals(doc):
    assert {"bearer", "session", "token_query"} <= set(doc["components"]["securitySchemes"])
    missing = []
    for method, path, op in operations(doc):
        where = f"{method} {path}"
        if not op.get("summary") or not op.get("tags"):
            missing.append(f"{where}: summary/tags")
        codes = set(op["responses"])
        if not any(c.startswith("2") or c == "303" for c in codes):
            missing.append(f"{where}: no success response")
        role = op.get("x-required-role")
        if role is not None:
            if op.get("security") != [{"bearer": []}, {"session": []}, {"token_query": []}] or "401" not in codes:
                missing.append(f"{where}: security / 401")
            if role in ROLE_OPS and "403" not in codes:
                missing.append(f"{where}: 403")
        for code, resp in op["responses"].items():
            if code[0] in "45" and "application/json" in resp.get("content", {}):
                ref = str(resp["content"]["application/json"]["schema"])
                if "ErrorBody" not in ref and "IngestRefused" not in ref:
                    missing.append(f"{where} {code}: not ErrorBody")
    assert not missing, missing
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's 422 shape is not what we send
    assert doc["paths"]["/api/ingest"]["post"]["requestBody"]["content"].keys() >= {"application/json",
                                                                                   "application/x-ndjson"}
    assert "RainEvent" in doc["components"]["schemas"]


@pytest.mark.parametrize("path,headers,media_type", [
    ("/metrics", {}, "text/plain"),
    ("/api/cap/feed.atom", AS_VIEWER, "application/atom+xml"),
    ("/api/alerts/{alert_id}/cap", AS_VIEWER, "application/xml"),
    ("/", AS_VIEWER, "text/html"),
    ("/docs", AS_VIEWER, "text/html"),
    ("/api/snapshot", AS_VIEWER, "application/json"),
])
def test_documented_media_type_is_what_is_served(live_api, doc, path, headers, media_type):
    content = doc["paths"][path]["get"]["responses"]["200"]["content"]
    assert [t.split(";")[0] for t in content] == [media_type], content
    r = httpx.get(live_api.url + path.format(alert_id=live_api.alert_id), headers=headers)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].split(";")[0] == media_type
    if path == "/metrics":  # the exact Prometheus exposition version is documented
        assert r.headers["content-type"] in content


@pytest.mark.parametrize("method,path,headers,status,reason", [
    ("GET", "/api/alerts?limit=many", AS_VIEWER, 422, "invalid_value"),  # FastAPI's parameter validation
    ("GET", "/api/alerts?state=sleeping", AS_VIEWER, 422, "invalid_value"),
    ("GET", "/api/alerts/no-such-alert", AS_VIEWER, 404, "not_found"),
    ("GET", "/api/no-such-route", AS_VIEWER, 404, "not_found"),
    ("PUT", "/api/alerts", AS_VIEWER, 405, "method_not_allowed"),
    ("GET", "/api/snapshot", {}, 401, "authentication_required"),
    ("GET", "/api/principals", AS_OPERATOR, 403, "forbidden"),
    ("POST", "/api/silences", AS_OPERATOR, 422, "invalid_value"),
    ("POST", "/api/ingest", AS_INGEST, 400, "all_rejected"),
])
def test_every_refusal_has_the_one_error_shape(live_api, doc, method, path, headers, status, reason):
    body = {"matchers": {"rule": "x"}, "duration": "forever"} if "silences" in path else None
    if path == "/api/ingest":
        body = {"kind": "rain", "station": "VP-001", "ts": "not a time", "rain_mm": 1}
    r = httpx.request(method, live_api.url + path, headers=headers, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    error_validator(doc).validate(data)
    assert data["reason"] == reason and data["detail"]
    if status == 422 and "limit" in path:
        assert data["errors"][0]["loc"] == ["query", "limit"] and "detail_vi" in data


def test_docs_are_served_from_the_installed_package_under_the_strict_policy(live_api):
    r = httpx.get(live_api.url + "/docs", headers=AS_VIEWER)
    assert r.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in r.text and "<script>" not in r.text
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert httpx.get(live_api.url + "/api/docs", headers=AS_VIEWER).text == r.text
    bundle = httpx.get(live_api.url + "/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text[:2000]
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    init = httpx.get(live_api.url + "/docs/init.js")
    assert "/openapi.json" in init.text and "validatorUrl: null" in init.text
    signin = httpx.get(live_api.url + "/docs")  # no session: the sign-in page, like the wall
    assert signin.status_code == 401 and 'data-testid="signin-form"' in signin.text
    assert httpx.get(live_api.url + "/docs/assets/redoc.standalone.js").status_code == 404
