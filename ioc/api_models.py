"""The shapes the HTTP API documents (OpenAPI), and helpers every router uses to declare them.

Handlers still serialise with msgspec (fast, byte-stable); these pydantic models only describe what
they send, so `/openapi.json` tells the truth and schemathesis can check it (tests/api/).  One error
model, `ErrorBody`, is shared by every refusal of every route:

    from ioc.api_models import ErrorBody, error_responses, json_body, secured

    @router.post("/api/things/{thing_id}/poke", summary="Poke a thing", tags=["things"],
                 response_model=PokeAnswer, responses=error_responses(401, 403, 404, 422),
                 openapi_extra={**secured("operator"), **json_body(PokeBody)})

`error_responses(*codes)` documents each status with ErrorBody (+ WWW-Authenticate on 401, Retry-After
on 429); `secured(role)` marks the operation as needing a bearer token, a session cookie or `?token=` of
that role; `json_body(Model)` declares a request body the handler reads itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PRINCIPAL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$"
ROLE_WORDS = {"viewer": "a viewer (or operator, admin) token", "operator": "an operator (or admin) token",
              "admin": "an admin token", "ingest": "an ingest token", "signed_in": "any valid token or session"}
SECURITY = [{"bearer": []}, {"session": []}, {"token_query": []}]
"""Any one of them: `Authorization: Bearer`, the `ioc_session` cookie (the wall's sign-in), `?token=`."""
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A principal's token (`ioc users add`, POST /api/principals, IOC_*_TOKEN)."},
    "session": {"type": "apiKey", "in": "cookie", "name": "ioc_session",
                "description": "The session a browser gets from POST /signin or a kiosk URL `/?token=`."},
    "token_query": {"type": "apiKey", "in": "query", "name": "token",
                    "description": "The token as `?token=` (kiosk displays); prefer the header."},
}


class Open(BaseModel):
    """A response object that may carry fields added later (clients must ignore unknown ones)."""

    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    """One invalid parameter of a request (a 422 from parameter validation)."""

    loc: list[str | int] = Field(description="Where: e.g. [\"query\", \"limit\"].")
    msg: str = Field(description="What is wrong, in English.")
    type: str = Field(description="A stable label, e.g. int_parsing.")


class ErrorBody(Open):
    """Every refusal of the API: words for people (English, often Vietnamese too) and a stable label."""

    detail: str = Field(description="What went wrong and what to do, in English.")
    reason: str = Field(description="A stable label for programs, e.g. authentication_required, forbidden, "
                                    "not_found, invalid_value, too_large, rate_limited.")
    detail_vi: str | None = Field(None, description="The same in Vietnamese, where given.")
    errors: list[FieldError] | None = Field(None, description="422 from parameter validation: each invalid one.")


DESCRIPTIONS = {
    400: "Bad request: the body could not be read (not JSON, not an object, too deep, or empty).",
    401: "No credentials, or malformed, unknown or revoked ones (with `WWW-Authenticate: Bearer`).",
    403: "Valid credentials of a principal whose role does not allow this.",
    404: "No such resource.",
    408: "The body was not sent in time.",
    409: "Conflicts with the resource's state (e.g. the alert has ended, the principal comes from the environment).",
    413: "The body, or a field of it, is larger than allowed; nothing was processed.",
    422: "A parameter or field has a wrong type or value; nothing was changed.",
    429: "Too many requests from this principal: retry after `Retry-After` seconds; nothing was processed.",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}, "required": True}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}, "required": True}},
}


def error_responses(*codes: int, model: type[BaseModel] = ErrorBody, html: tuple[int, ...] = ()) -> dict[int, dict]:
    """`responses=` for FastAPI: each status answered with `model` (ErrorBody); statuses in `html` may also
    answer a page (`text/html`, e.g. the sign-in page)."""
    out: dict[int, dict] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": model, "description": DESCRIPTIONS.get(code, "Refused.")}
        if code in _HEADERS:
            entry["headers"] = _HEADERS[code]
        if code in html:
            entry["content"] = {"text/html": {"schema": {"type": "string"}}}
        out[code] = entry
    return out


def secured(role: str) -> dict[str, Any]:
    """`openapi_extra=` for an operation that needs `role` (ioc.auth.Principal.allows, or "signed_in")."""
    return {"security": SECURITY, "x-required-role": role}


