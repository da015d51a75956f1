"""schemathesis against the live app (real uvicorn): every documented operation, as each kind of caller,
must answer what /openapi.json says — no 5xx, a documented status, content type, headers and body.

Deterministic (`--generation-deterministic`) and bounded (`--max-examples`), so CI sees the same cases
every run.  Each role runs the operations it may call, so authorised paths (2xx) are exercised, and
everyone runs unauthenticated too (the 401s)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, AS_VIEWER, INGEST_TOKEN, OPERATOR_TOKEN, ROOT, VIEWER_TOKEN

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance")
# role → (token, operations it runs, max examples per operation); unauthenticated runs every operation, with
# fuzzing only (its coverage phase would repeat the same 401 for hundreds of malformed inputs)
RUNS = {
    "none": (None, ["--phases", "fuzzing"], 6),
    "viewer": (VIEWER_TOKEN, ["--include-method", "GET"], 4),
    "operator": (OPERATOR_TOKEN, ["--include-method", "POST", "--include-method", "DELETE",
                                  "--exclude-path-regex", "^/api/(principals|ingest)"], 6),
    "admin": (ADMIN_TOKEN, ["--include-path-regex", "^/api/(principals|people|me)"], 8),
    "ingest": (INGEST_TOKEN, ["--include-path-regex", "^/api/(ingest|me)$"], 8),
}

OPEN_OPERATIONS = {"GET /healthz", "GET /metrics", "GET /signin", "POST /signin", "POST /signout"}
EXPECT_2XX = {
    "viewer": {"GET /api/snapshot", "GET /api/catalog", "GET /api/alerts", "GET /api/me", "GET /api/silences",
               "GET /api/cap/feed.atom", "GET /docs", "GET /", "GET /wall/rain", "GET /healthz", "GET /metrics"},
    "operator": {"POST /api/silences", "POST /api/alerts/{alert_id}/ack", "POST /api/areas/vinh-yen/risk-level"},
    "admin": {"GET /api/principals", "POST /api/principals", "GET /api/people", "GET /api/me"},
    "ingest": {"POST /api/ingest", "GET /api/me"},
}


def config(tmp_path: Path, alert_id: str) -> Path:
    """Real identifiers, so that operations on an alert, a unit or a station reach their logic."""
    path = tmp_path / "schemathesis.toml"
    path.write_text(f"""
[parameters]
"path.alert_id" = "{alert_id}"
"path.unit" = "vinh-yen"
"path.station" = "VP-001"
"path.site" = "vinh-yen"
"path.panel" = "rain"
""")
    return path


@pytest.fixture(scope="module")
def document(live_api, tmp_path_factory) -> Path:
    """/openapi.json as a file: reading it needs a viewer, and the runs below send other tokens."""
    path = tmp_path_factory.mktemp("schema") / "openapi.json"
    r = httpx.get(live_api.url + "/openapi.json", headers=AS_VIEWER)
    assert r.status_code == 200, r.text
    path.write_bytes(r.content)
    return path


def statuses(har: Path) -> dict[str, set[int]]:
    """"METHOD /path" → the statuses the run saw (from the HAR report)."""
    seen: dict[str, set[int]] = defaultdict(set)
    for entry in json.loads(har.read_text())["log"]["entries"]:
        url = urlsplit(entry["request"]["url"])
        seen[f"{entry['request']['method']} {url.path}"].add(entry["response"]["status"])
    return seen


@pytest.mark.integration
@pytest.mark.parametrize("role", list(RUNS))
def test_live_api_conforms_to_its_openapi_document(live_api, document, tmp_path, role):
    token, selection, examples = RUNS[role]
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    har = tmp_path / "run.har"
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config(tmp_path, live_api.alert_id)),
           "--no-color", "run", str(document), "--url", live_api.url, "--checks", CHECKS,
           "--max-examples", str(examples), "--generation-deterministic",
           "--workers", "1", "--generation-with-security-parameters", "false", "--request-timeout", "10",
           "--report", "har", "--report-har-path", str(har), *headers,
           *(selection if "--phases" in selection else ["--phases", "examples,coverage,fuzzing", *selection])]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-8000:]
    tested = re.search(r"Tested:\s+(\d+)", out)
    cases = re.search(r"(\d+) generated", out)
    assert tested and cases and int(cases.group(1)) >= 2 * int(tested.group(1)), out[-3000:]
    seen = statuses(har)
    if token is None:  # only the open operations answer anything but 401 (and 422 for bad parameters)
        assert {op for op, codes in seen.items() if codes - {401, 405, 422}} <= OPEN_OPERATIONS, seen
        assert {401} <= seen["GET /api/snapshot"]
    else:  # the role's calls were let through: each operation answered a 2xx at least once
        want = {op.format(alert_id=live_api.alert_id) for op in EXPECT_2XX[role]}
        assert want <= {op for op, codes in seen.items() if any(200 <= c < 300 for c in codes)}, seen
