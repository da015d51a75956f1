"""Operator API for alerts (FastAPI adapter over alerts.engine.AlertEngine).

    router = build_alerts_router(engine, tokens={"tok-1": "viewer", "tok-2": "operator:lan"},
                                 on_update=hub_publish)
    app.include_router(router)

Tokens map token → role: "viewer" or "operator" (operator implies viewer),
optionally with a name after a colon ("operator:lan") used as `by` when an
acknowledgement does not say who.  Send `Authorization: Bearer TOKEN`
(`?token=` is accepted too; call install_token_redaction() so access logs
never show it).  Missing token → 401, unknown token → 401, a viewer acting →
403, each with {"detail": "..."}.  Tokens are never logged or echoed.

Endpoints: GET /api/alerts (state, severity, rule, unit, limit),
GET /api/alerts/{id}, GET /api/alerts/{id}/history, GET /api/alerts/{id}/cap,
POST /api/alerts/{id}/ack, POST /api/silences, GET /api/silences,
DELETE /api/silences/{id}.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import msgspec
from fastapi import APIRouter, HTTPException, Request, Response

from ioc.records import Alert
from ioc.timeutil import format_ts, parse_ts

log = logging.getLogger("ioc.alerts_api")
_enc = msgspec.json.Encoder()
ROLES = {"viewer": 0, "operator": 1}
STATES = ("firing", "active", "acknowledged", "unacknowledged", "resolved")
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Principal:
    role: str
    name: str


def _json(data: Any, status: int = 200) -> Response:
    return Response(_enc.encode(data), status_code=status, media_type="application/json")


def _parse_roles(tokens: dict[str, str]) -> list[tuple[bytes, Principal]]:
    out = []
    for token, spec in tokens.items():
        role, _, name = str(spec).partition(":")
        if role not in ROLES:
            raise ValueError(f"token role must be 'viewer' or 'operator' (optionally 'operator:NAME'), got {role!r}")
        if not token:
            raise ValueError("empty token in configuration")
        out.append((token.encode(), Principal(role, name or role)))
    return out


def _silence_json(engine, s) -> dict:
    return {"id": s.id, "matchers": s.matchers, "starts_at": format_ts(s.starts_at) if s.starts_at is not None else None,
            "ends_at": format_ts(s.ends_at), "created_by": s.created_by,
            "created_at": format_ts(s.created_at) if s.created_at is not None else None, "comment": s.comment,
            "expired": bool(getattr(engine, "silence_expired", lambda _s: False)(s))}


def _when(value: Any, field: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_ts(value)
        except ValueError:
            pass
    raise HTTPException(422, detail=f"{field}: expected an ISO 8601 time with offset or epoch seconds, got {value!r}")


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise HTTPException(400, detail="request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, detail="request body must be a JSON object")
    return body


def build_alerts_router(service, tokens: dict[str, str], *, on_update: Callable[[Alert], None] | None = None,
                        cap_sender: str = "ioc-monitor@localhost", clock: Callable[[], float] = time.time) -> APIRouter:
    """`service`: an AlertEngine (or anything with its list/get/history/acknowledge/silence methods)."""
    principals = _parse_roles(tokens)
    router = APIRouter()

    def auth(request: Request, need: str = "viewer") -> Principal:
        header = request.headers.get("authorization", "")
        token = ""
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise HTTPException(401, detail="malformed Authorization header: use 'Bearer <token>'",
                                    headers={"WWW-Authenticate": "Bearer"})
            token = value.strip()
        else:
            token = request.query_params.get("token", "")
        if not token:
            raise HTTPException(401, detail="authentication required: send 'Authorization: Bearer <token>' "
                                            "or ?token=<token>", headers={"WWW-Authenticate": "Bearer"})
        given = token.encode()
        found = None
        for tok, p in principals:  # compare against every token, constant time each
            if hmac.compare_digest(tok, given):
                found = p
        if found is None:
            raise HTTPException(401, detail="invalid token", headers={"WWW-Authenticate": "Bearer"})
        if ROLES[found.role] < ROLES[need]:
            raise HTTPException(403, detail=f"this action needs an {need} token; yours is a {found.role} token")
        return found

    def _get(alert_id: str) -> Alert:
        a = service.get(alert_id)
        if a is None:
            raise HTTPException(404, detail=f"no alert with id {alert_id!r}")
        return a

    @router.get("/api/alerts")
    async def list_alerts(request: Request, state: str | None = None, severity: str | None = None,
                          rule: str | None = None, unit: str | None = None, limit: int = 500) -> Response:
        auth(request)
        if state is not None and state not in STATES:
            raise HTTPException(422, detail=f"state must be one of {', '.join(STATES)}")
        if severity is not None and severity not in SEVERITIES:
            raise HTTPException(422, detail=f"severity must be one of {', '.join(SEVERITIES)}")
        items = service.list(state=state, severity=severity, rule=rule, unit=unit, limit=max(1, min(limit, 5000)))
        return _json({"alerts": items, "count": len(items)})

    @router.get("/api/alerts/{alert_id}")
    async def get_alert(alert_id: str, request: Request) -> Response:
        auth(request)
        return _json(_get(alert_id))

    @router.get("/api/alerts/{alert_id}/history")
    async def history(alert_id: str, request: Request) -> Response:
        auth(request)
        _get(alert_id)
        return _json({"id": alert_id, "history": service.history(alert_id)})

    @router.get("/api/alerts/{alert_id}/cap")
    async def cap(alert_id: str, request: Request) -> Response:
        auth(request)
        from alerts.cap import alert_to_cap

        a = _get(alert_id)
        rule = service.rule(a.rule) if hasattr(service, "rule") else None
        xml = alert_to_cap(a, catalog=getattr(service, "catalog", None), rule=rule, sender=cap_sender)
        return Response(xml, media_type="application/xml")

    @router.post("/api/alerts/{alert_id}/ack")
    async def ack(alert_id: str, request: Request) -> Response:
        who = auth(request, "operator")
        body = await _body(request)
        by, comment = body.get("by"), body.get("comment")
        if by is not None and (not isinstance(by, str) or not by.strip()):
            raise HTTPException(422, detail="by: expected a non-empty name")
        if comment is not None and not isinstance(comment, str):
            raise HTTPException(422, detail="comment: expected text")
        from alerts.lifecycle import NotActive, NotFound

        try:
            a = service.acknowledge(alert_id, by=(by or who.name).strip()[:200],
                                    comment=(comment or None) and comment[:2000], at=clock())
        except NotFound:
            raise HTTPException(404, detail=f"no alert with id {alert_id!r}") from None
        except NotActive as exc:
            raise HTTPException(409, detail=str(exc)) from None
        if on_update is not None:
            try:
                on_update(a)
            except Exception:  # the hub failing must not fail the acknowledgement
                log.exception("on_update callback failed for alert %s", alert_id)
        return _json(a)

    @router.post("/api/silences")
    async def add_silence(request: Request) -> Response:
        who = auth(request, "operator")
        body = await _body(request)
        matchers = body.get("matchers")
        if not isinstance(matchers, dict) or not matchers or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in matchers.items()):
            raise HTTPException(422, detail="matchers: expected a non-empty object of label → pattern, "
                                            "e.g. {\"rule\": \"rain_*\", \"unit\": \"vinh-yen\"}")
        now = clock()
        starts_at = _when(body["starts_at"], "starts_at") if body.get("starts_at") is not None else None
        if body.get("ends_at") is not None:
            ends_at = _when(body["ends_at"], "ends_at")
        elif body.get("duration") is not None:
            from alerts.rules import parse_duration

            try:
                ends_at = (starts_at or now) + parse_duration(body["duration"])
            except ValueError as exc:
                raise HTTPException(422, detail=f"duration: {exc}") from None
        else:
            raise HTTPException(422, detail="give ends_at (ISO time) or duration (e.g. \"2h\")")
        if ends_at <= (starts_at or now):
            raise HTTPException(422, detail="the silence would already be over: ends_at must be in the future")
        comment = body.get("comment") or ""
        by = body.get("by") or who.name
        if not isinstance(comment, str) or not isinstance(by, str):
            raise HTTPException(422, detail="comment and by must be text")
        try:
            s = service.add_silence(matchers, ends_at, starts_at=starts_at, by=by[:200], comment=comment[:2000],
                                    created_at=now)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        return _json(_silence_json(service, s), status=201)

    @router.get("/api/silences")
    async def list_silences(request: Request) -> Response:
        auth(request)
        return _json({"silences": [_silence_json(service, s) for s in service.silences()]})

    @router.delete("/api/silences/{silence_id}")
    async def delete_silence(silence_id: str, request: Request) -> Response:
        auth(request, "operator")
        if not service.remove_silence(silence_id):
            raise HTTPException(404, detail=f"no silence with id {silence_id!r}")
        return _json({"deleted": silence_id})

    return router


_TOKEN_RE = re.compile(r"([?&]token=)[^&\s\"]*")


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
