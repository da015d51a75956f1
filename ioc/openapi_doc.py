"""The OpenAPI document and the error handlers that keep every refusal in its one shape (ErrorBody).

`install_error_handlers(app)`: HTTPException (404 of an unknown path, 405, a handler's own 404/422) and
FastAPI's parameter validation (422) answer `ioc.api_models.ErrorBody`, as the auth refusals
(ioc/auth/http.py) and the body checks of each router already do.  `install_openapi(app)`: the
document adds the security schemes, tags, the input event schemas (from the msgspec structs that
parse them, ioc/events.py), and uses ErrorBody for FastAPI's generated 422s.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ioc.api_models import SECURITY_SCHEMES

REASONS = {400: "bad_request", 401: "authentication_required", 403: "forbidden", 404: "not_found",
           405: "method_not_allowed", 408: "timeout", 409: "conflict", 413: "too_large", 422: "invalid_value",
           429: "rate_limited"}
WORDS_VI = {400: "yêu cầu không đọc được", 401: "cần đăng nhập", 403: "không đủ quyền", 404: "không tìm thấy",
            405: "phương thức không được hỗ trợ ở địa chỉ này", 408: "gửi dữ liệu quá chậm",
            409: "xung đột với trạng thái hiện tại", 413: "dữ liệu quá lớn", 422: "tham số không hợp lệ",
            429: "quá nhiều yêu cầu"}
TAGS = [
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "live data", "description": "What the wall shows: the snapshot and the catalog (live updates: /ws)."},
    {"name": "ingest", "description": "Events in from gateways: rain gauges, dossier software, counter cameras."},
    {"name": "alerts", "description": "Read alerts and act on them: acknowledge, comment, assign, risk levels."},
    {"name": "CAP", "description": "Alerts as CAP 1.2 messages and an Atom feed (docs/domain.md)."},
    {"name": "silences", "description": "Mute notifications for matching alerts for a while."},
    {"name": "access", "description": "Who am I, people to assign to, and principal management (admin)."},
    {"name": "pages", "description": "The browser surfaces (HTML) and the sign-in."},
]
DESCRIPTION = """Streaming monitor of the provincial Intelligent Operations Center.

Authenticate with `Authorization: Bearer <token>` (or the `ioc_session` cookie of a browser that signed in,
or `?token=`).  Each operation says the role it needs (`x-required-role`): viewer < operator < admin;
ingest tokens only send events.  Every refusal answers the same JSON shape, `ErrorBody`:
`{"detail": "...", "reason": "...", "detail_vi": "..."}`.  Times are ISO 8601 with an offset, in event time.
"""
_encode = msgspec.json.Encoder().encode


def error_body(status: int, detail: str, *, reason: str | None = None, errors: list | None = None,
               headers: dict[str, str] | None = None) -> Response:
    """An ErrorBody answer."""
    body: dict[str, Any] = {"detail": detail, "reason": reason or REASONS.get(status, "error")}
    if status in WORDS_VI:
        body["detail_vi"] = WORDS_VI[status]
    if errors is not None:
        body["errors"] = errors
    return Response(_encode(body), status_code=status, media_type="application/json", headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict]:
    out = []
    for e in exc.errors():
        loc = [x if isinstance(x, (str, int)) else str(x) for x in e.get("loc", ())]
        out.append({"loc": loc, "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    """HTTPException and validation errors as ErrorBody (AuthError keeps its own handler, same shape)."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else HTTPStatus(exc.status_code).phrase
        return error_body(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = _field_errors(exc)
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors[:5])
        return error_body(422, f"invalid request: {where}" if where else "invalid request", errors=errors)


def _event_schemas() -> tuple[list[dict], dict[str, dict]]:
    """The input events as JSON Schema, from the structs that parse them (computed fields left out)."""
    from ioc.events import CameraEvent, DossierEvent, RainEvent

    refs, components = msgspec.json.schema_components([RainEvent, DossierEvent, CameraEvent],
                                                      ref_template="#/components/schemas/{name}")
    for schema in components.values():
        props = schema.get("properties", {})
        for computed in ("t", "due_t"):
            props.pop(computed, None)
        for name in ("ts", "due"):
            if name in props:
                props[name]["description"] = "ISO 8601 with a UTC offset, e.g. 2026-10-28T10:00:00+07:00"
    return list(refs), components


def install_openapi(app: FastAPI) -> None:
    """Build the document once, on first request of /openapi.json."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes,
                          tags=TAGS)
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        refs, events = _event_schemas()
        schemas.update(events)
        schemas["IngestEvent"] = {"anyOf": refs, "description": "One event: rain, dossier or camera."}
        for path_item in doc.get("paths", {}).values():
            for op in path_item.values():
                resp = op.get("responses", {}).get("422")
                if resp and "HTTPValidationError" in str(resp):
                    resp["description"] = "A parameter has a wrong type or value; nothing was changed."
                    resp["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
