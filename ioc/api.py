"""The web adapter: FastAPI app for the wall, /ws, /metrics and REST.

Thin by design: it parses, calls the runtime or hub, and serialises.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ioc.catalog import Catalog
from ioc.events import parse_body
from ioc.hub import TOPICS, Hub, Subscription
from ioc.runtime import AppBackend
from ioc.timeutil import format_ts

HEARTBEAT_S = 5.0
MAX_BODY_BYTES = 16 * 1024 * 1024


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


def create_app(runtime: "AppBackend", alerts_router: Any = None) -> FastAPI:
    """The web app over any backend: the embedded Runtime, or a Redis-fed one (`ioc api`)."""
    app = FastAPI(title="IOC streaming monitor", version="0.1.0", docs_url="/api/docs", redoc_url=None)
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

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok" if runtime.started else "starting",
            "seq": hub.seq,
            "watermarks": {f: format_ts(w) for f, w in runtime.watermarks().items()},
            "clients": len(hub.clients),
        }

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/snapshot")
    async def snapshot() -> Response:
        ind, al = runtime.snapshot()
        body = b'{"seq":%d,"indicators":[' % hub.seq + b",".join(ind) + b'],"alerts":[' + b",".join(al) + b"]}"
        return Response(body, media_type="application/json")

    @app.get("/api/catalog")
    async def get_catalog() -> Response:
        return Response(catalog_json, media_type="application/json")

    @app.post("/api/ingest")
    async def ingest(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"detail": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        if not body.strip():
            return JSONResponse(
                {"accepted": 0, "rejected": 0, "rejections": [], "detail": "empty body: send a JSON event, a JSON array or JSONL"},
                status_code=400,
            )
        events, parse_rejections = parse_body(body)
        positions = _positions(body, events, parse_rejections)
        rejections = await runtime.submit(events, parse_rejections, "http", positions=positions, wait=True)
        total = len(events) + len(parse_rejections)
        accepted = total - len(rejections)
        payload = {
            "accepted": accepted,
            "rejected": len(rejections),
            "rejections": sorted(
                ({"position": r.position, "reason": str(r.reason), "feed": r.feed, "detail": r.detail} for r in rejections),
                key=lambda d: d["position"],
            ),
        }
        return JSONResponse(payload, status_code=400 if accepted == 0 else 200)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        q = websocket.query_params
        client = hub.connect(make_subscription(catalog, q.get("topics"), q.get("units")))
        metrics.ws_clients.inc()
        if heartbeat_task[0] is None or heartbeat_task[0].done():
            heartbeat_task[0] = asyncio.create_task(_heartbeats(), name="ioc-ws-heartbeats")
        receiver = asyncio.create_task(_receive(websocket, client))
        sender = asyncio.create_task(_send(websocket, client, q.get("resume")))
        try:
            # one wait per connection, not per message: the sender blocks on its own event
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, sender):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            hub.disconnect(client)
            metrics.ws_clients.dec()

    async def _send(websocket: WebSocket, client, resume: str | None) -> None:
        sent = metrics.ws_messages_sent
        try:
            first = None
            if resume is not None and resume.lstrip("-").isdigit():
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
            except msgspec.DecodeError:
                continue
            if isinstance(msg, dict) and msg.get("type") == "subscribe":
                client.sub = make_subscription(catalog, msg.get("topics"), msg.get("units"))
                client.needs_snapshot = True
                client.wakeup.set()

    if alerts_router is not None:
        app.include_router(alerts_router)

    index = static / "index.html"
    console = static / "console.html"

    @app.get("/", include_in_schema=False)
    async def wall() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @app.get("/wall/{panel}", include_in_schema=False)
    async def wall_panel(panel: str) -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @app.get("/console", include_in_schema=False)
    async def operator_console() -> FileResponse:
        return FileResponse(console, headers={"Cache-Control": "no-cache"})

    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    return app


def _now() -> float:
    import time

    return time.time()


def _positions(body: bytes, events, rejections) -> list[int]:
    """Input positions of the accepted events (rejected ones already carry theirs)."""
    taken = {r.position for r in rejections}
    positions: list[int] = []
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        candidates = range(len(events) + len(rejections))
    else:
        candidates = [i for i, line in enumerate(body.splitlines()) if line.strip()]
    for i in candidates:
        if i not in taken:
            positions.append(i)
    return positions[: len(events)]
