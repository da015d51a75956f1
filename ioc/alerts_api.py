"""Operator API for alerts (FastAPI adapter over alerts.engine.AlertEngine).

    router = build_alerts_router(engine, authenticator, on_update=hub_publish)
    app.include_router(router)

`authenticator` is an ioc.auth.Authenticator: reading needs a viewer,
acting an operator (admin implies both); the acting principal's name is
who acted.  Send `Authorization: Bearer TOKEN` (`?token=` is accepted too;
call install_token_redaction() so access logs never show it).  Missing,
malformed, unknown or revoked token → 401, a viewer acting → 403
(ioc.auth.http.require).  Tokens are never logged or echoed.

Endpoints: GET /api/alerts (state, severity, rule, unit, limit),
GET /api/alerts/{id}, GET /api/alerts/{id}/history, GET /api/alerts/{id}/cap, GET /api/cap/feed.atom,
POST /api/alerts/{id}/ack, POST /api/alerts/{id}/comments,
POST /api/alerts/{id}/assign, POST /api/alerts/{id}/unassign, POST /api/silences,
GET /api/silences, DELETE /api/silences/{id}.  Every action records the acting
principal's name (a body's "by" is ignored).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any, Callable

import msgspec
from fastapi import APIRouter, HTTPException, Request, Response

from ioc import api_models as m
from ioc.api_models import error_responses as errors, json_body, secured
from ioc.events import TS_MAX, TS_MIN
from ioc.records import Alert
from ioc.serve import BodyRefused, read_body
from ioc.timeutil import format_ts, parse_ts

if TYPE_CHECKING:
    from ioc.auth.authenticator import Authenticator
    from ioc.auth.principal import Principal as AuthPrincipal

log = logging.getLogger("ioc.alerts_api")
_enc = msgspec.json.Encoder(enc_hook=lambda obj: _enc_fallback(obj))
STATES = ("firing", "active", "acknowledged", "unacknowledged", "resolved")
SEVERITIES = ("info", "warning", "critical")

# Operator bodies: every field is checked here (422/400 with a reason), before anything is
# journaled or stored, so that nothing is kept that cannot be rendered again.
MAX_OPERATOR_BODY_BYTES = 64 * 1024
MAX_NAME = 200  # `by`
MAX_COMMENT = 2000
MAX_MATCHERS = 20
MAX_MATCHER_TEXT = 200
MAX_SILENCE_S = 366 * 86400  # a silence ends at most a year (and a day) after it starts
MAX_SILENCE_START_S = 366 * 86400  # ... and starts at most a year before or after now
MAX_BODY_DEPTH = 8


class ApiError(Exception):
    """A refused request: HTTP status, a reason label, and words for the operator."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _guarded(handler):
    """Answer ApiError / BodyRefused as {"detail": ..., "reason": ...} with their status."""

    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except (ApiError, BodyRefused) as exc:
            headers = {"Connection": "close"} if exc.status in (408, 413) else None
            return Response(_enc.encode({"detail": exc.detail, "reason": exc.reason}), status_code=exc.status,
                            media_type="application/json", headers=headers)

    return wrapper


def _json(data: Any, status: int = 200) -> Response:
    return Response(_enc.encode(data), status_code=status, media_type="application/json")


def _enc_fallback(obj: Any) -> Any:
    return str(obj)  # anything msgspec cannot encode is shown as text rather than failing the answer



