"""FastAPI helpers: credentials from a request or WebSocket, and `require(request, need)`.

A token comes from `Authorization: Bearer TOKEN`, else `?token=`; a session
from the `ioc_session` cookie (set by the wall's sign-in).  Refusals are
401 (no/malformed/unknown/revoked credentials, with `WWW-Authenticate:
Bearer`) or 403 (a principal without the role needed), answered as
`{"detail", "detail_vi", "reason"}` once `install_auth_errors(app)` ran.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

from ioc.auth.authenticator import Authenticator
from ioc.auth.principal import Principal

SESSION_COOKIE = "ioc_session"
MALFORMED = ""
"""`request_credentials` gives this token for an Authorization header that is not `Bearer <token>`."""

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_ROLE_VI = {"viewer": "xem (viewer)", "operator": "điều hành (operator)", "admin": "quản trị (admin)",
            "ingest": "nạp dữ liệu (ingest)"}


class AuthError(HTTPException):
    """An access-control refusal with a reason label and words in English and Vietnamese."""

    def __init__(self, status: int, reason: str, en: str, vi: str) -> None:
        super().__init__(status, detail=en, headers=_CHALLENGE if status == 401 else None)
        self.reason = reason
        self.vi = vi


def request_credentials(conn: Any) -> tuple[str | None, str | None]:
    """(token, session id) of a Request or WebSocket; token is MALFORMED ("") for a bad header."""
    header = conn.headers.get("authorization")
    token: str | None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        token = value.strip() if scheme.lower() == "bearer" and value.strip() else MALFORMED
    else:
        token = conn.query_params.get("token") or None
    return token, conn.cookies.get(SESSION_COOKIE) or None


def authenticator(conn: Any) -> Authenticator:
    return conn.app.state.auth


def identify(conn: Any, auth: Authenticator | None = None) -> Principal:
    """The signed-in principal of a request, or AuthError 401 (counted by reason).

    `auth` defaults to `conn.app.state.auth`."""
    auth = auth if auth is not None else authenticator(conn)
    token, session = request_credentials(conn)
    if token == MALFORMED:
        auth.record_failure("malformed")
        raise AuthError(401, "malformed", "malformed Authorization header: use 'Authorization: Bearer <token>'",
                        "tiêu đề Authorization sai dạng: dùng 'Authorization: Bearer <mã>'")
    if token is not None:
        p = auth.authenticate(token)  # counts unknown / revoked itself
        if p is None:
            raise AuthError(401, "invalid_token", "invalid or revoked token",
                            "mã truy cập không hợp lệ hoặc đã bị thu hồi")
        return p
    if session is not None:
        p = auth.session_principal(session)
        if p is None:
            raise AuthError(401, "session_expired", "your session has ended (signed out or revoked): sign in again",
                            "phiên đăng nhập đã kết thúc (đã thu hồi): hãy đăng nhập lại")
        return p
    auth.record_failure("missing")
    raise AuthError(401, "authentication_required",
                    "authentication required: send 'Authorization: Bearer <token>'",
                    "cần đăng nhập: gửi 'Authorization: Bearer <mã>'")


def require(conn: Any, need: str, auth: Authenticator | None = None) -> Principal:
    """The principal of the request if it may do what needs `need`, else AuthError 401/403."""
    auth = auth if auth is not None else authenticator(conn)
    p = identify(conn, auth)
    if not p.allows(need):
        auth.record_failure("forbidden")
        article = "an" if need[0] in "aeiou" else "a"
        raise AuthError(403, "forbidden", f"this needs {article} {need} token; yours is {p.role}",
                        f"thao tác này cần quyền {_ROLE_VI[need]}; quyền của bạn: {_ROLE_VI.get(p.role, p.role)}")
    return p


def install_auth_errors(app: FastAPI) -> None:
    """Render AuthError as {"detail", "detail_vi", "reason"} (other HTTPExceptions keep FastAPI's form)."""

    @app.exception_handler(AuthError)
    async def _auth_error(request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "detail_vi": exc.vi, "reason": exc.reason},
                            status_code=exc.status_code, headers=exc.headers)