def open_access() -> dict[str, Any]:
    """`openapi_extra=` for an operation anyone may call."""
    return {"security": [{}]}


def _inline(model: type[BaseModel]) -> dict:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def json_body(model: type[BaseModel], *, required: bool = True, extra: dict[str, Any] | None = None) -> dict:
    """`openapi_extra=` declaring a JSON request body (for handlers that read and check it themselves)."""
    content: dict[str, Any] = {"application/json": {"schema": _inline(model)}}
    content.update(extra or {})
    return {"requestBody": {"required": required, "content": content}}


def text_content(media_type: str, description: str, example: str | None = None) -> dict[int, dict]:
    """`responses=` for a 200 that is not JSON (XML, text, HTML)."""
    body: dict[str, Any] = {"schema": {"type": "string"}}
    if example is not None:
        body["example"] = example
    return {200: {"description": description, "content": {media_type: body}}}


# --- response models -------------------------------------------------------------------------

class Health(Open):
    status: Literal["ok", "starting", "degraded"] = Field(description="Readiness.")
    seq: int = Field(description="The hub's last sequence number.")
    watermarks: dict[str, str | float] = Field(description="Event time reached per feed (ISO, or epoch seconds).")
    clients: int = Field(description="Connected WebSocket clients.")
    degraded: list[str] | None = Field(None, description="Why not ok, when degraded.")


class IndicatorRecord(Open):
    type: Literal["indicator"]
    name: str
    window: str
    entity: str
    ts: str = Field(description="Event time (ISO 8601 with offset).")
    value: float | int | str | None


class AlertRecord(Open):
    """An alert (ioc/records.py): optional fields are left out when unset."""

    type: Literal["alert"]
    rule: str
    entity: str
    state: str = Field(description="firing | resolved")
    severity: str = Field(description="info | warning | critical")
    ts: str = Field(description="Event time (ISO 8601 with offset).")
    id: str | None = None
    value: float | int | None = None
    labels: dict[str, str] | None = None
    message: dict[str, str] | None = Field(None, description="{\"vi\": ..., \"en\": ...}")
    acknowledged: dict[str, Any] | None = None
    started: str | None = None
    incident: str | None = None
    comments: list[dict[str, Any]] | None = None
    assignee: dict[str, Any] | None = None


class Snapshot(Open):
    seq: int
    indicators: list[IndicatorRecord]
    alerts: list[AlertRecord]


class CatalogDoc(Open):
    province: str
    name: str
    stations: list[dict[str, Any]]
    units: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    targets: dict[str, Any]


class IngestRejection(BaseModel):
    position: int = Field(description="Line (JSONL, from 0, blank lines counted) or array index.")
    reason: str
    feed: str
    detail: str


class IngestResultRow(BaseModel):
    position: int
    status: Literal["rejected", "duplicate", "corrected"]
    reason: str | None = None


class IngestResult(Open):
    accepted: int = Field(description="New events taken in.")
    duplicates: int = Field(description="Seen before with the same value: changed nothing.")
    corrected: int = Field(description="Same identity, new value: replaced the earlier one.")
    rejected: int
    rejections: list[IngestRejection]
    results: list[IngestResultRow] = Field(description="Only the positions not plainly accepted, in order.")


class IngestRefused(ErrorBody, IngestResult):
    """An ingest answer that took nothing in: the counts, plus the shared error fields."""


class PrincipalDoc(BaseModel):
    name: str
    role: Literal["viewer", "operator", "admin", "ingest"]
    feeds: list[str] | None = Field(description="Ingest scope: the feeds it may write (null: all).")
    entities: list[str] | None = Field(description="Ingest scope: stations/sites/cameras/units (null: all).")


class PrincipalRow(PrincipalDoc):
    active: bool
    source: Literal["environment", "stored"]
    created_at: str | None
    revoked_at: str | None


class PrincipalList(BaseModel):
    principals: list[PrincipalRow]


class PrincipalToken(BaseModel):
    principal: PrincipalDoc
    token: str = Field(description="Shown once: store it now.")


class Revoked(BaseModel):
    revoked: str


class Person(BaseModel):
    name: str
    role: str


class People(BaseModel):
    people: list[Person]


