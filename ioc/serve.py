"""Serving the web app with uvicorn inside our own event loop.

uvicorn's Server re-raises a captured SIGINT/SIGTERM when serve() returns,
which kills the process before the caller's shutdown (final checkpoint,
alert store close) can run.  This server turns the signals into a normal
return instead, so `finally:` blocks around serve() always run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from typing import Any, Iterator

import uvicorn


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


def server(app: Any, host: str, port: int, log_level: str = "warning") -> Server:
    """WebSockets through websockets-sansio, compression off (DESIGN §6: it costs memory per connection)."""
    return Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            lifespan="off",
        )
    )


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
