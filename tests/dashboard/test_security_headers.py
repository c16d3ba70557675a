"""Security headers on every page, and no Content-Security-Policy violation in real Chromium.

The header walk requests every GET URL name of ``dashboard_patterns`` with real ids (the
crawler's world: a sandbox-backed mirror), every tab of the account card, the sign-in pages and
the admin. The browser half opens the main pages (the margin monitor with its live socket
connected and a frame received, Plotly charts drawn) and the admin, listening to both the console
and ``securitypolicyviolation`` events.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.access.test_crawler import (  # noqa: F401 (fixtures)
    _mirror_from_sandbox,
    world,
)
from tests.factories import StaffUserFactory
from tests.live.conftest import hub_sandbox, hubs, live_server_url  # noqa: F401 (fixtures)
from tests.live.pages import _logged_in_page, _state, _wait

# An inline <script> that runs (not a JSON data block), an inline event handler, htmx's eval-
# needing attributes, or a style attribute: what the policy would block (or must not need).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                           re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
EVAL_ATTRIBUTE = re.compile(r"\shx-on[:-]|\shx-(?:vals|headers)\s*=\s*['\"]\s*(?:js|javascript):",
                            re.I)
HX_TRIGGER = re.compile(r"\shx-trigger=\"([^\"]*)\"")
# An htmx trigger filter (evaluated as JavaScript): "[" right after the event (or "every 2s"),
# as opposed to a CSS selector in a modifier such as "from:input[type=search]".
TRIGGER_FILTER = re.compile(r"^\s*(?:every\s+\S+?|[\w:.-]+?)\s*\[")
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


def _directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


def _assert_headers(url: str, response) -> None:
    assert "Content-Security-Policy" in response, url
    csp = _directives(response)
    assert csp["default-src"] == ["'self'"], url
    assert csp["script-src"] == ["'self'"], url  # no inline script, no eval, no other host
    assert csp["connect-src"] == ["'self'"], url
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"], url
    assert "'unsafe-eval'" not in response["Content-Security-Policy"], url
    assert response["Referrer-Policy"] == "same-origin", url
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", url
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions, (url, permissions)
    assert response["X-Frame-Options"] == "DENY", url
    assert response["X-Content-Type-Options"] == "nosniff", url


def _assert_no_inline_code(url: str, response) -> None:
    if "text/html" not in response.get("Content-Type", "") or getattr(response, "streaming",
                                                                       False):
        return
    body = response.content.decode()
    for what, pattern in (("inline script", INLINE_SCRIPT), ("inline handler", INLINE_HANDLER),
                          ("eval-needing htmx attribute", EVAL_ATTRIBUTE),
                          ("style attribute", STYLE_ATTRIBUTE)):
        found = pattern.search(body)
        assert found is None, f"{url}: {what}: {found and found.group(0)[:120]}"
    for trigger in HX_TRIGGER.findall(body):
        for spec in trigger.split(","):
            assert not TRIGGER_FILTER.match(spec), f"{url}: htmx trigger filter: {trigger}"


@pytest.mark.django_db
def test_every_dashboard_page_carries_the_security_headers_and_no_inline_code(
    client, world  # noqa: F811
):
    client.force_login(world.users["superuser"])
    seen = 0
    for target in world.targets:
        url = target.url()
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        _assert_headers(url, response)
        _assert_no_inline_code(url, response)
        seen += 1
    # every pattern was walked, and the account card's tabs on top
    assert seen > len({t.name for t in world.targets}) >= 40


@pytest.mark.django_db
def test_sign_in_two_factor_lockout_and_admin_pages_carry_the_headers(client, settings):
    settings.AXES_FAILURE_LIMIT = 1
    for url in (reverse("login"), "/healthz"):
        _assert_headers(url, client.get(url))
    locked = client.post(reverse("login"), {"username": "x", "password": "y"})
    assert locked.status_code == 429
    _assert_headers("lockout", locked)
    _assert_no_inline_code("lockout", locked)

    client.force_login(StaffUserFactory(username="root", is_superuser=True))
    settings.DASHBOARD_REQUIRE_2FA = True
    enrol = client.get(reverse("two-factor"))
    assert enrol.status_code == 200 and "<svg" in enrol.content.decode()
    _assert_headers("two-factor", enrol)
    _assert_no_inline_code("two-factor", enrol)  # the QR code is SVG paths, no style
    settings.DASHBOARD_REQUIRE_2FA = False
    for url in ("/admin/", "/admin/platforms/tradeplatform/", "/admin/axes/accessattempt/",
                "/admin/otp_totp/totpdevice/"):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_headers(url, response)


# --- Chromium ----------------------------------------------------------------------------------

VIOLATION_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watched_page(browser, url, cookie):
    page = _logged_in_page(browser, url, cookie)
    page.add_init_script(VIOLATION_LISTENER)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    return page, console


def _violations(page, console) -> list[str]:
    events = page.evaluate("window.__csp || []")
    policy = [m for m in console if "Content Security Policy" in m or "page error" in m]
    return events + policy


@pytest.fixture
def shop(live_server_url, client):  # noqa: F811
    """A superuser's session on the ASGI server, and mirror rows (accounts, open trades, a
    symbol) for the sandbox MT4 platform: what the main pages show."""
    from django.contrib.auth import get_user_model

    from platforms.models import TradePlatform

    mt4 = TradePlatform.objects.get(name="Sandbox MT4")
    rows = _mirror_from_sandbox(mt4)
    user = get_user_model().objects.create_superuser("csp-browser", "csp@example.com",
                                                     "pw-123456")
    client.force_login(user)
    return client.cookies["sessionid"].value, mt4.pk, rows[0].login


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_chromium_reports_no_csp_violation_on_the_main_pages_and_the_admin(
    live_server_url, shop, browser  # noqa: F811
):
    cookie, pk, login = shop
    page, console = _watched_page(browser, live_server_url, cookie)
    background: list[str] = []
    page.on("request", lambda r: r.headers.get("x-dashboard-background") and background.append(
        r.url))

    def visit(path: str, ready: str) -> None:
        page.goto(f"{live_server_url}{path}")
        page.wait_for_selector(ready)
        page.wait_for_timeout(300)  # late scripts, htmx loads, chart drawing
        assert _violations(page, console) == [], path

    visit("/", "#main .card")
    visit(f"/platforms/{pk}/accounts/", "#accounts tbody tr")
    visit(f"/platforms/{pk}/trades/", ".chart .main-svg")  # the exposure chart, drawn by Plotly
    visit(f"/platforms/{pk}/accounts/{login}/", "#account-tab table, #account-tab .empty")
    page.click("#tab-history")
    page.wait_for_selector("#account-tab form.range")
    assert page.get_attribute("#tab-history", "aria-selected") == "true"  # page.js, no hx-on
    assert page.get_attribute("#tab-open", "aria-selected") == "false"
    visit(f"/platforms/{pk}/symbols/EURUSD/", "#ohlc .main-svg")
    visit("/exposure/", "#exposure-table")
    page.goto(f"{live_server_url}/platforms/{pk}/margins/")
    _wait(page, lambda: _state(page) == "live", what="live indicator")
    page.wait_for_selector(f'[data-live-monitor="{pk}"] tbody tr[data-live-account]')
    assert _violations(page, console) == []

    # the overview's health poll is marked as background (it must not extend the session)
    assert any("/health/" in url for url in background), background

    for path in ("/admin/", "/admin/platforms/tradeplatform/",
                 "/admin/platforms/tradeplatform/add/", "/admin/axes/accessattempt/"):
        visit(path, "#content")

    # the listener is live: an injected inline script is reported (and does not run)
    page.evaluate("""() => { const s = document.createElement("script");
        s.textContent = "window.__ran = true"; document.body.appendChild(s); }""")
    page.wait_for_timeout(100)
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in _violations(page, console))
