"""The web adapter: FastAPI app for the wall, /ws, /metrics and REST.

Thin by design: it parses, calls the runtime or hub, and serialises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ioc import api_models as m
from ioc.api_models import error_responses, open_access, secured
from ioc.auth.authenticator import Authenticator
from ioc.auth.http import install_auth_errors, request_credentials, require
from ioc.auth.principal import Principal
from ioc.auth.ratelimit import RateLimiter
from ioc.auth.tokens import hash_token, same_hash
from ioc.catalog import Catalog
from ioc.csrf import CsrfGuard
from ioc.errors import Reason, Rejection
from ioc.events import MAX_ARRAY_BODY_BYTES, BodyError, encode_event, feed_of, parse_items, split_body
from ioc.hub import TOPICS, Hub, Subscription
from ioc.pages import AssetFiles, build_pages_router
from ioc.runtime import AppBackend
from ioc.security_headers import SecurityHeaders
from ioc.serve import MAX_REQUEST_BYTES, BodyRefused, read_body
from ioc.timeutil import format_ts
from ioc.trends_api import build_trends_router
from ioc.ws_auth import WsGate

log = logging.getLogger("ioc.api")

HEARTBEAT_S = 5.0
MAX_BODY_BYTES = MAX_REQUEST_BYTES
"""Largest ingest body (16 MiB), refused with 413 while streaming, never buffered past it."""
MAX_EVENTS_PER_BODY = 50_000
"""Most lines (JSONL, blank ones included) or items (array) in one ingest body: 413 beyond."""
PARSE_SLICE = 2_000
"""Items parsed per turn of the event loop (≈ 2–10 ms)."""
SUBMIT_BATCH = 500
"""Positions handed to the runtime per batch (≈ 25 ms of the loop for rain with alerts), so one request never holds the loop for long."""


def wall_dir() -> Path:
    return Path(str(resources.files("dashboards").joinpath("wall")))


def entities_for_units(catalog: Catalog, units: list[str]) -> frozenset[str]:
    """A unit filter means: the units, their descendants, and their stations, sites and cameras."""
    selected: set[str] = set()
    stack = list(units)
    while stack:
        u = stack.pop()
        if u in selected:
            continue
        selected.add(u)
        stack.extend(catalog.children.get(u, []))
    out = set(selected)
    for st in catalog.stations.values():
        if st.district in selected or st.commune in selected:
            out.add(st.id)
    for site in catalog.sites.values():
        if site.unit in selected:
            out.add(site.id)
            out.update(site.cameras)
    return frozenset(out)


def make_subscription(catalog: Catalog, topics: Any, units: Any) -> Subscription:
    def as_list(v: Any) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str):
            return [x for x in v.split(",") if x]
        return [str(x) for x in v]

    t = [x for x in as_list(topics) if x in TOPICS]
    u = as_list(units)
    return Subscription(
        topics=frozenset(t) if t else frozenset(TOPICS),
        entities=entities_for_units(catalog, u) if u else None,
    )


def default_authenticator(runtime: Any) -> Authenticator:
    """The embedded runtime's principals (its data dir + IOC_*_TOKEN), else the IOC_*_TOKEN ones only."""
    from ioc.config import build_config

    config = getattr(runtime, "config", None)
    if config is not None and getattr(config, "data_dir", None) is not None:
        from ioc.auth.setup import embedded_authenticator

        return embedded_authenticator(config, getattr(runtime, "metrics", None))
    return Authenticator(None, build_config().env_tokens(),
                         failures=getattr(getattr(runtime, "metrics", None), "auth_failures", None))


