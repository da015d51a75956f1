"""A wall display signs in once with a kiosk URL, stays signed in, and is
disconnected with a visible message when its principal is revoked; the pages
run under a strict Content-Security-Policy (ioc/pages.py, ioc/ws_auth.py,
ioc/security_headers.py)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from .conftest import REPO

pytestmark = pytest.mark.integration

LIVE = '[data-testid="connection-status"][data-state="live"]'
DENIED = '[data-testid="connection-status"][data-state="denied"]'


def add_principal(server, name: str, role: str) -> str:
    status, body = server.post_json("/api/principals", {"name": name, "role": role}, token=server.admin_token)
    assert status == 201, f"adding {name} answered {status}: {body}"
    return body["token"]


def test_kiosk_url_signs_in_once_and_revocation_disconnects_the_wall(new_page, ioc_server, artifacts):
    server = ioc_server  # shared: only this test's own principal is revoked
    token = add_principal(server, "wall-hoi-truong", "viewer")
    page = new_page(1920, 1080)
    sockets: list[float] = []
    page.on("websocket", lambda ws: sockets.append(time.monotonic()))

    page.goto(server.kiosk_url("/wall/alerts?lang=vi", token))
    page.wait_for_selector(LIVE, timeout=20_000)
    assert token not in page.url and "token=" not in page.url  # gone from the address bar...
    assert page.url == server.base + "/wall/alerts?lang=vi"  # ...and nothing else of the URL lost
    assert token not in page.evaluate("JSON.stringify(history.state) + location.href + document.cookie")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "ioc_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert cookie["value"] != token  # a session id, not the token

    page.reload()  # the cookie alone keeps it signed in
    page.wait_for_selector(LIVE, timeout=20_000)
    assert "token=" not in page.url

    # revoke from another process, as an administrator would: the wall is told within a couple of seconds
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ioc.cli", "users", "revoke", "wall-hoi-truong",
                           "--data-dir", str(server.data_dir)], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    banner = page.locator('[data-testid="auth-banner"]')
    banner.wait_for(state="visible", timeout=5_000)
    elapsed = time.monotonic() - t0
    assert elapsed < 4.0, f"the wall was disconnected {elapsed:.1f} s after the revocation"
    page.wait_for_selector(DENIED, timeout=2_000)
    assert page.locator("#auth-banner").get_attribute("data-code") == "4401"
    assert "thu hồi" in banner.inner_text()
    page.screenshot(path=str(artifacts / "wall-access-revoked-1920x1080.png"))
    assert page.locator("#auth-signin").get_attribute("href").startswith("/signin?next=")
    page.click('[data-testid="lang-toggle"]')
    assert "revoked" in banner.inner_text()
    assert page.locator("#conn-label").inner_text() == "Access denied"

    # no reconnect loop: no new socket for the next 3 s (it retries once a minute)
    attempts = len(sockets)
    page.wait_for_timeout(3_000)
    assert len(sockets) == attempts, f"{len(sockets) - attempts} reconnects in 3 s after a revocation"

    # the revoked session opens nothing any more: the sign-in page, saying why
    page.reload()
    page.wait_for_selector('body[data-reason="session"]', timeout=5_000)
    assert page.locator('[data-testid="signin-page"]').is_visible()
    page.screenshot(path=str(artifacts / "signin-session-ended-1920x1080.png"))
    # and a valid token pasted into it brings the wall back
    page.fill('[data-testid="signin-token"]', server.viewer_token)
    page.click('[data-testid="signin-button"]')
    page.wait_for_selector(LIVE, timeout=20_000)
    assert page.url == server.base + "/wall/alerts?lang=vi"


def test_a_wrong_kiosk_token_gets_the_signin_page_and_opens_no_socket(new_page, ioc_server):
    page = new_page(1280, 800)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    response = page.goto(ioc_server.kiosk_url("/", "not-a-token"))
    assert response.status == 401
    page.wait_for_selector('body[data-reason="bad_token"]')
    assert page.locator('[data-testid="signin-token"]').is_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "ioc_session"]
    page.wait_for_timeout(500)
    assert not sockets


def test_pages_run_under_a_strict_csp(new_page, ioc_server):
    """The wall works with no CSP violation (the new_page fixture fails on any), and the policy
    really is enforced: an injected inline script does not run and is reported."""
    page = new_page(1920, 1080)
    response = page.goto(ioc_server.kiosk_url("/"))
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    page.wait_for_selector(LIVE, timeout=20_000)
    page.wait_for_selector('[data-testid="ranking-row"]', timeout=20_000)
    blocked = page.evaluate("""() => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), { once: true });
        const s = document.createElement("script");
        s.textContent = "window.__injected = true";
        document.body.append(s);
        setTimeout(() => resolve(window.__injected ? "ran" : "no event"), 2000);
    })""")
    assert blocked.startswith("script-src"), blocked
    new_page.errors.clear()  # that violation was ours, on purpose
    for path in ("/console", "/signin"):
        r = page.request.get(ioc_server.base + path, headers={"Authorization": f"Bearer {ioc_server.operator_token}"})
        assert r.status == 200 and "script-src 'self'" in r.headers["content-security-policy"], path
    page.goto(ioc_server.kiosk_url("/console", ioc_server.operator_token))
    page.wait_for_selector('body[data-ready="true"]', timeout=10_000)
    page.wait_for_selector('[data-testid="console-alerts"]', state="visible", timeout=10_000)


def test_console_signs_out_and_back_in_with_its_session_cookie(new_page, ioc_server):
    page = new_page(1600, 900)
    page.goto(ioc_server.kiosk_url("/console", ioc_server.operator_token))
    page.wait_for_selector('[data-testid="console-alerts"]', state="visible", timeout=10_000)
    assert page.evaluate("Object.keys(sessionStorage).length + Object.keys(localStorage).filter(k => /token/.test(k)).length") == 0
    page.click('[data-testid="signout"]')
    page.wait_for_selector('[data-testid="signin"]', state="visible", timeout=5_000)
    assert page.request.get(ioc_server.base + "/console").status == 401  # ended on the server, not just hidden
    # the console's own form trades a token for a new cookie (POST /signin from the page: passes the CSRF guard)
    page.fill('[data-testid="token-input"]', ioc_server.operator_token)
    page.click('[data-testid="signin-submit"]')
    page.wait_for_selector('[data-testid="console-alerts"]', state="visible", timeout=10_000)
    assert page.request.get(ioc_server.base + "/console").status == 200
    page.reload()
    page.wait_for_selector('[data-testid="console-alerts"]', state="visible", timeout=10_000)


def test_console_says_so_when_its_principal_is_revoked(new_page, ioc_server):
    token = add_principal(ioc_server, "tran.thi.binh", "operator")
    page = new_page(1600, 900)
    page.goto(ioc_server.kiosk_url("/console", token))
    page.wait_for_selector('[data-testid="console-alerts"]', state="visible", timeout=10_000)
    r = page.request.delete(ioc_server.base + "/api/principals/tran.thi.binh",
                            headers={"Authorization": f"Bearer {ioc_server.admin_token}"})
    assert r.status == 200
    err = page.locator('[data-testid="signin-error"]')
    err.wait_for(state="visible", timeout=8_000)  # the next refresh (every 5 s) gets 401
    assert "thu hồi" in err.inner_text()
    assert page.locator('[data-testid="console-alerts"]').is_hidden()