class NewPrincipal(BaseModel):
    name: str = Field(description="Letters (Vietnamese ones too), digits and _ . @ - (no spaces, not starting with "
                                  ". @ -), e.g. nguyen.van.an; not one of the IOC_*_TOKEN names (viewer, operator, "
                                  "admin, ingest).", min_length=1, max_length=64, pattern=PRINCIPAL_NAME_PATTERN)
    role: Literal["viewer", "operator", "admin", "ingest"]
    feeds: list[Literal["rain", "dossier", "camera"]] | None = Field(
        None, min_length=1, description="ingest only: the feeds it may write (leave out: all).")
    entities: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=1, description="ingest only: the station/site/camera/unit ids it may write (leave out: all).")


class AlertList(BaseModel):
    alerts: list[AlertRecord]
    count: int


class AlertHistory(Open):
    id: str
    history: list[dict[str, Any]] = Field(description="The audit log, oldest first.")
    deliveries: list[dict[str, Any]] | None = Field(None, description="Notifications to people, per recipient.")


class ActionAnswer(AlertRecord):
    result: str = Field(description="What the action did, e.g. acknowledged, already_acknowledged, commented.")
    detail: str = Field(description="The same in words.")


class RiskLevelAnswer(Open):
    result: Literal["set", "raised", "removed"]
    detail: str
    unit: str
    rule: str
    alert: AlertRecord | None
    changed: list[AlertRecord]


class SilenceDoc(Open):
    id: str
    matchers: dict[str, str] | None = None
    starts_at: str | None = None
    ends_at: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    comment: str | None = None
    expired: bool | None = None
    invalid: bool | None = Field(None, description="true: stored but unreadable (see the server log).")


class SilenceList(Open):
    silences: list[SilenceDoc]
    error: str | None = None


class SilenceDeleted(BaseModel):
    deleted: str
    expired_by: str
    expired_at: str | None


class AckBody(BaseModel):
    comment: str | None = Field(None, description="At most 2000 characters.")


class CommentBody(BaseModel):
    text: str = Field(description="1..2000 characters.")


class AssignBody(BaseModel):
    to: str = Field(description="The name of an active operator or admin.")


class RiskLevelBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["level"]}, {"required": ["raise_by"]}]})

    level: Literal[0, 1, 2, 3, 4, 5] = Field(None, description="1–5, or 0 to remove the operator's level.")
    raise_by: Literal[1, 2] = Field(None, description="Instead of level: raise the current level by 1 or 2.")
    reason: str = Field("", description="Why (Decision 18 Art. 4: the level is a human decision).")
    rule: Literal["rain_risk_level", "flash_flood_landslide_risk"] = Field(
        "rain_risk_level", description="Which Decision 18 level.")


class SilenceBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["ends_at"]}, {"required": ["duration"]}]})

    matchers: dict[Annotated[str, Field(min_length=1, max_length=200)],
                   Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=20, description="label → pattern (1..20 of them), e.g. {\"rule\": \"rain_*\"}.")
    ends_at: str | float | None = Field(None, description="ISO 8601 with offset, or epoch seconds: in the future, "
                                                          "at most 366 days after the start.")
    duration: str | None = Field(None, description="Instead of ends_at: e.g. \"90m\", \"2h\", \"1d\" (≤ 366 days).",
                                 pattern=r"^([1-9][0-9]{0,2}(s|m|h|d)){1,3}$")
    starts_at: str | float | None = Field(None, description="Default now; within a year of now.")
    comment: str | None = Field(None, max_length=2000)


class SignInBody(BaseModel):
    token: str
    next: str | None = Field(None, description="A local path to go to afterwards.")


class SignedIn(BaseModel):
    name: str
    role: str


_EVENT = {"$ref": "#/components/schemas/IngestEvent"}
INGEST_BODY: dict[str, Any] = {"required": True, "content": {
    "application/json": {"schema": {"anyOf": [_EVENT, {"type": "array", "items": _EVENT}]},
                         "example": {"kind": "rain", "station": "VP-001", "ts": "2026-10-28T10:00:00+07:00",
                                     "rain_mm": 2.5}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "One event per line (JSONL)."}},
}}
"""POST /api/ingest: one event, an array (≤ 1 MiB) or JSONL (≤ 16 MiB); IngestEvent is built from ioc/events.py."""
