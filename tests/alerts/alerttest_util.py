"""Helpers for the alert tests (imported by the test modules): a small catalog, record builders, a local HTTP receiver."""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alerts.engine import AlertEngine
from alerts.rules import builtin_rules  # noqa: F401 (re-exported for the alert tests)
from ioc.catalog import parse_catalog
from ioc.events import CameraEvent, DossierEvent, RainEvent
from ioc.records import Indicator
from ioc.timeutil import format_ts, parse_ts

T0 = parse_ts("2026-10-28T13:00:00+07:00")  # a Wednesday

CATALOG_YAML = """
province: VP
name: Demo
units:
  - {id: vinh-phuc, name: Tỉnh Vĩnh Phúc, level: province}
  - {id: vinh-yen, name: TP Vĩnh Yên, name_en: Vinh Yen City, level: district, parent: vinh-phuc}
  - {id: tam-dao, name: Huyện Tam Đảo, level: district, parent: vinh-phuc}
stations:
  - {id: VP-001, name: Tam Đảo, lat: 21.459, lon: 105.646, district: tam-dao}
  - {id: VP-002, name: Vĩnh Yên, lat: 21.31, lon: 105.6, district: vinh-yen}
sites:
  - {id: mc-vinh-yen, name: Một cửa Vĩnh Yên, unit: vinh-yen, counters: 4, cameras: [cam-vy-1], lat: 21.3, lon: 105.59}
"""


def make_catalog():
    return parse_catalog(CATALOG_YAML, "test-catalog.yaml")


def only(rules, *names):
    return [r for r in rules if r.name in names]


def ts(t: float) -> str:
    return format_ts(t)


def ind(name: str, window: str, entity: str, t: float, value, *, late: bool = False, stale: bool = False) -> Indicator:
    return Indicator(name=name, window=window, entity=entity, ts=format_ts(t), value=value, late=late, stale=stale)


def _dt(t: float) -> datetime:
    return datetime.fromisoformat(format_ts(t))


def rain(station: str, t: float, mm: float) -> RainEvent:
    return RainEvent(station=station, ts=_dt(t), rain_mm=mm)


def cam(camera: str, site: str, t: float, waiting: int, counters: int) -> CameraEvent:
    return CameraEvent(camera=camera, site=site, ts=_dt(t), waiting=waiting, counters_open=counters)


def dossier(did: str, unit: str, t: float, status: str = "received") -> DossierEvent:
    return DossierEvent(dossier=did, unit=unit, ts=_dt(t), status=status, channel="online")


def engine_for(rules, *names, catalog=None, store=None) -> AlertEngine:
    return AlertEngine(only(rules, *names) if names else rules, catalog, store=store)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A real local HTTP server in a thread that records POSTs; `fail_first` requests answer `fail_status`."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.requests: list[dict] = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = outer.fail_status if len(outer.requests) <= outer.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": status == 200}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
