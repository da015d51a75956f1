"""The wall and console pages behind a sign-in, and the sign-in itself.

`/`, `/wall/{panel}` (viewer) and `/console` (operator) answer their page to
a signed-in browser (the `ioc_session` cookie) or a script
(`Authorization: Bearer`).  Without valid credentials they answer **401 with
the sign-in page** as the body (a small bilingual form, no script), with the
wrong role 403 with a page that says which role is needed.

A kiosk URL `/?token=TOKEN` signs a wall display in once: the token is
exchanged for a random session id in an HttpOnly, SameSite=Strict cookie
(`Secure` over https) and the answer is 303 to the same URL without the
token, so the address bar, the history and a screenshot no longer hold it;
reloads then go by the cookie.  The session dies when its principal is
revoked or rotated (ioc/auth).

`/signin`: GET the page; POST a form (`token`, `next`) → 303 to `next`, or
JSON `{"token"}` → 200 `{"name", "role"}`, both setting the cookie.
`/signout` (POST) ends the session on the server and clears the cookie.
Failed sign-ins are counted by the authenticator
(`ioc_auth_failures_total{reason}`).
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from ioc.api_models import DESCRIPTIONS, SignedIn, SignInBody, error_responses, open_access, secured
from ioc.auth.http import MALFORMED, SESSION_COOKIE, request_credentials
from ioc.auth.authenticator import SESSION_MAX_AGE_S
from ioc.docs_ui import docs_page, init_script
from ioc.serve import BodyRefused, read_body

MAX_SIGNIN_BODY_BYTES = 16 * 1024
PAGE_NEEDS = {"wall": "viewer", "console": "operator", "docs": "viewer"}
NO_STORE = {"Cache-Control": "no-store"}

# (Vietnamese, English) words of the sign-in page, by situation
MESSAGES: dict[str, tuple[str, str]] = {
    "signin": ("Dán mã truy cập của bạn để mở màn hình này.", "Paste your access token to open this screen."),
    "bad_token": ("Mã truy cập không đúng hoặc đã bị thu hồi. Hãy kiểm tra lại hoặc xin mã mới từ quản trị viên.",
                  "That access token is not valid or has been revoked. Check it, or ask an administrator for a new one."),
    "session": ("Phiên đăng nhập đã kết thúc (đã đăng xuất hoặc đã bị thu hồi). Hãy đăng nhập lại.",
                "Your session has ended (signed out or revoked). Please sign in again."),
    "signed_out": ("Bạn đã đăng xuất.", "You are signed out."),
    "no_pages": ("Mã {name} là mã nạp dữ liệu (ingest): mã này không mở được màn hình. Hãy dùng mã xem hoặc mã điều hành.",
                 "{name} is an ingest token: it cannot open screens. Use a viewer or operator token."),
    "operator": ("Tài khoản {name} có quyền {role}; bảng điều khiển cần quyền điều hành (operator). "
                 "Hãy đăng nhập bằng mã điều hành, hoặc quay lại màn hình tường.",
                 "{name} has the {role} role; the console needs the operator role. "
                 "Sign in with an operator token, or go back to the wall."),
}
_KIND = {"signin": "info", "signed_out": "ok"}


class AssetFiles(StaticFiles):
    """`/static/`: the scripts, styles and strings the pages load, open to all (the sign-in page needs
    them); the pages themselves only through their routes above, never as `/static/*.html`."""

    async def get_response(self, path: str, scope: dict) -> Response:
        if path.lower().endswith((".html", ".htm")):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def safe_next(value: Any) -> str:
    """A local path to go to after signing in (never another host: no open redirect)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\r\n\t\\") or len(value) > 2000:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]  # never echo one
    return parts.path + (f"?{urlencode(query)}" if query else "")


class SignInPage:
    """The sign-in page template, filled in per answer (every value HTML-escaped)."""

    def __init__(self, path: Path) -> None:
        self.template = Template(path.read_text(encoding="utf-8"))

    def render(self, situation: str, next_path: str, **params: str) -> bytes:
        vi, en = MESSAGES[situation]
        esc = {k: html.escape(v) for k, v in params.items()}
        return self.template.safe_substitute(
            reason=situation, kind=_KIND.get(situation, "error"), role="status" if situation in _KIND else "alert",
            message_vi=vi.format(**esc), message_en=en.format(**esc),
            next=html.escape(safe_next(next_path), quote=True),
        ).encode("utf-8")

    def answer(self, status: int, situation: str, next_path: str, **params: str) -> Response:
        headers = {**NO_STORE, "WWW-Authenticate": "Bearer"} if status == 401 else NO_STORE
        return Response(self.render(situation, next_path, **params), status_code=status,
                        media_type="text/html; charset=utf-8", headers=headers)


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, max_age=int(SESSION_MAX_AGE_S), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def _here(request: Request) -> str:
    """This request's path and query without `token`."""
    url = request.url.remove_query_params("token")
    return url.path + (f"?{url.query}" if url.query else "")


