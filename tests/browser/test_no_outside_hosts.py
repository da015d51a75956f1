"""The served pages and every asset they reference stay on this origin: no
CDN, web font, map tile or any other outside host (an IOC network is often
closed, and a wall must not depend on the Internet)."""

from __future__ import annotations

import urllib.request
from urllib.parse import urljoin, urlparse

import pytest

from .outside_refs import is_outside, kind_of, references

pytestmark = pytest.mark.integration

PAGES = ["/", "/console", "/wall/rain"]


def crawl(base: str, token: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    seen: dict[str, int] = {}
    outside: list[tuple[str, str]] = []
    queue = [urljoin(base, p) for p in PAGES]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        try:
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                seen[url] = r.status
                ctype = r.headers.get("Content-Type", "")
                body = r.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as e:
            seen[url] = e.code
            continue
        kind = kind_of(url, ctype)
        if kind == "other":
            continue
        for ref in references(body, kind):
            if is_outside(ref, url):
                outside.append((url, ref))
                continue
            target = urljoin(url, ref.split("${", 1)[0])
            p = urlparse(target)
            if p.scheme in ("http", "https") and "${" not in ref and not p.path.startswith(("/api/", "/ws")):
                queue.append(target.split("#", 1)[0])
    return seen, outside


def test_pages_reference_no_outside_host(ioc_server):
    seen, outside = crawl(ioc_server.base + "/", ioc_server.operator_token)
    assert not outside, "outside references: " + ", ".join(f"{u} → {r}" for u, r in outside)
    # the crawl really followed the assets, and they all exist
    assert any(u.endswith("/static/wall.js") for u in seen), seen
    assert any(u.endswith("/static/wall.css") for u in seen), seen
    assert any(u.endswith("/static/console.js") for u in seen), seen
    broken = {u: s for u, s in seen.items() if s != 200}
    assert not broken, f"referenced assets not served: {broken}"


def test_browser_requests_stay_local(new_page, ioc_server):
    """Belt and braces: load each page in Chromium; the new_page fixture fails the test on any outside request."""
    for path in PAGES:
        page = new_page(1920, 1080)
        page.goto(ioc_server.kiosk_url(path, ioc_server.operator_token))
        page.wait_for_load_state("networkidle", timeout=15_000) if path == "/console" else page.wait_for_timeout(3000)
    assert not new_page.outside


def test_api_docs_render_from_local_files(new_page, ioc_server):
    """/docs: Swagger UI from the installed package renders every operation of /openapi.json in Chromium, with
    no outside request and no Content-Security-Policy violation (both checked by the new_page fixture)."""
    page = new_page(1600, 1000, locale="en-US")
    page.goto(ioc_server.kiosk_url("/docs", ioc_server.viewer_token))
    page.wait_for_selector(".opblock", timeout=15_000)
    assert page.locator(".opblock").count() >= 25
    assert page.locator(".opblock-tag").filter(has_text="alerts").count() >= 1
    assert not new_page.outside
