"""Principal management over HTTP (admin), the "assign to" list (operator+) and "who am I".

    GET    /api/principals                 every principal (never a token or hash)
    POST   /api/principals                 {"name", "role", "feeds"?, "entities"?} → 201 + the token, once
    DELETE /api/principals/{name}          revoke (its tokens and sessions stop working)
    POST   /api/principals/{name}/rotate   a new token, once; the old one and its sessions stop working
    GET    /api/people                     names and roles of active people
    GET    /api/me                         the signed-in principal
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from ioc import api_models as m
from ioc.api_models import error_responses as errors, json_body, secured
from ioc.auth.authenticator import Authenticator
from ioc.auth.http import identify, require
from ioc.auth.principal import AuthInputError
from ioc.auth.store import DuplicatePrincipal, UnknownPrincipal
from ioc.serve import BodyRefused, read_body

MAX_BODY_BYTES = 1024 * 1024  # a scope may list many stations

_enc = msgspec.json.Encoder()


def _json(data: object, status: int = 200) -> Response:
    return Response(_enc.encode(data), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _refused(status: int, reason: str, detail: str) -> Response:
    return _json({"detail": detail, "reason": reason}, status)


def build_admin_router(auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["access"])

    @router.get("/api/me", summary="Who am I", response_model=m.PrincipalDoc, responses=errors(401),
                openapi_extra=secured("signed_in"))
    async def me(request: Request) -> Response:
        """The principal of this token or session: name, role and (ingest) scope."""
        return _json(identify(request).public())

    @router.get("/api/people", summary="People an alert can be assigned to", response_model=m.People,
                responses=errors(401, 403), openapi_extra=secured("operator"))
    async def people(request: Request) -> Response:
        require(request, "operator")
        return _json({"people": [{"name": p.name, "role": p.role} for p in auth.people()]})

    @router.get("/api/principals", summary="List principals", response_model=m.PrincipalList,
                responses=errors(401, 403), openapi_extra=secured("admin"))
    async def list_principals(request: Request) -> Response:
        """Every principal, revoked ones too; never a token or its hash."""
        require(request, "admin")
        from ioc.timeutil import format_ts

        rows = [{**r, "created_at": format_ts(r["created_at"]) if r["created_at"] is not None else None,
                 "revoked_at": format_ts(r["revoked_at"]) if r["revoked_at"] is not None else None}
                for r in auth.listing()]
        return _json({"principals": rows})

    @router.post("/api/principals", summary="Add a principal", status_code=201, response_model=m.PrincipalToken,
                 responses=errors(400, 401, 403, 409, 413, 422),
                 openapi_extra={**secured("admin"), **json_body(m.NewPrincipal)})
    async def add_principal(request: Request) -> Response:
        """Its token is in the answer, once: it is stored only as a hash."""
        require(request, "admin")
        try:
            raw = await read_body(request, MAX_BODY_BYTES)
            body = msgspec.json.decode(raw) if raw.strip() else None
        except BodyRefused as exc:
            return _refused(exc.status, exc.reason, exc.detail)
        except (msgspec.DecodeError, RecursionError):
            return _refused(400, "bad_json", "the body is not JSON: send {\"name\": ..., \"role\": ...}")
        except ClientDisconnect:
            return _refused(400, "disconnected", "the client went away before the body was complete")
        if not isinstance(body, dict):
            return _refused(422, "not_an_object", "send a JSON object {\"name\": ..., \"role\": ...}")
        try:
            p, token = auth.add(body.get("name"), body.get("role"), body.get("feeds"), body.get("entities"))
        except AuthInputError as exc:
            return _refused(422, "invalid_value", str(exc))
        except DuplicatePrincipal as exc:
            return _refused(409, "duplicate", str(exc))
        return _json({"principal": p.public(), "token": token}, 201)

    def _managed(name: str) -> Response | None:
        if auth.is_env(name):
            return _refused(409, "environment_principal",
                            f"{name!r} comes from IOC_{name.upper()}_TOKEN: change or unset it in the environment")
        return None

    @router.delete("/api/principals/{name}", summary="Revoke a principal", response_model=m.Revoked,
                   responses=errors(401, 403, 404, 409), openapi_extra=secured("admin"))
    async def revoke(name: str, request: Request) -> Response:
        require(request, "admin")
        if (refused := _managed(name)) is not None:
            return refused
        try:
            auth.revoke(name)
        except UnknownPrincipal as exc:
            return _refused(404, "unknown_principal", str(exc))
        return _json({"revoked": name})

    @router.post("/api/principals/{name}/rotate", summary="Give a principal a new token",
                 response_model=m.PrincipalToken, responses=errors(401, 403, 404, 409), openapi_extra=secured("admin"))
    async def rotate(name: str, request: Request) -> Response:
        require(request, "admin")
        if (refused := _managed(name)) is not None:
            return refused
        try:
            p, token = auth.rotate(name)
        except UnknownPrincipal as exc:
            return _refused(404, "unknown_principal", str(exc))
        return _json({"principal": p.public(), "token": token})

    return router