def build_pages_router(static: Path) -> APIRouter:
    router = APIRouter(tags=["pages"])
    signin = SignInPage(static / "signin.html")
    files = {"wall": static / "index.html", "console": static / "console.html"}

    def page(request: Request, which: str) -> Response:
        auth = request.app.state.auth
        need = PAGE_NEEDS[which]
        if "token" in request.query_params and "authorization" not in request.headers:
            return _kiosk(request)
        token, session_id = request_credentials(request)
        if token == MALFORMED:
            auth.record_failure("malformed")
            return signin.answer(401, "bad_token", _here(request))
        principal = auth.authenticate(token) if token else auth.session_principal(session_id)
        if principal is None:
            # an unknown token or ended session is counted by the authenticator; a first visit is not a failure
            situation = "bad_token" if token else ("session" if session_id else "signin")
            response = signin.answer(401, situation, _here(request))
            if session_id:
                clear_session_cookie(response, request)
            return response
        if not principal.allows(need):
            auth.record_failure("forbidden")
            if principal.role == "ingest":
                return signin.answer(403, "no_pages", _here(request), name=principal.name)
            return signin.answer(403, "operator", _here(request), name=principal.name, role=principal.role)
        if which == "docs":
            return docs_page()
        return FileResponse(files[which], headers={"Cache-Control": "no-cache"})

    def _kiosk(request: Request) -> Response:
        """`?token=` on a page: exchange it for the session cookie, then 303 to the URL without it."""
        auth = request.app.state.auth
        principal = auth.authenticate(request.query_params.get("token"))
        here = _here(request)
        if principal is None:
            return signin.answer(401, "bad_token", here)
        if principal.role == "ingest":
            auth.record_failure("forbidden")
            return signin.answer(403, "no_pages", here, name=principal.name)
        response = Response(status_code=303, headers={"Location": here, **NO_STORE})
        set_session_cookie(response, request, auth.open_session(principal))
        return response

    @router.get("/", summary="The wall display", response_class=HTMLResponse, responses=PAGE_RESPONSES,
                openapi_extra=secured("viewer"))
    async def wall(request: Request) -> Response:
        """The live wall (HTML).  Without a session: 401 with the sign-in page; `?token=` signs a kiosk in
        (303 to the same address without the token, setting the session cookie)."""
        return page(request, "wall")

    @router.get("/wall/{panel}", summary="One panel of the wall", response_class=HTMLResponse,
                responses=PAGE_RESPONSES, openapi_extra=secured("viewer"))
    async def wall_panel(panel: str, request: Request) -> Response:
        """The wall showing one panel full screen (rain, dossiers, queues, alerts)."""
        return page(request, "wall")

    @router.get("/console", summary="The operator console", response_class=HTMLResponse,
                responses=PAGE_RESPONSES, openapi_extra=secured("operator"))
    async def operator_console(request: Request) -> Response:
        """Acknowledge, comment, assign and silence alerts (HTML); viewers get 403 with a page saying why."""
        return page(request, "console")

    @router.get("/docs", summary="This API's documentation (Swagger UI)", response_class=HTMLResponse,
                responses=PAGE_RESPONSES, openapi_extra=secured("viewer"))
    async def api_docs(request: Request) -> Response:
        """Swagger UI over /openapi.json, from files installed with the server (no outside host)."""
        return page(request, "docs")

    @router.get("/api/docs", include_in_schema=False)
    async def api_docs_alias(request: Request) -> Response:
        return page(request, "docs")

    @router.get("/docs/init.js", include_in_schema=False)
    async def api_docs_init() -> Response:
        return init_script()

    @router.get("/signin", summary="The sign-in page", response_class=HTMLResponse,
                responses=_html(200, "The sign-in form (HTML)."), openapi_extra=open_access())
    async def signin_page(request: Request, next: str | None = None, signed_out: str | None = None) -> Response:
        """A bilingual form to paste a token into; `next`: where to go afterwards (a local path)."""
        return signin.answer(200, "signed_out" if signed_out else "signin", next or "/")

    @router.post("/signin", summary="Sign in with a token", response_model=SignedIn, responses=SIGNIN_RESPONSES,
                 openapi_extra={**open_access(), "requestBody": SIGNIN_BODY})
    async def signin_post(request: Request) -> Response:
        """A form (`token`, `next`) → 303 to `next`; JSON `{"token"}` → 200 `{"name", "role"}`; both set the
        `ioc_session` cookie (HttpOnly, SameSite=Strict).  A wrong token: 401 (the page again, or JSON)."""
        auth = request.app.state.auth
        as_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
        try:
            body = await read_body(request, MAX_SIGNIN_BODY_BYTES)
        except BodyRefused as exc:
            return _json({"detail": exc.detail, "reason": exc.reason}, exc.status)
        except ClientDisconnect:
            return _json({"detail": "the client went away before the body was complete", "reason": "disconnected"}, 400)
        fields = _fields(body, as_json)
        if fields is None:
            what = "a JSON object {\"token\": \"...\"}" if as_json else "a form with a token field"
            return _json({"detail": f"could not read the sign-in: send {what}", "reason": "bad_request"}, 400)
        token, next_path = fields.get("token"), safe_next(fields.get("next"))
        principal = auth.authenticate(token) if isinstance(token, str) and token.strip() else None
        if principal is None:
            if not (isinstance(token, str) and token.strip()):
                auth.record_failure("missing")
            if as_json:
                return _json({"detail": "that access token is not valid or has been revoked",
                              "detail_vi": MESSAGES["bad_token"][0], "reason": "invalid_token"}, 401,
                             {"WWW-Authenticate": "Bearer"})
            return signin.answer(401, "bad_token", next_path)
        if principal.role == "ingest":
            auth.record_failure("forbidden")
            if as_json:
                return _json({"detail": "an ingest token cannot sign in to the wall or console",
                              "reason": "forbidden"}, 403)
            return signin.answer(403, "no_pages", next_path, name=principal.name)
        if as_json:
            response = _json({"name": principal.name, "role": principal.role}, 200)
        else:
            response = Response(status_code=303, headers={"Location": next_path, **NO_STORE})
        set_session_cookie(response, request, auth.open_session(principal))
        return response

    @router.post("/signout", summary="Sign out", status_code=204, response_class=Response,
                 responses=SIGNOUT_RESPONSES, openapi_extra=open_access())
    async def signout(request: Request) -> Response:
        """Ends the session on every replica and clears the cookie: 204 for a script (`X-Requested-With` or
        `Accept: application/json`), else 303 to the sign-in page."""
        auth = request.app.state.auth
        _, session_id = request_credentials(request)
        if session_id:
            auth.close_session(session_id)  # dead here and on every replica, not just forgotten by this browser
        scripted = "x-requested-with" in request.headers or "application/json" in request.headers.get("accept", "")
        response = Response(status_code=204, headers=NO_STORE) if scripted else \
            Response(status_code=303, headers={"Location": "/signin?signed_out=1", **NO_STORE})
        clear_session_cookie(response, request)
        return response

    return router