def _fmt_time(value: Any) -> str | None:
    """ISO text of an epoch time, or None when it is not one (never raises: a stored value from an
    older version must not make a listing fail)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return format_ts(float(value))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _silence_json(engine, s) -> dict:
    """One silence for the API.  Defensive: every field is rendered whatever was stored."""
    matchers = getattr(s, "matchers", None)
    if isinstance(matchers, dict):
        matchers = {str(k)[:MAX_MATCHER_TEXT]: str(v)[:MAX_MATCHER_TEXT] for k, v in matchers.items()}
    else:
        matchers = {}
    try:
        expired = bool(getattr(engine, "silence_expired", lambda _s: False)(s))
    except Exception:  # a stored silence the engine cannot compare
        expired = True
    return {"id": str(getattr(s, "id", "")), "matchers": matchers, "starts_at": _fmt_time(getattr(s, "starts_at", None)),
            "ends_at": _fmt_time(getattr(s, "ends_at", None)), "created_by": _text(getattr(s, "created_by", ""), MAX_NAME),
            "created_at": _fmt_time(getattr(s, "created_at", None)),
            "comment": _text(getattr(s, "comment", ""), MAX_COMMENT), "expired": expired}


def _when(value: Any, field: str) -> float:
    """An operator-given time: ISO 8601 with offset, or epoch seconds; finite and in 2000..2099."""
    t: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            t = float(value)
        except OverflowError:
            t = None
    elif isinstance(value, str) and len(value) <= 64:
        try:
            t = parse_ts(value)
        except (ValueError, OverflowError, OSError):
            t = None
    else:
        raise ApiError(422, "wrong_type", f"{field}: expected an ISO 8601 time with offset (e.g. "
                                          f"\"2026-10-28T20:00:00+07:00\") or epoch seconds")
    if t is None or not math.isfinite(t):
        raise ApiError(422, "bad_timestamp", f"{field}: expected an ISO 8601 time with offset or epoch seconds, "
                                             f"got {_short(value)}")
    if not TS_MIN <= t < TS_MAX:
        raise ApiError(422, "out_of_range", f"{field}: {_short(value)} is not a time in the years 2000..2099")
    return t


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _opt_text(body: dict, field: str, limit: int, *, non_empty: bool = False) -> str | None:
    v = body.get(field)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ApiError(422, "wrong_type", f"{field}: expected text")
    if non_empty and not v.strip():
        raise ApiError(422, "invalid_value", f"{field}: expected a non-empty name")
    if len(v) > limit:
        raise ApiError(422, "too_large", f"{field}: at most {limit} characters")
    return v


def _comment_text(body: dict, field: str, *, required: bool) -> str | None:
    """A comment's text: non-blank, at most MAX_COMMENT characters (longer: 413)."""
    v = body.get(field)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise ApiError(422, "missing_field", f"{field}: the comment text (1..{MAX_COMMENT} characters)")
        return None
    if not isinstance(v, str):
        raise ApiError(422, "wrong_type", f"{field}: expected text")
    if len(v) > MAX_COMMENT:
        raise ApiError(413, "too_large", f"{field}: a comment is at most {MAX_COMMENT} characters")
    return v.strip()


# Whether an assignee must be a known active person: on when the authenticator keeps a directory.
CHECK_ASSIGNEE = True


def _known_person(authenticator: Any, name: str) -> bool | None:
    """True/False when the authenticator can list people (ioc.auth.Authenticator.people); None when it
    cannot say.  Only operators and admins can be assigned: they are the ones who can act on an alert."""
    people = getattr(authenticator, "people", None)
    if not CHECK_ASSIGNEE or people is None:
        return None
    return any(p.name == name and p.role in ("operator", "admin") for p in people())


def _check_matchers(matchers: Any) -> dict[str, str]:
    example = "e.g. {\"rule\": \"rain_*\", \"unit\": \"vinh-yen\"}"
    if not isinstance(matchers, dict) or not matchers:
        raise ApiError(422, "invalid_value", f"matchers: expected a non-empty object of label → pattern, {example}")
    if len(matchers) > MAX_MATCHERS:
        raise ApiError(422, "too_large", f"matchers: at most {MAX_MATCHERS} labels")
    for k, v in matchers.items():
        if not isinstance(v, str):
            raise ApiError(422, "wrong_type", f"matchers.{_short(k)[1:-1]}: expected a text pattern, {example}")
        if not k or not v:
            raise ApiError(422, "invalid_value", f"matchers: labels and patterns must be non-empty, {example}")
        if len(k) > MAX_MATCHER_TEXT or len(v) > MAX_MATCHER_TEXT:
            raise ApiError(422, "too_large", f"matchers: labels and patterns are at most {MAX_MATCHER_TEXT} characters")
    return dict(matchers)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, counting stops past `limit`."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