def create_app(runtime: "AppBackend", alerts_router: Any = None, *, auth: Authenticator | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, max_events: int = MAX_EVENTS_PER_BODY,
               metrics_token: str | None = None, ingest_rate_per_s: float | None = None,
               ingest_burst: float | None = None) -> FastAPI:
    """The web app over any backend: the embedded Runtime, or a Redis-fed one (`ioc api`).

    Access control (ioc.auth, found by handlers on `app.state.auth`): every route but /healthz
    needs a token or session; /metrics needs `metrics_token` when one is set (IOC_METRICS_TOKEN);
    settings not given come from the runtime's Config.  /openapi.json (ioc.openapi_doc) and /docs
    (Swagger UI from installed files, ioc.docs_ui) need a viewer; FastAPI's CDN-loading /docs and
    /redoc are off."""
    from ioc.auth.admin_api import build_admin_router
    from ioc.config import Config

    from ioc.openapi_doc import install_error_handlers, install_openapi

    app = FastAPI(title="IOC streaming monitor", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None)
    config = getattr(runtime, "config", None)
    if not isinstance(config, Config):
        config = Config()
    if auth is None:
        auth = default_authenticator(runtime)
    app.state.auth = auth
    install_auth_errors(app)
    install_error_handlers(app)
    if metrics_token is None and config.metrics_token:
        metrics_token = config.metrics_token.reveal()
    metrics_hash = hash_token(metrics_token) if metrics_token else None
    limiter = RateLimiter(config.ingest_rate_per_s if ingest_rate_per_s is None else ingest_rate_per_s,
                          config.ingest_burst if ingest_burst is None else ingest_burst)
    hub: Hub = runtime.hub
    metrics = runtime.metrics
    catalog = runtime.catalog
    catalog_json = msgspec.json.encode(
        {
            "province": catalog.province,
            "name": catalog.name,
            "stations": list(catalog.stations.values()),
            "units": list(catalog.units.values()),
            "sites": list(catalog.sites.values()),
            "targets": catalog.targets,
        }
    )
    static = wall_dir()

    @app.get("/healthz", tags=["health"], summary="Liveness and readiness", response_model=None,
             responses={200: {"model": m.Health, "description": "Always 200 while serving."}},
             openapi_extra=open_access())
    async def healthz() -> dict:
        """Liveness (always 200 while serving) and readiness: ok | starting | degraded (+ reasons).

        Never fails: a watermark that cannot be formatted is shown as epoch seconds.
        """
        from ioc.runtime import safe_ts

        health = getattr(runtime, "health", None)
        try:
            h = health() if callable(health) else {}
        except Exception as exc:  # noqa: BLE001
            h = {"status": "degraded", "degraded": [f"health: {type(exc).__name__}: {exc}"]}
        body = {
            "status": h.get("status") or ("ok" if runtime.started else "starting"),
            "seq": hub.seq,
            "watermarks": {f: safe_ts(w) for f, w in runtime.watermarks().items()},
            "clients": len(hub.clients),
        }
        body.update({k: v for k, v in h.items() if k != "status"})
        return body

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response,
             responses={**m.text_content(CONTENT_TYPE_LATEST, "Prometheus text exposition (its version: in the "
                                                              "content type)."),
                        **error_responses(401)},
             openapi_extra={"security": [{}, {"bearer": []}]})
    async def prometheus_metrics(request: Request) -> Response:
        """Prometheus metrics; with IOC_METRICS_TOKEN set, only for `Authorization: Bearer` that token."""
        if metrics_hash is not None:
            token, _ = request_credentials(request)
            if not token or not same_hash(hash_token(token), metrics_hash):
                auth.record_failure("metrics")
                return JSONResponse({"detail": "this endpoint needs the metrics token (IOC_METRICS_TOKEN) as "
                                               "'Authorization: Bearer <token>'",
                                     "detail_vi": "cần mã metrics (IOC_METRICS_TOKEN): 'Authorization: Bearer <mã>'",
                                     "reason": "authentication_required"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        require(request, "viewer")
        return JSONResponse(app.openapi())

    @app.get("/api/snapshot", tags=["live data"], summary="Everything the wall shows now",
             response_model=m.Snapshot, responses=error_responses(401, 403), openapi_extra=secured("viewer"))
    async def snapshot(request: Request) -> Response:
        """The latest indicators and the active alerts, with the hub's sequence number (resume /ws from it)."""
        require(request, "viewer")
        ind, al = runtime.snapshot()
        body = b'{"seq":%d,"indicators":[' % hub.seq + b",".join(ind) + b'],"alerts":[' + b",".join(al) + b"]}"
        return Response(body, media_type="application/json")

    @app.get("/api/catalog", tags=["live data"], summary="Stations, units, sites and targets",
             response_model=m.CatalogDoc, responses=error_responses(401, 403), openapi_extra=secured("viewer"))
    async def get_catalog(request: Request) -> Response:
        """The province's catalog: rain stations, administrative units, one-stop-shop sites and Decision 766 targets."""
        require(request, "viewer")
        return Response(catalog_json, media_type="application/json")

    @app.post("/api/ingest", tags=["ingest"], summary="Send events (JSON, JSON array or JSONL)",
              response_model=m.IngestResult,
              responses={**error_responses(401), **error_responses(408, 413, 429, model=m.IngestRefused),
                         400: {"model": m.IngestRefused, "description": "Nothing taken in: an unreadable or empty "
                               "body, or every event rejected (see `rejections`)."},
                         403: {"description": "Not an ingest token (ErrorBody), or every event outside the "
                               "token's scope (IngestRefused, reason forbidden).",
                               "content": {"application/json": {"schema": {"anyOf": [
                                   {"$ref": "#/components/schemas/IngestRefused"},
                                   {"$ref": "#/components/schemas/ErrorBody"}]}}}}},
              openapi_extra={**secured("ingest"), "requestBody": m.INGEST_BODY})
    async def ingest(request: Request) -> Response:
        """Events in: one JSON event, a JSON array of events (≤ 1 MiB), or JSONL (≤ 16 MiB).

        Limits: the body is streamed and refused with 413 as soon as it passes
        `max_body_bytes` (or declares more), or holds more than `max_events`
        lines/items; a JSON array over 1 MiB is refused (send JSONL); a body
        that stalls gets 408.  Each event is validated (ioc.events); the whole
        body is validated before anything is submitted, then submitted in
        batches of `SUBMIT_BATCH` positions, parsing `PARSE_SLICE` at a time
        so the event loop is never held long.

        Answer (200 if at least one event was accepted, a duplicate or a
        correction; 400 if none was; 413/408 for a refused body, nothing
        processed):

            {"accepted": 11,            # new events taken in
             "duplicates": 1,           # seen before with the same value: changed nothing
             "corrected": 1,            # same identity, new value: replaced the earlier one
             "rejected": 1,
             "rejections": [{"position": 4, "reason": "out_of_range", "feed": "rain", "detail": "..."}],
             "results": [{"position": 2, "status": "duplicate"},
                         {"position": 3, "status": "corrected"},
                         {"position": 4, "status": "rejected", "reason": "out_of_range"}]}

        Positions count from 0: the line number in JSONL (blank lines count,
        and are skipped), the index in an array.  `results` lists only the
        positions that were not plainly accepted, in order.  A refused body
        answers {"accepted": 0, ..., "reason": "too_large", "detail": "..."}.

        Access: an ingest token (401/403 otherwise).  Events outside its scope (feeds,
        stations/sites/cameras/units) are refused as `forbidden_feed` / `forbidden_entity`,
        counted and dead-lettered like any rejection; 403 when every event was outside it.
        Past the principal's rate (IOC_INGEST_RATE_PER_S, IOC_INGEST_BURST): 429 with
        Retry-After, nothing read or processed.
        """
        principal = require(request, "ingest")
        wait_s = limiter.take(principal.name)
        if wait_s > 0:
            metrics.ingest_rate_limited.labels(principal.name).inc()
            resp = _refused(429, "rate_limited", f"more than {limiter.rate_per_s:g} requests/s (burst "
                                                 f"{limiter.burst:g}) for {principal.name!r}: retry after "
                                                 f"{wait_s:.2f} s")
            resp.headers["Retry-After"] = RateLimiter.retry_after_header(wait_s)
            return resp
        lines = _LineCounter(max_events)
        try:
            body = await read_body(request, max_body_bytes, on_chunk=lines)
            if not body.strip():
                return _refused(400, "empty_body", "empty body: send a JSON event, a JSON array or JSONL")
            items = split_body(body, max_events)
        except BodyRefused as exc:
            return _refused(exc.status, exc.reason, exc.detail)
        except BodyError as exc:
            if exc.reason == Reason.TOO_LARGE:
                return _refused(413, str(exc.reason), exc.detail)
            # a malformed array: one rejection, at position 0, counted and dead-lettered like any other
            rej = Rejection(exc.reason, exc.detail, "unknown", body[:4096], 0)
            return await _answer(runtime, [], [], [rej])
        except ClientDisconnect:
            return _refused(400, "disconnected", "the client went away before the body was complete")
        events: list = []
        positions: list[int] = []
        rejections: list[Rejection] = []
        for i in range(0, len(items), PARSE_SLICE):
            if i:
                await asyncio.sleep(0)  # let the loop serve the walls between slices
            ev, pos, rej = parse_items(items[i : i + PARSE_SLICE], i)
            events.extend(ev)
            positions.extend(pos)
            rejections.extend(rej)
        del items, body
        if not events and not rejections:
            return _refused(400, "empty_body", "no events in the body (only blank lines)")
        if principal.feeds is None and principal.entities is None:
            return await _answer(runtime, events, positions, rejections)
        events, positions, forbidden = await _out_of_scope(principal, events, positions)
        if forbidden:
            rejections = sorted([*rejections, *forbidden], key=_position)
        all_forbidden = bool(forbidden) and len(forbidden) == len(rejections) and not events
        return await _answer(runtime, events, positions, rejections, status=403 if all_forbidden else None)

    ws_gate = WsGate()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()  # then close with 4401/4403 + reason if refused: what a browser can see
        grant = await ws_gate.admit(websocket)
        if grant is None:
            return
        q = websocket.query_params
        client = hub.connect(make_subscription(catalog, q.get("topics"), q.get("units")))
        metrics.ws_clients.inc()
        if heartbeat_task[0] is None or heartbeat_task[0].done():
            heartbeat_task[0] = asyncio.create_task(_heartbeats(), name="ioc-ws-heartbeats")
        receiver = asyncio.create_task(_receive(websocket, client))
        sender = asyncio.create_task(_send(websocket, client, q.get("resume")))
        revoked = asyncio.create_task(grant.revoked.wait())
        try:
            # one wait per connection, not per message: the sender blocks on its own event
            await asyncio.wait({receiver, sender, revoked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, sender, revoked):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            ws_gate.release(grant)
            hub.disconnect(client)
            metrics.ws_clients.dec()
        if grant.revoked.is_set():
            await ws_gate.close_revoked(websocket)

    async def _send(websocket: WebSocket, client, resume: str | None) -> None:
        sent = metrics.ws_messages_sent
        try:
            first = None
            if resume is not None and len(resume) <= 20 and resume.lstrip("-").isdigit():
                first = hub.resume(client, int(resume))
            if first is None:
                await websocket.send_text(hub.snapshot_message(client).decode())
                sent.labels("snapshot").inc()
            else:
                await websocket.send_text(first.decode())
                sent.labels("delta").inc()
            while True:
                await client.wakeup.wait()
                if client.needs_snapshot:
                    await websocket.send_text(hub.snapshot_message(client).decode())
                    sent.labels("snapshot").inc()
                    metrics.ws_resyncs.inc()
                    continue
                seq, raws = client.take()
                if raws:
                    await websocket.send_text(hub.delta_text(seq, raws))
                    sent.labels("delta").inc()
                elif client.heartbeat_due:
                    client.heartbeat_due = False
                    msg = '{"type":"heartbeat","seq":%d,"server_time":"%s"}' % (hub.seq, format_ts(_now()))
                    await websocket.send_text(msg)
                    sent.labels("heartbeat").inc()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    heartbeat_task: list[asyncio.Task | None] = [None]

    async def _heartbeats() -> None:
        """Every HEARTBEAT_S, wake the clients that were sent nothing since the last tick."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for client in list(hub.clients):
                if client.idle:
                    client.heartbeat_due = True
                    client.wakeup.set()
                client.idle = True

    async def _receive(websocket: WebSocket, client) -> None:
        """Client messages: {"type": "subscribe", "topics": [...], "units": [...]} → new snapshot."""
        while True:
            try:
                text = await websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                return
            try:
                msg = msgspec.json.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # 1e400, deep nesting
                continue
            if isinstance(msg, dict) and msg.get("type") == "subscribe":
                client.sub = make_subscription(catalog, msg.get("topics"), msg.get("units"))
                client.needs_snapshot = True
                client.wakeup.set()

    app.include_router(build_admin_router(auth))
    if alerts_router is not None:
        app.include_router(alerts_router)

    app.include_router(build_trends_router(runtime))  # /api/trends/* (ioc/trends_api.py)
    app.include_router(build_pages_router(static))  # /, /wall/{panel}, /console, /docs behind a sign-in; /signin
    if static.is_dir():
        app.mount("/static", AssetFiles(directory=static), name="static")  # open: the sign-in page needs it
    from ioc.docs_ui import ASSETS_PATH, DocsAssets, assets_dir

    app.mount(ASSETS_PATH, DocsAssets(directory=assets_dir()), name="docs-assets")  # open, like /static
    install_openapi(app)
    app.add_middleware(CsrfGuard, policy=ws_gate.policy)
    app.add_middleware(SecurityHeaders)
    return app


def _now() -> float:
    import time

    return time.time()


class _LineCounter:
    """While a body streams in: refuse it (413) as soon as it has more lines than allowed, or is
    a JSON array past MAX_ARRAY_BODY_BYTES."""

    def __init__(self, max_lines: int) -> None:
        self.max = max_lines
        self.nl = 0
        self.cr = 0
        self.first: int | None = None  # first non-blank byte: "[" is an array

    def __call__(self, chunk: bytes, size: int) -> None:
        self.nl += chunk.count(b"\n")
        self.cr += chunk.count(b"\r")
        if max(self.nl, self.cr) > self.max:
            raise BodyRefused(413, "too_large", f"more than {self.max:,} lines; the limit is {self.max:,} per request")
        if self.first is None:
            head = chunk.lstrip()
            if head:
                self.first = head[0]
        if self.first == 0x5B and size > MAX_ARRAY_BODY_BYTES:
            raise BodyRefused(413, "too_large", f"a JSON array body is limited to {MAX_ARRAY_BODY_BYTES:,} bytes; "
                                                "send larger batches as JSONL (one event per line)")


def _refused(status: int, reason: str, detail: str) -> Response:
    """A body refused as a whole: nothing of it was processed."""
    payload = {"accepted": 0, "duplicates": 0, "corrected": 0, "rejected": 0, "rejections": [], "results": [],
               "reason": reason, "detail": detail}
    headers = {"Connection": "close"} if status in (408, 413) else None  # stop reading what is left of it
    if status == 429:
        payload["detail_vi"] = "quá nhiều yêu cầu: hãy thử lại sau Retry-After giây"
    return Response(_encode(payload), status_code=status, media_type="application/json", headers=headers)


_encode = msgspec.json.Encoder().encode


def _report_parts(out: Any) -> tuple[list[Rejection], list[int], list[int]]:
    """The runtime's answer for one batch: a BatchReport (rejections, duplicates, corrected) or,
    from an older runtime, the list of rejections."""
    if isinstance(out, list):
        return out, [], []
    return list(out.rejections), list(getattr(out, "duplicates", ()) or ()), list(getattr(out, "corrected", ()) or ())


async def _answer(runtime: Any, events: list, positions: list[int], rejections: list[Rejection], *,
                  status: int | None = None) -> Response:
    """Submit the validated body in batches of SUBMIT_BATCH positions and answer per event.

    Everything was validated before the first batch.  If the runtime fails on
    a batch (a bug, not bad input), that batch and the ones after it are
    answered `internal_error` (retry them; identical events are duplicates)
    — never a 5xx after part of the body was taken in."""
    import bisect

    out_rejections: list[Rejection] = []
    duplicates: list[int] = []
    corrected: list[int] = []
    # both lists come in position order (parse_items keeps it)
    last = max(positions[-1] if positions else -1, rejections[-1].position if rejections else -1)
    rej_pos = [r.position for r in rejections]
    failed_from: int | None = None
    lo = 0
    while lo <= last:
        hi = lo + SUBMIT_BATCH
        e0, e1 = bisect.bisect_left(positions, lo), bisect.bisect_left(positions, hi)
        r0, r1 = bisect.bisect_left(rej_pos, lo), bisect.bisect_left(rej_pos, hi)
        if failed_from is not None:
            out_rejections.extend(rejections[r0:r1])
            out_rejections.extend(_internal(ev, p) for ev, p in zip(events[e0:e1], positions[e0:e1]))
        elif e0 < e1 or r0 < r1:
            if lo:
                await asyncio.sleep(0)
            try:
                out = await runtime.submit(events[e0:e1], rejections[r0:r1], "http", positions=positions[e0:e1],
                                           wait=True)
                rj, dup, cor = _report_parts(out)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest: the runtime failed on positions %d..%d; they were not taken in", lo, hi - 1)
                failed_from = lo
                out_rejections.extend(rejections[r0:r1])
                out_rejections.extend(_internal(ev, p) for ev, p in zip(events[e0:e1], positions[e0:e1]))
            else:
                out_rejections.extend(rejections[r0:r1])  # whether or not the runtime repeats them
                out_rejections.extend(rj)
                duplicates.extend(dup)
                corrected.extend(cor)
        lo = hi
    await asyncio.sleep(0)
    by_pos: dict[int, Rejection] = {}
    for r in out_rejections:
        by_pos.setdefault(r.position, r)
    rejected = [by_pos[p] for p in sorted(by_pos)]
    dup = sorted(set(duplicates).difference(by_pos))
    cor = sorted(set(corrected).difference(by_pos, dup))
    total = len(events) + len(rejections)
    accepted = total - len(rejected) - len(dup) - len(cor)
    # (Reason is a str enum: msgspec writes its value)
    listed = await _json_rows(rejected, _rejection_row)
    if dup or cor:
        rows = [(r.position, 0, r) for r in rejected] + [(p, 1, p) for p in dup] + [(p, 2, p) for p in cor]
        rows.sort(key=_by_position)
        results = await _json_rows(rows, _result_row)
    else:
        results = await _json_rows(rejected, _rejected_row)
    head: dict[str, Any] = {"accepted": accepted, "duplicates": len(dup), "corrected": len(cor),
                            "rejected": len(rejected)}
    ok = accepted + len(dup) + len(cor) > 0
    if status == 403:  # nothing taken in: the shared error fields too (ioc.api_models.IngestRefused)
        head.update(reason="forbidden", detail="every event is outside this token's scope (see rejections)",
                    detail_vi="mọi sự kiện đều nằm ngoài phạm vi của mã này (xem rejections)")
    elif not ok:
        head.update(reason="all_rejected", detail="no event was taken in: see rejections",
                    detail_vi="không nhận sự kiện nào: xem rejections")
    body = _encode(head)[:-1] + b',"rejections":' + listed + b',"results":' + results + b"}"
    return Response(body, status_code=status or (200 if ok else 400), media_type="application/json")


ENCODE_SLICE = 5_000


async def _json_rows(items: list, row: Any) -> bytes:
    """A JSON array of row(item) for every item, encoded ENCODE_SLICE rows per turn of the loop."""
    parts = []
    for i in range(0, len(items), ENCODE_SLICE):
        if i:
            await asyncio.sleep(0)
        parts.append(_encode([row(x) for x in items[i : i + ENCODE_SLICE]])[1:-1])
    return b"[" + b",".join(parts) + b"]"


def _rejection_row(r: Rejection) -> dict:
    return {"position": r.position, "reason": r.reason, "feed": r.feed, "detail": r.detail}


def _rejected_row(r: Rejection) -> dict:
    return {"position": r.position, "status": "rejected", "reason": r.reason}


_STATUS = ("rejected", "duplicate", "corrected")


def _result_row(row: tuple) -> dict:
    pos, kind, x = row
    return _rejected_row(x) if kind == 0 else {"position": pos, "status": _STATUS[kind]}


def _by_position(row: tuple) -> int:
    return row[0]


def _position(r: Rejection) -> int:
    return r.position


def _event_entities(ev: Any) -> tuple[str, ...]:
    """The ids an ingest scope is checked against: rain its station, a camera reading its camera
    or site, a dossier event its unit."""
    feed = feed_of(ev)
    if feed == "rain":
        return (ev.station,)
    if feed == "camera":
        return (ev.camera, ev.site)
    return (ev.unit,)


async def _out_of_scope(p: Principal, events: list, positions: list[int]) -> tuple[list, list[int], list[Rejection]]:
    """Split validated events into those the principal may write and rejections for the others
    (PARSE_SLICE at a time, so a 50,000-event body never holds the loop long)."""
    keep: list = []
    keep_pos: list[int] = []
    refused: list[Rejection] = []
    for i, (ev, pos) in enumerate(zip(events, positions)):
        if i and not i % PARSE_SLICE:
            await asyncio.sleep(0)
        feed = feed_of(ev)
        if p.feeds is not None and feed not in p.feeds:
            refused.append(Rejection(Reason.FORBIDDEN_FEED, f"{p.name!r} may write only the feeds "
                                     f"{', '.join(sorted(p.feeds))}, not {feed}", feed, encode_event(ev), pos))
        elif p.entities is not None and not any(e in p.entities for e in _event_entities(ev)):
            refused.append(Rejection(Reason.FORBIDDEN_ENTITY, f"{p.name!r} may not write {feed} events for "
                                     f"{_event_entities(ev)[0]!r}", feed, encode_event(ev), pos))
        else:
            keep.append(ev)
            keep_pos.append(pos)
    return keep, keep_pos, refused


def _internal(ev: Any, position: int) -> Rejection:
    return Rejection(Reason.INTERNAL_ERROR, "the server failed while taking this event in; it was not processed, "
                                            "send it again", feed_of(ev), encode_event(ev), position)
