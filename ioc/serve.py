"""Serving the web app with uvicorn inside our own event loop, with limits.

uvicorn's Server re-raises a captured SIGINT/SIGTERM when serve() returns,
which kills the process before the caller's shutdown (final checkpoint,
alert store close) can run.  This server turns the signals into a normal
return instead, so `finally:` blocks around serve() always run.

Limits (no client can hold a connection, a task or memory without bound):

- request headers must be complete within `HEADER_TIMEOUT_S` of the first
  byte (or of the connection), and be at most `MAX_HEADER_BYTES`: else the
  connection gets 408 / 431 and is closed (uvicorn itself has no header
  timeout, so a client sending one byte a second held a connection forever);
- a request whose declared Content-Length exceeds `MAX_REQUEST_BYTES` is
  answered 413 at once, before any of its body is read, and the connection
  closed; endpoints apply their own smaller limits while streaming
  (`read_body`), with an idle and a total timeout (408);
- idle keep-alive connections close after `KEEP_ALIVE_S`; past
  `LIMIT_CONCURRENCY` connections + tasks (WebSocket clients included: the
  design budgets 10,000 walls) new requests get 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import Any, Iterator

import uvicorn

log = logging.getLogger("ioc.serve")

HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the largest body any endpoint takes (POST /api/ingest)
KEEP_ALIVE_S = 5
LIMIT_CONCURRENCY = 20_000
BODY_IDLE_TIMEOUT_S = 10.0  # no body byte for this long: 408
BODY_TOTAL_TIMEOUT_S = 60.0  # whole body not received in this time: 408


class BodyRefused(Exception):
    """A request body refused while it was read: HTTP status, reason label and words."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def declared_length(headers: Any) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise BodyRefused(400, "bad_request", "Content-Length is not a number") from None
    return n


async def read_body(request: Any, limit: int, *, on_chunk: Any = None, idle_timeout_s: float | None = None,
                    total_timeout_s: float | None = None) -> bytes:
    """The request body, streamed and refused as soon as it is over `limit` bytes (413).

    A declared Content-Length over the limit is refused before reading;
    `on_chunk(chunk, size_so_far)` may raise BodyRefused to stop early (e.g.
    too many lines).  Never buffers more than `limit` (+ one chunk) bytes.
    A client that stops sending gets 408 after `idle_timeout_s`, a slow one
    after `total_timeout_s`.  A client that disconnects raises
    starlette.requests.ClientDisconnect."""
    idle = BODY_IDLE_TIMEOUT_S if idle_timeout_s is None else idle_timeout_s
    total = BODY_TOTAL_TIMEOUT_S if total_timeout_s is None else total_timeout_s
    n = declared_length(request.headers)
    if n is not None and n > limit:
        raise BodyRefused(413, "too_large", f"body of {n:,} bytes declared; the limit is {limit:,}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total
    buf = bytearray()
    stream = request.stream().__aiter__()
    while True:
        wait = min(idle, deadline - loop.time())
        if wait <= 0:
            raise BodyRefused(408, "timeout", f"the body was not received within {total:g} s")
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), wait)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise BodyRefused(408, "timeout", f"no body data for {wait:g} s") from None
        if not chunk:
            continue
        buf += chunk
        if len(buf) > limit:
            raise BodyRefused(413, "too_large", f"body larger than {limit:,} bytes")
        if on_chunk is not None:
            on_chunk(chunk, len(buf))
    return bytes(buf)


def _plain_response(status: bytes, text: str) -> bytes:
    body = text.encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


async def _payload_too_large(scope: Any, receive: Any, send: Any) -> None:
    body = (b'{"accepted":0,"rejected":0,"rejections":[],"reason":"too_large","detail":"body larger than %d bytes"}'
            % MAX_REQUEST_BYTES)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _declared_too_large(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value) > MAX_REQUEST_BYTES
            except ValueError:
                return False
    return False


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class LimitedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's httptools protocol with a header-read timeout, a header size limit and an
        immediate 413 for a declared body over MAX_REQUEST_BYTES."""

        header_timeout_s = HEADER_TIMEOUT_S
        max_header_bytes = MAX_HEADER_BYTES

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            self._in_headers = False  # between the first byte of a request and its headers' end
            self._header_bytes = 0
            self._header_size = 0  # bytes of parsed header lines of the current request

        def _arm_header_timer(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._in_headers = True  # a connection that sends nothing counts as slow headers too
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            # still inside the headers after this chunk (a chunk that ends them resets the count)
            if self._in_headers and self._header_bytes > self.max_header_bytes:
                self._refuse(b"431 Request Header Fields Too Large", "request headers too large")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._header_bytes = 0
            self._header_size = 0
            self._arm_header_timer()

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            self._header_size += len(name) + len(value) + 4
            if self._header_size > self.max_header_bytes:
                raise ValueError("request headers too large")  # httptools → HttpParserCallbackError → 400

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > self.max_header_bytes:
                raise ValueError("request target too long")  # httptools → HttpParserCallbackError → 400

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_bytes = 0
            self._disarm_header_timer()
            super().on_headers_complete()

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if _declared_too_large(cycle.scope.get("headers", [])):
                cycle.keep_alive = False
                app = _payload_too_large
            super()._start_asgi_task(cycle, app)

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self._in_headers and self.transport is not None and not self.transport.is_closing():
                self._refuse(b"408 Request Timeout", f"request headers not received within {self.header_timeout_s:g} s")

        def _refuse(self, status: bytes, text: str) -> None:
            self._disarm_header_timer()
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_plain_response(status, text))
            self.transport.close()


class Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)


def config(app: Any, host: str, port: int, log_level: str = "warning", **overrides: Any) -> uvicorn.Config:
    """uvicorn settings of every server of the project (limits above; overrides for tests)."""
    kwargs: dict[str, Any] = dict(
        host=host,
        port=port,
        log_level=log_level,
        http=LimitedHttpToolsProtocol if HttpToolsProtocol is not None else "h11",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,  # client → server messages are small subscribe requests
        lifespan="off",
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=LIMIT_CONCURRENCY,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    kwargs.update(overrides)
    return uvicorn.Config(app, **kwargs)


def server(app: Any, host: str, port: int, log_level: str = "warning") -> Server:
    """WebSockets through websockets-sansio, compression off (it costs memory per connection)."""
    return Server(config(app, host, port, log_level))


def run_loop(coro) -> None:
    """uvloop where available (a faster event loop for the WebSocket fan-out), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def settle_gc() -> None:
    """After start-up: move the long-lived start-up objects (catalog, pipeline state, modules) out of
    the collector's generations and collect less often.  Full collections over thousands of
    WebSocket connections otherwise pause the loop for 100–200 ms, which is the fan-out's p99."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