def _html(status: int, description: str) -> dict[int, dict]:
    return {status: {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}}


_PAGE_ERRORS = {code: {"description": DESCRIPTIONS[code] + " Answered with the sign-in page, saying why.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                        **({"headers": error_responses(401)[401]["headers"]} if code == 401 else {})}
                for code in (401, 403)}
PAGE_RESPONSES: dict[int | str, dict] = {
    **_html(200, "The page (HTML)."),
    303: {"description": "Kiosk sign-in (`?token=`): the session cookie is set; go to the same address without the "
                         "token.", "headers": {"Location": {"schema": {"type": "string"}, "required": True}}},
    **_PAGE_ERRORS,
}
_redirect = {"description": "Signed in: go to `next` (a form post).",
             "headers": {"Location": {"schema": {"type": "string"}, "required": True}}}
SIGNIN_RESPONSES: dict[int | str, dict] = {
    303: _redirect,
    **error_responses(400, 401, 403, 413, html=(401, 403)),
}
SIGNIN_BODY = {"required": True, "content": {
    "application/json": {"schema": {k: v for k, v in SignInBody.model_json_schema().items() if k != "title"}},
    "application/x-www-form-urlencoded": {"schema": {k: v for k, v in SignInBody.model_json_schema().items()
                                                     if k != "title"}},
}}
SIGNOUT_RESPONSES: dict[int | str, dict] = {
    204: {"description": "Signed out (a script)."},
    303: {"description": "Signed out: go to the sign-in page.",
          "headers": {"Location": {"schema": {"type": "string"}, "required": True}}},
}


def _fields(body: bytes, as_json: bool) -> dict | None:
    if as_json:
        try:
            data = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return None
        return data if isinstance(data, dict) else None
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10))
    except (UnicodeDecodeError, ValueError):
        return None


def _json(data: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json",
                    headers={**NO_STORE, **(headers or {})})
