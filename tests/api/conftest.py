"""One real `ioc run` (uvicorn) shared by the API tests of this folder, with an alert to act on."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx
import pytest

from tests.auth.helpers import storm
from tests.conftest import (ADMIN_TOKEN, AS_INGEST, AS_VIEWER, INGEST_TOKEN, OPERATOR_TOKEN, VIEWER_TOKEN, IocServer,
                            free_port, wait_for)


@dataclass(frozen=True)
class LiveApi:
    server: IocServer
    alert_id: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="package")
def live_api(tmp_path_factory) -> LiveApi:
    data = tmp_path_factory.mktemp("api") / "data"
    env = dict(os.environ, IOC_VIEWER_TOKEN=VIEWER_TOKEN, IOC_OPERATOR_TOKEN=OPERATOR_TOKEN,
               IOC_ADMIN_TOKEN=ADMIN_TOKEN, IOC_INGEST_TOKEN=INGEST_TOKEN, PYTHONUNBUFFERED="1")
    server = IocServer(data, free_port(), [], env).start()
    try:
        r = httpx.post(server.url + "/api/ingest", json=storm("VP-001"), headers=AS_INGEST)
        assert r.json()["accepted"] == 11, r.text
        alerts = wait_for(lambda: httpx.get(server.url + "/api/alerts", params={"rule": "rain_3h_intense"},
                                            headers=AS_VIEWER).json()["alerts"])
        assert alerts, server.log()
        yield LiveApi(server, alerts[0]["id"])
    finally:
        server.stop()
