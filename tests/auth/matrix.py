"""The authorization matrix: every route × every kind of caller → the expected answer.

One table (`ROUTES`) of what each route needs, one (`CALLERS`) of who calls,
and `expected(need, caller)`.  A route in the OpenAPI document missing from
`ROUTES` fails the matrix test, so a new route must say what it needs here.
Extend with more rows by adding to `ROUTES` / `EXTRA_ROUTES` (pages and
static assets are there) or `WS_ROUTES` (WebSockets); a row's `call(ctx)` gives the path parameters and body that
make an allowed call succeed (2xx).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# who calls: how the request is authenticated
CALLERS = ("none", "malformed", "revoked", "viewer", "operator", "admin", "ingest_other_feed", "ingest")

# what a route needs (ioc.auth.Principal.allows), plus: open (anyone), signed_in (any valid principal)
ALLOWED = {
    "open": set(CALLERS),
    "signed_in": {"viewer", "operator", "admin", "ingest_other_feed", "ingest"},
    "viewer": {"viewer", "operator", "admin"},
    "operator": {"operator", "admin"},
    "admin": {"admin"},
    "ingest": {"ingest"},
}
UNAUTHENTICATED = {"none", "malformed", "revoked"}


def expected(need: str, caller: str) -> str:
    """'2xx', '401', '403' (or '404' for a route that must not exist: need "gone")."""
    if need == "gone":
        return "404"
    if caller in ALLOWED[need]:
        return "2xx"
    if caller in UNAUTHENTICATED:
        return "401"
    return "403"  # a valid principal without the role (an ingest principal outside its feed: 403 too)


@dataclass(frozen=True)
class Call:
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # added to the caller's


@dataclass(frozen=True)
class Route:
    need: str
    call: Callable[[Any], Call] = lambda ctx: Call()


def _rain(ctx) -> Call:
    return Call(json={"kind": "rain", "station": "VP-040", "ts": "2026-10-28T10:00:00+07:00", "rain_mm": 0.2})


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/healthz"): Route("open"),
    ("GET", "/metrics"): Route("open"),  # IOC_METRICS_TOKEN unset (the default): Prometheus scrapes it
    ("GET", "/api/snapshot"): Route("viewer"),
    ("GET", "/api/catalog"): Route("viewer"),
    ("POST", "/api/ingest"): Route("ingest", _rain),
    ("GET", "/api/me"): Route("signed_in"),
    ("GET", "/api/people"): Route("operator"),
    ("GET", "/api/principals"): Route("admin"),
    ("POST", "/api/principals"): Route("admin", lambda ctx: Call(json={"name": ctx.unique("m"), "role": "viewer"})),
    ("DELETE", "/api/principals/{name}"): Route("admin", lambda ctx: Call({"name": ctx.fresh_principal()})),
    ("POST", "/api/principals/{name}/rotate"): Route("admin", lambda ctx: Call({"name": ctx.fresh_principal()})),
    ("GET", "/api/alerts"): Route("viewer"),
    ("GET", "/api/alerts/{alert_id}"): Route("viewer", lambda ctx: Call({"alert_id": ctx.alert_id})),
    ("GET", "/api/alerts/{alert_id}/history"): Route("viewer", lambda ctx: Call({"alert_id": ctx.alert_id})),
    ("GET", "/api/alerts/{alert_id}/cap"): Route("viewer", lambda ctx: Call({"alert_id": ctx.alert_id})),
    ("GET", "/api/cap/feed.atom"): Route("viewer"),
    ("POST", "/api/alerts/{alert_id}/ack"): Route("operator", lambda ctx: Call({"alert_id": ctx.alert_id},
                                                                              {"comment": "matrix"})),
    ("POST", "/api/alerts/{alert_id}/comments"): Route("operator", lambda ctx: Call({"alert_id": ctx.alert_id},
                                                                                   {"text": "matrix"})),
    ("POST", "/api/alerts/{alert_id}/assign"): Route("operator", lambda ctx: Call({"alert_id": ctx.alert_id},
                                                                                 {"to": "operator"})),
    ("POST", "/api/alerts/{alert_id}/unassign"): Route("operator", lambda ctx: Call({"alert_id": ctx.alert_id})),
    ("POST", "/api/areas/{unit}/risk-level"): Route("operator", lambda ctx: Call({"unit": "vinh-yen"},
                                                                                {"level": 2, "reason": "matrix"})),
    ("POST", "/api/alerts/test"): Route("operator", lambda ctx: Call(json={})),  # a second call: already_active (200)
    ("POST", "/api/alerts/{alert_id}/resolve"): Route("operator", lambda ctx: Call({"alert_id": ctx.fresh_test_alert()})),
    ("GET", "/api/silences"): Route("viewer"),
    ("POST", "/api/silences"): Route("operator", lambda ctx: Call(json={"matchers": {"rule": "matrix"},
                                                                        "duration": "1h"})),
    ("DELETE", "/api/silences/{silence_id}"): Route("operator", lambda ctx: Call({"silence_id": ctx.fresh_silence()})),
    ("GET", "/api/trends/rain/{station}"): Route("viewer", lambda ctx: Call({"station": "VP-001"})),
    ("GET", "/api/trends/dossiers/{unit}"): Route("viewer", lambda ctx: Call({"unit": "vinh-yen"})),
    ("GET", "/api/trends/queue/{site}"): Route("viewer", lambda ctx: Call({"site": "vinh-yen"})),
    # the browser surfaces (ioc/pages.py): a person without a session gets the sign-in page (401 / 403)
    ("GET", "/"): Route("viewer"),
    ("GET", "/wall/{panel}"): Route("viewer", lambda ctx: Call({"panel": "rain"})),
    ("GET", "/console"): Route("operator"),
    ("GET", "/docs"): Route("viewer"),  # Swagger UI from installed files (ioc/docs_ui.py)
    ("GET", "/signin"): Route("open"),
    ("POST", "/signin"): Route("open", lambda ctx: Call(json={"token": ctx.viewer_token})),  # the body's token counts
    ("POST", "/signout"): Route("open", lambda ctx: Call(headers={"X-Requested-With": "matrix"})),
}

EXTRA_ROUTES: dict[tuple[str, str], Route] = {
    # not in the OpenAPI document (include_in_schema=False), checked all the same
    ("GET", "/openapi.json"): Route("viewer"),
    ("GET", "/redoc"): Route("gone"),  # FastAPI's CDN-loading ReDoc stays off
    ("GET", "/api/docs"): Route("viewer"),  # the same Swagger UI page as /docs
    ("GET", "/docs/init.js"): Route("open"),
    ("GET", "/docs/assets/swagger-ui-bundle.js"): Route("open"),
    ("GET", "/docs/assets/swagger-ui.css"): Route("open"),
    ("GET", "/docs/assets/redoc.standalone.js"): Route("gone"),  # only the Swagger UI files are served
    ("GET", "/wall/alerts?lang=en"): Route("viewer"),
    ("GET", "/signin?next=/console"): Route("open"),
    ("GET", "/static/wall.js"): Route("open"),
    ("GET", "/static/live.js"): Route("open"),
    ("GET", "/static/wall.css"): Route("open"),
    ("GET", "/static/console.js"): Route("open"),
    ("GET", "/static/i18n.json"): Route("open"),
    ("GET", "/static/signin.css"): Route("open"),
    ("GET", "/static/console.html"): Route("gone"),  # pages only through their routes, never as files
    ("GET", "/static/index.html"): Route("gone"),
    ("GET", "/static/signin.html"): Route("gone"),
}

# WebSockets (ioc/ws_auth.py): admitted = a first "snapshot" message; refused = accepted, then closed with
# 4401 (where HTTP says 401) or 4403 (where HTTP says 403) and a reason
WS_ROUTES: dict[str, str] = {"/ws": "viewer", "/ws?topics=alerts": "viewer"}
WS_CLOSE = {"401": 4401, "403": 4403}