async def _body(request: Request) -> dict:
    """The JSON object of an operator request (streamed, at most MAX_OPERATOR_BODY_BYTES)."""
    try:
        raw = await read_body(request, MAX_OPERATOR_BODY_BYTES)
    except BodyRefused:
        raise
    except Exception:  # the client went away while sending
        raise ApiError(400, "disconnected", "the request body was not received") from None
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except RecursionError:
        raise ApiError(400, "too_deep", "request body is nested too deeply") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:  # 1e400 is a ValidationError
        raise ApiError(400, "bad_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "not_an_object", "request body must be a JSON object")
    if _depth(body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
        raise ApiError(400, "too_deep", f"request body is nested deeper than {MAX_BODY_DEPTH} levels")
    return body


def build_alerts_router(service, auth: "Authenticator", *, on_update: Callable[[Alert], None] | None = None,
                        cap_sender: str | None = None, cap_settings: Any = None,
                        clock: Callable[[], float] = time.time,
                        deliveries: Callable[[str], list[dict]] | None = None) -> APIRouter:
    """`service`: an AlertEngine (or anything with its list/get/history/acknowledge/silence methods);
    `auth`: the ioc.auth.Authenticator whose principals may read (viewer) and act (operator);
    `deliveries`: alert id → its notifications to people (alerts/notify), shown in its history."""
    from ioc.auth.http import require

    authenticator = auth
    router = APIRouter()

    def auth(request: Request, need: str = "viewer") -> "AuthPrincipal":  # noqa: F811 - the parameter is kept above
        """The acting ioc.auth.Principal (its `.name` is who acted), or 401/403 (ioc.auth.http.require)."""
        return require(request, need, authenticator)

    def _get(alert_id: str) -> Alert:
        a = service.get(alert_id)
        if a is None:
            raise HTTPException(404, detail=f"no alert with id {_short(alert_id)}")
        return a

    @router.get("/api/alerts", tags=["alerts"], summary="List alerts", response_model=m.AlertList,
                responses=errors(401, 403, 422), openapi_extra=secured("viewer"))
    async def list_alerts(request: Request, state: str | None = None, severity: str | None = None,
                          rule: str | None = None, unit: str | None = None, limit: int = 500) -> Response:
        """Newest first; filter by state (firing, active, acknowledged, unacknowledged, resolved), severity
        (info, warning, critical), rule, unit; `limit` 1..5000."""
        auth(request)
        if state is not None and state not in STATES:
            raise HTTPException(422, detail=f"state must be one of {', '.join(STATES)}")
        if severity is not None and severity not in SEVERITIES:
            raise HTTPException(422, detail=f"severity must be one of {', '.join(SEVERITIES)}")
        items = service.list(state=state, severity=severity, rule=rule, unit=unit, limit=max(1, min(limit, 5000)))
        return _json({"alerts": items, "count": len(items)})

    @router.get("/api/alerts/{alert_id}", tags=["alerts"], summary="One alert", response_model=m.AlertRecord,
                responses=errors(401, 403, 404), openapi_extra=secured("viewer"))
    async def get_alert(alert_id: str, request: Request) -> Response:
        auth(request)
        return _json(_get(alert_id))

    @router.get("/api/alerts/{alert_id}/history", tags=["alerts"], summary="An alert's audit log",
                response_model=m.AlertHistory, responses=errors(401, 403, 404), openapi_extra=secured("viewer"))
    async def history(alert_id: str, request: Request) -> Response:
        auth(request)
        _get(alert_id)
        body = {"id": alert_id, "history": service.history(alert_id)}
        if deliveries is not None:  # sent / retrying / failed with the reason, per recipient and channel
            body["deliveries"] = deliveries(alert_id)
        return _json(body)

    def _cap_settings():
        """ioc.cap_config.CapSettings: the given ones, else the environment's (IOC_CAP_SENDER, ...)."""
        nonlocal cap_settings
        if cap_settings is None:
            from dataclasses import replace

            from ioc.cap_config import cap_settings_from_env

            cap_settings = cap_settings_from_env(getattr(service, "catalog", None))
            if cap_sender:
                cap_settings = replace(cap_settings, sender=cap_sender)
        return cap_settings

    @router.get("/api/alerts/{alert_id}/cap", tags=["CAP"], summary="An alert as a CAP 1.2 message",
                response_class=Response, responses={**m.text_content("application/xml", "A CAP 1.2 <alert> message."),
                                                    **errors(401, 403, 404)}, openapi_extra=secured("viewer"))
    async def cap(alert_id: str, request: Request, identifier: str | None = None) -> Response:
        """The alert's latest CAP 1.2 message; `?identifier=` one of its earlier ones (ioc/cap_api.py)."""
        auth(request)
        from ioc.cap_api import CapNotFound, alert_cap_xml

        a = _get(alert_id)
        try:
            xml = alert_cap_xml(service, a, _cap_settings(), base_url=str(request.base_url), identifier=identifier)
        except CapNotFound:
            if identifier is None:  # only a test alert (alerts/test_alert.py) has none at all
                raise HTTPException(404, detail=f"alert {alert_id} is a test alert: it is never published as CAP") from None
            raise HTTPException(404, detail=f"alert {alert_id} has no CAP message {_short(identifier)}") from None
        return Response(xml, media_type="application/xml")

    @router.get("/api/cap/feed.atom", tags=["CAP"], summary="Atom feed of the current CAP messages",
                response_class=Response, responses={**m.text_content("application/atom+xml", "An Atom 1.0 feed."),
                                                    **errors(401, 403, 422)}, openapi_extra=secured("viewer"))
    async def cap_feed(request: Request, lang: str = "vi", scope: str | None = None) -> Response:
        """Atom feed of the current CAP messages (alerts/cap_feed.py); `lang` vi or en; `scope` Public
        (for a public aggregator) or Restricted, else both."""
        auth(request)
        if lang not in ("vi", "en"):
            raise HTTPException(422, detail="lang must be vi or en")
        if scope not in (None, "Public", "Restricted"):
            raise HTTPException(422, detail="scope must be Public or Restricted (or left out for both)")
        from starlette.concurrency import run_in_threadpool

        from ioc.cap_api import feed_xml

        settings = _cap_settings()  # every alert's history is read: off the event loop
        xml = await run_in_threadpool(feed_xml, service, settings, lang=lang, scope=scope, clock=clock,
                                      base_url=settings.public_url or str(request.base_url))
        return Response(xml, media_type="application/atom+xml")

    def _act(alert_id: str, do: Callable[[], Alert], changes: bool = True) -> Alert:
        """Run one operator action on an alert; its errors as 404/409 with a reason; tell the walls
        when it `changes` the alert."""
        from alerts.lifecycle import NotActive, NotFound, ThreadFull

        try:
            a = do()
        except NotFound:
            raise ApiError(404, "not_found", f"no alert with id {_short(alert_id)}") from None
        except ThreadFull as exc:
            raise ApiError(409, "too_many_comments", str(exc)) from None
        except NotActive as exc:
            raise ApiError(409, "resolved", str(exc)) from None
        if on_update is not None and changes:
            try:
                on_update(a)
            except Exception:  # the hub failing must not fail the action
                log.exception("on_update callback failed for alert %s", alert_id)
        return a

    def _answer(a: Alert, result: str, detail: str) -> Response:
        """The alert record, plus what the action did (`result`) in words (`detail`)."""
        return _json({**msgspec.to_builtins(a), "result": result, "detail": detail})

    @router.post("/api/alerts/{alert_id}/ack", tags=["alerts"], summary="Acknowledge an alert",
                 response_model=m.ActionAnswer, responses=errors(400, 401, 403, 404, 409, 413, 422),
                 openapi_extra={**secured("operator"), **json_body(m.AckBody, required=False)})
    @_guarded
    async def ack(alert_id: str, request: Request) -> Response:
        """Body (optional): {"comment": "text ≤ 2000"}; unknown fields (an old client's "by") are ignored:
        the acknowledgement is the signed-in principal's.  Already acknowledged: a comment is added to
        the thread (result "commented"), none changes nothing (result "already_acknowledged")."""
        who = auth(request, "operator")
        body = await _body(request)
        comment = _comment_text(body, "comment", required=False)
        before = service.get(alert_id)
        first = before is None or not before.acknowledged
        a = _act(alert_id, lambda: service.acknowledge(alert_id, by=who.name, comment=comment, at=clock()),
                 changes=first or bool(comment))
        if first:
            return _answer(a, "acknowledged", f"acknowledged by {who.name}")
        prior = before.acknowledged
        detail = f"already acknowledged by {prior.get('by', '?')} at {prior.get('at', '?')}"
        if comment:
            return _answer(a, "commented", detail + f"; comment by {who.name} added")
        return _answer(a, "already_acknowledged", detail + "; nothing changed")

    @router.post("/api/alerts/{alert_id}/comments", tags=["alerts"], summary="Comment on an alert",
                 response_model=m.ActionAnswer, responses=errors(400, 401, 403, 404, 409, 413, 422),
                 openapi_extra={**secured("operator"), **json_body(m.CommentBody)})
    @_guarded
    async def add_comment(alert_id: str, request: Request) -> Response:
        """Body: {"text": "1..2000 characters"}; at most MAX_COMMENTS per alert (then 409)."""
        who = auth(request, "operator")
        text = _comment_text(await _body(request), "text", required=True)
        a = _act(alert_id, lambda: service.comment(alert_id, by=who.name, text=text, at=clock()))
        return _answer(a, "commented", f"comment by {who.name} added")

    @router.post("/api/alerts/{alert_id}/assign", tags=["alerts"], summary="Assign an alert to a person",
                 response_model=m.ActionAnswer, responses=errors(400, 401, 403, 404, 409, 413, 422),
                 openapi_extra={**secured("operator"), **json_body(m.AssignBody)})
    @_guarded
    async def assign(alert_id: str, request: Request) -> Response:
        """Body: {"to": "a person's name"}: that person is responsible for the alert (one at a time)."""
        who = auth(request, "operator")
        body = await _body(request)
        to = _opt_text(body, "to", MAX_NAME, non_empty=True)
        if to is None:
            raise ApiError(422, "missing_field", "to: the name of the person to assign the alert to")
        to = to.strip()
        if _known_person(authenticator, to) is False:
            raise ApiError(422, "unknown_person", f"to: {_short(to)} is not an active operator or admin")
        before = service.get(alert_id)
        same = before is not None and (before.assignee or {}).get("name") == to
        a = _act(alert_id, lambda: service.assign(alert_id, to=to, by=who.name, at=clock()), changes=not same)
        if same:
            return _answer(a, "unchanged", f"already assigned to {to}; nothing changed")
        return _answer(a, "assigned", f"assigned to {to} by {who.name}")

    @router.post("/api/alerts/{alert_id}/unassign", tags=["alerts"], summary="Unassign an alert",
                 response_model=m.ActionAnswer, responses=errors(401, 403, 404, 409), openapi_extra=secured("operator"))
    @_guarded
    async def unassign(alert_id: str, request: Request) -> Response:
        """No body: nobody is responsible for the alert any more."""
        who = auth(request, "operator")
        before = service.get(alert_id)
        a = _act(alert_id, lambda: service.unassign(alert_id, by=who.name, at=clock()),
                 changes=before is not None and bool(before.assignee))
        if before is None or not before.assignee:
            return _answer(a, "unchanged", "not assigned to anyone; nothing changed")
        return _answer(a, "unassigned", f"{before.assignee.get('name', '?')} unassigned by {who.name}")

    @router.post("/api/areas/{unit}/risk-level", tags=["alerts"], summary="Set an area's risk level (Decision 18)",
                 response_model=m.RiskLevelAnswer, responses=errors(400, 401, 403, 404, 409, 413, 422),
                 openapi_extra={**secured("operator"), **json_body(m.RiskLevelBody)})
    @_guarded
    async def set_risk_level(unit: str, request: Request) -> Response:
        """Body: {"level": 1–5 | 0 (remove), or "raise_by": 1 | 2, "reason": "why", "rule": "rain_risk_level"
        (default) | "flash_flood_landslide_risk"}.  Decision 18 Art. 4: the level is a human decision; the
        alert then carries basis "manual", set_by and reason (docs/domain.md §2)."""
        from alerts.lifecycle import NotFound

        who = auth(request, "operator")
        body = await _body(request)
        rule = body.get("rule", "rain_risk_level")
        if not isinstance(rule, str):
            raise ApiError(422, "invalid", "rule: expected a rule name")
        level, raise_by, reason = body.get("level"), body.get("raise_by"), body.get("reason", "")
        if not hasattr(service, "set_risk_level"):
            raise ApiError(409, "unsupported", "this server does not evaluate Decision 18 risk levels")
        try:
            out = service.set_risk_level(unit, rule=rule, level=level, raise_by=raise_by, reason=reason,
                                         by=who.name, at=clock())
        except NotFound as exc:
            raise ApiError(404, "not_found", str(exc).strip("'\"")) from None
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        for a in out:
            if on_update is not None:
                try:
                    on_update(a)
                except Exception:  # the hub failing must not fail the action
                    log.exception("on_update callback failed for alert %s", a.id)
        result = "removed" if level == 0 else ("raised" if raise_by is not None else "set")
        detail = {"removed": f"{who.name} removed the operator's level of {unit}",
                  "raised": f"{who.name} raised the level of {unit} by {raise_by}",
                  "set": f"{who.name} set the level of {unit} to {level}"}[result]
        current = [a for a in service.list(state="active", rule=rule) if a.entity == unit]
        return _json({"result": result, "detail": detail, "unit": unit, "rule": rule,
                      "alert": msgspec.to_builtins(current[0]) if current else None,
                      "changed": [msgspec.to_builtins(a) for a in out]})

    _add_test_alert_routes(router, service, auth, on_update, clock)

    @router.post("/api/silences", tags=["silences"], summary="Create a silence", status_code=201,
                 response_model=m.SilenceDoc, responses=errors(400, 401, 403, 413, 422),
                 openapi_extra={**secured("operator"), **json_body(m.SilenceBody)})
    @_guarded
    async def add_silence(request: Request) -> Response:
        """Body: {"matchers": {label: pattern, ...}, "ends_at": time | "duration": "2h",
        "starts_at": time (optional), "comment": text}; it is created by the signed-in principal (a
        "by" in the body is ignored).  Times are ISO 8601 with
        offset or epoch seconds, in 2000..2099; a silence starts within a year of now and lasts
        at most MAX_SILENCE_S.  Anything else: 422 {"detail", "reason"}; nothing is stored."""
        who = auth(request, "operator")
        body = await _body(request)
        matchers = _check_matchers(body.get("matchers"))
        now = clock()
        starts_at = _when(body["starts_at"], "starts_at") if body.get("starts_at") is not None else None
        if starts_at is not None and abs(starts_at - now) > MAX_SILENCE_START_S:
            raise ApiError(422, "out_of_range", "starts_at: a silence starts within a year of now")
        base = starts_at if starts_at is not None else now
        if body.get("ends_at") is not None:
            ends_at = _when(body["ends_at"], "ends_at")
        elif body.get("duration") is not None:
            from alerts.rules import parse_duration

            try:
                seconds = parse_duration(body["duration"])
            except (ValueError, TypeError, OverflowError) as exc:
                raise ApiError(422, "invalid_value", f"duration: {exc}") from None
            if not math.isfinite(seconds) or seconds > MAX_SILENCE_S:
                raise ApiError(422, "out_of_range", f"duration: at most {MAX_SILENCE_S // 86400} days")
            ends_at = base + seconds
        else:
            raise ApiError(422, "missing_field", "give ends_at (ISO time) or duration (e.g. \"2h\")")
        if ends_at <= base:
            raise ApiError(422, "invalid_value", "the silence would already be over: ends_at must be in the future"
                                                 + (" and after starts_at" if starts_at is not None else ""))
        if ends_at - base > MAX_SILENCE_S:
            raise ApiError(422, "out_of_range", f"ends_at: a silence lasts at most {MAX_SILENCE_S // 86400} days")
        comment = _opt_text(body, "comment", MAX_COMMENT) or ""
        check = getattr(service, "check_silence", None)
        try:
            if check is not None:
                check(matchers, ends_at, starts_at)  # the engine's own rules, before anything is journaled
            s = service.add_silence(matchers, ends_at, starts_at=starts_at, by=who.name,
                                    comment=comment, created_at=now)
        except ValueError as exc:
            raise ApiError(422, "invalid_value", str(exc)) from None
        return _json(_silence_json(service, s), status=201)

    @router.get("/api/silences", tags=["silences"], summary="List silences", response_model=m.SilenceList,
                responses=errors(401, 403), openapi_extra=secured("viewer"))
    async def list_silences(request: Request) -> Response:
        """Every stored silence, expired ones included (`expired`)."""
        auth(request)
        try:
            stored = list(service.silences())
        except Exception:  # never a 500 on the listing: say what is wrong instead
            log.exception("listing silences failed")
            return _json({"silences": [], "error": "the stored silences could not be read; see the server log"})
        out = []
        for s in stored:
            try:
                out.append(_silence_json(service, s))
            except Exception:
                log.exception("silence %r cannot be rendered", getattr(s, "id", None))
                out.append({"id": str(getattr(s, "id", "")), "invalid": True})
        return _json({"silences": out})

    @router.delete("/api/silences/{silence_id}", tags=["silences"], summary="End a silence now",
                   response_model=m.SilenceDeleted, responses=errors(401, 403, 404), openapi_extra=secured("operator"))
    async def delete_silence(silence_id: str, request: Request) -> Response:
        """Expire a silence now; who and when go to the audit log."""
        who = auth(request, "operator")
        at = clock()
        if not service.remove_silence(silence_id, by=who.name, at=at):
            raise HTTPException(404, detail=f"no silence with id {_short(silence_id)}")
        return _json({"deleted": silence_id, "expired_by": who.name, "expired_at": _fmt_time(at)})

    return router


def test_alert_ttl_from_env() -> float:
    """IOC_TEST_ALERT_TTL_S: how long an operator's test alert lasts (default 120 s); a bad value stops the
    start with its name (ConfigError)."""
    import os

    from alerts import test_alert
    from ioc.config import ConfigError

    raw = os.environ.get("IOC_TEST_ALERT_TTL_S", "").strip()
    if not raw:
        return test_alert.DEFAULT_TTL_S
    try:
        return test_alert.check_ttl(raw)
    except ValueError as exc:
        raise ConfigError(f"IOC_TEST_ALERT_TTL_S: {exc}") from None


def _add_test_alert_routes(router: APIRouter, service, auth, on_update, clock) -> None:
    """POST /api/alerts/test and POST /api/alerts/{id}/resolve (alerts/test_alert.py)."""
    from pydantic import BaseModel, Field

    from alerts import test_alert

    class TestAlertBody(BaseModel):
        unit: str | None = Field(None, description="A unit of the catalog whose notification routes to exercise.")
        ttl_s: float | None = Field(None, description="Seconds until it ends by itself (default IOC_TEST_ALERT_TTL_S).")

    ttl_s = test_alert_ttl_from_env()

    def _tell(a: Alert) -> None:
        if on_update is not None:
            try:
                on_update(a)
            except Exception:  # the hub failing must not fail the action
                log.exception("on_update callback failed for alert %s", a.id)

    def _answer(a: Alert, result: str, detail: str, status: int = 200) -> Response:
        return _json({**msgspec.to_builtins(a), "result": result, "detail": detail}, status=status)

    @router.post("/api/alerts/test", tags=["alerts"], summary="Send a test alert", response_model=m.ActionAnswer,
                 responses=errors(400, 401, 403, 409, 413, 422),
                 openapi_extra={**secured("operator"), **json_body(TestAlertBody, required=False)})
    @_guarded
    async def send_test_alert(request: Request) -> Response:
        """Body (optional): {"unit": "a unit id" (whose notification routes to exercise), "ttl_s": seconds
        (0 < ttl_s ≤ 86400, default IOC_TEST_ALERT_TTL_S)}.  Fires a test
        alert (label test: "true", on the reserved entity "ioc-test") that goes to the walls and the
        notification routes like a real one, is never a CAP message nor counted as a real alert, and ends
        by itself after IOC_TEST_ALERT_TTL_S (default 120 s) or by POST /api/alerts/{id}/resolve.  One at a
        time: while one is active it is answered (200, result "already_active") and nothing is sent."""
        who = auth(request, "operator")
        body = await _body(request)
        unit = _opt_text(body, "unit", MAX_NAME)
        catalog = getattr(service, "catalog", None)
        if unit and catalog is not None and unit not in catalog.units:
            raise ApiError(422, "unknown_unit", f"unit: {_short(unit)} is not a unit of the catalog")
        ttl = ttl_s
        if body.get("ttl_s") is not None:
            if isinstance(body["ttl_s"], str):
                raise ApiError(422, "wrong_type", "ttl_s: expected a number of seconds, e.g. 300")
            try:
                ttl = test_alert.check_ttl(body["ttl_s"])
            except ValueError as exc:
                raise ApiError(422, "invalid_value", f"ttl_s: {exc}") from None
        if not hasattr(service, "send_test_alert"):
            raise ApiError(409, "unsupported", "this server cannot send test alerts")
        a, sent = service.send_test_alert(who.name, clock(), unit=unit or None, ttl_s=ttl)
        if not sent:
            return _answer(a, "already_active", f"a test alert sent by {a.labels.get('requested_by', '?')} is "
                                                f"still active (id {a.id}); resolve it first or wait until it ends")
        _tell(a)
        return _answer(a, "sent", f"test alert sent by {who.name}; it ends by itself after {ttl:g} s")

    @router.post("/api/alerts/{alert_id}/resolve", tags=["alerts"], summary="End a test alert now",
                 response_model=m.ActionAnswer, responses=errors(401, 403, 404, 409),
                 openapi_extra=secured("operator"))
    @_guarded
    async def resolve_alert(alert_id: str, request: Request) -> Response:
        """No body.  Ends a test alert now; a real alert is refused (409 "not_a_test_alert"): it ends when
        its condition clears."""
        from alerts.lifecycle import NotActive, NotFound

        who = auth(request, "operator")
        if not hasattr(service, "resolve_test_alert"):
            raise ApiError(409, "unsupported", "this server cannot resolve alerts by hand")
        try:
            a = service.resolve_test_alert(alert_id, clock(), by=who.name)
        except NotFound:
            raise ApiError(404, "not_found", f"no alert with id {_short(alert_id)}") from None
        except NotActive as exc:
            raise ApiError(409, "resolved", str(exc)) from None
        except ValueError as exc:
            raise ApiError(409, "not_a_test_alert", str(exc)) from None
        _tell(a)
        return _answer(a, "resolved", f"test alert resolved by {who.name}")


# `token=` in a query, also percent-encoded inside another parameter (`/signin?next=%2F%3Ftoken%3D...`)
_TOKEN_RE = re.compile(r"(?i)((?:[?&]|%3F|%26)token(?:=|%3D))(?:(?!%26)[^&\s\"])*")


class TokenRedactingFilter(logging.Filter):
    """Logging filter that replaces `token=...` in log records (uvicorn's access log shows query strings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(_TOKEN_RE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_RE.sub(r"\1***", record.msg)
        return True


def install_token_redaction(logger_names: tuple[str, ...] = ("uvicorn.access", "uvicorn.error", "httpx")) -> None:
    for name in logger_names:
        lg = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in lg.filters):
            lg.addFilter(TokenRedactingFilter())
