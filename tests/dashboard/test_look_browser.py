"""What staff see, looked at in real Chromium at 1280x800: the main pages in the light and the
dark theme, saved as screenshots (``test-results/<test name>/``, printed at the end) for a
person to look at; none scrolls sideways; the dark theme is really applied (page and charts);
the theme and density choices are kept; a long name is cut and whole on hover; a wide table
scrolls inside itself with its header and first column in place; an htmx request shows the
loading bar; the 404 page keeps the navigation; and nothing breaks the Content-Security-Policy.
One browser, one logged-in context, the live tests' ASGI server and sandbox.
"""

from __future__ import annotations

import pytest

from tests.access.test_crawler import _mirror_from_sandbox
from tests.dashboard.test_security_headers import VIOLATION_LISTENER, _violations
from tests.live.conftest import hub_sandbox, hubs, live_server_url  # noqa: F401 (fixtures)
from tests.live.pages import _logged_in_page, _state, _wait

LIGHT_BACKGROUND = "rgb(244, 245, 247)"  # --bg of the light palette (dashboard.css)
DARK_BACKGROUND = "rgb(17, 22, 29)"  # --bg of the dark palette
DARK_INK = "rgb(227, 232, 239)"  # --ink of the dark palette
ADMIN_DARK_BACKGROUND = "rgb(18, 18, 18)"  # Django admin's dark --body-bg
LONG_NAME = "Maximilian Alexander Hohenzollern-Sigmaringen Trading Partners GmbH & Co. KG"

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
BACKGROUND = "getComputedStyle(document.body).backgroundColor"
CHARTS_DRAWN = "() => [...document.querySelectorAll('[data-chart]')].every(e => e.dataset.drawn)"


@pytest.fixture
def desk(live_server_url, client):  # noqa: F811
    """A superuser's session and the sandbox MT4 platform mirrored (accounts, trades, a
    symbol), one account with a name too long for its column."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from platforms.mirror.models import MirrorAccount, MirrorState
    from platforms.models import TradePlatform

    mt4 = TradePlatform.objects.get(name="Sandbox MT4")
    rows = _mirror_from_sandbox(mt4)
    now = timezone.now()  # as a snapshot run leaves it: the pages say how old their data is
    MirrorState.objects.update_or_create(platform=mt4, defaults={
        "accounts_as_of": now, "trades_as_of": now})
    first = min(row.login for row in rows)
    MirrorAccount.objects.filter(platform=mt4, login=first).update(name=LONG_NAME)
    user = get_user_model().objects.create_superuser("look-browser", "look@example.com",
                                                     "pw-123456")
    client.force_login(user)
    return client.cookies["sessionid"].value, mt4.pk, first


def _pages(pk: int, login: int) -> list[tuple[str, str, str]]:
    """(name, path, selector that says the page is drawn)."""
    return [
        ("overview", "/", "#main .card"),
        ("accounts", f"/platforms/{pk}/accounts/", "#accounts tbody tr"),
        ("account-card", f"/platforms/{pk}/accounts/{login}/",
         "#account-tab table, #account-tab .empty"),
        ("trades", f"/platforms/{pk}/trades/", "#open-trades tbody tr"),
        ("margins", f"/platforms/{pk}/margins/", f'[data-live-monitor="{pk}"]'),
        ("exposure", "/exposure/", "#exposure-table"),
        ("symbols", f"/platforms/{pk}/symbols/", "#symbols tbody tr"),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_main_pages_read_well_in_both_themes_at_1280(live_server_url, desk, browser,  # noqa: F811
                                                         artifacts, capsys):
    cookie, pk, login = desk
    page = _logged_in_page(browser, live_server_url, cookie)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.add_init_script(VIOLATION_LISTENER)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))

    def no_sideways_scroll(name: str) -> None:
        assert page.evaluate(NO_SIDEWAYS_SCROLL), (
            f"{name} scrolls sideways at 1280 px: "
            f"{page.evaluate('document.documentElement.scrollWidth')} px")

    # each page in the light scheme, then the system turns dark: "auto" follows at once
    for name, path, ready in _pages(pk, login):
        page.emulate_media(color_scheme="light")
        page.goto(f"{live_server_url}{path}")
        page.wait_for_selector(ready)
        page.wait_for_function(CHARTS_DRAWN)
        if name == "margins":
            _wait(page, lambda: _state(page) == "live", what="live indicator")
        no_sideways_scroll(name)
        assert page.evaluate(BACKGROUND) == LIGHT_BACKGROUND, name
        page.screenshot(path=artifacts / f"{name}-light.png")
        page.emulate_media(color_scheme="dark")
        page.wait_for_function(f"() => {BACKGROUND} === {DARK_BACKGROUND!r}", timeout=2000)
        if name == "trades":  # the chart is re-coloured with the page
            fill = page.evaluate("getComputedStyle(document.querySelector("
                                 "'[data-chart] .main-svg .xtick text')).fill")
            assert fill == DARK_INK, fill
        no_sideways_scroll(name)
        page.screenshot(path=artifacts / f"{name}-dark.png")
        assert _violations(page, console) == [], name

    # the other lists fit too (no screenshot: the main pages above are the ones to look at)
    page.emulate_media(color_scheme="light")
    for path in (f"/platforms/{pk}/history/", f"/platforms/{pk}/groups/",
                 f"/platforms/{pk}/online/", f"/platforms/{pk}/snapshots/",
                 f"/platforms/{pk}/operations/", "/operations/audit/",
                 f"/platforms/{pk}/server/journal/"):
        page.goto(f"{live_server_url}{path}")
        page.wait_for_selector("#main table, #main .empty, #main .error")
        no_sideways_scroll(path)

    # the toggle: "dark" on a light system, kept across pages; back to "auto"
    accounts = f"{live_server_url}/platforms/{pk}/accounts/"
    page.goto(accounts)
    page.select_option("#theme-choice", "dark")
    assert page.evaluate(BACKGROUND) == DARK_BACKGROUND
    page.goto(f"{live_server_url}/")
    assert page.evaluate(BACKGROUND) == DARK_BACKGROUND
    assert page.input_value("#theme-choice") == "dark"
    page.goto(f"{live_server_url}/admin/")  # the admin reads the same choice
    assert page.evaluate(BACKGROUND) == ADMIN_DARK_BACKGROUND
    page.goto(f"{live_server_url}/")
    page.select_option("#theme-choice", "auto")
    assert page.evaluate(BACKGROUND) == LIGHT_BACKGROUND

    # a long name: one line, cut with an ellipsis, whole on hover
    page.goto(accounts)
    name_cell = page.locator("#accounts tbody td", has_text="Maximilian").first
    name_cell.hover()
    assert name_cell.get_attribute("title") == LONG_NAME
    cut = name_cell.evaluate("td => [td.scrollWidth > td.clientWidth, td.getClientRects().length,"
                             " getComputedStyle(td).textOverflow]")
    assert cut == [True, 1, "ellipsis"], cut

    # the table scrolls inside itself; its header and first column stay in place
    moved = page.evaluate("""() => {
        const table = document.querySelector('#accounts');
        table.scrollLeft = 400; table.scrollTop = 300;
        const box = table.getBoundingClientRect();
        const first = table.querySelector('tbody tr:nth-child(20) td:first-child');
        const head = table.querySelector('thead th:nth-child(3)');
        return [table.scrollLeft > 0, table.scrollTop > 0,
                Math.round(first.getBoundingClientRect().left - box.left),
                Math.round(head.getBoundingClientRect().top - box.top)];
    }""")
    assert moved[:2] == [True, True], moved  # wider and longer than its box: it scrolls
    assert moved[2] <= 1 and moved[3] <= 1, moved  # first column and header did not move
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    # compact density: shorter rows, kept on the next page load
    row_height = "document.querySelector('#accounts tbody tr').getBoundingClientRect().height"
    comfortable = page.evaluate(row_height)
    page.click("#density-toggle")
    assert page.get_attribute("#density-toggle", "aria-pressed") == "true"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.density") == "compact"
    assert page.evaluate(row_height) < comfortable
    page.screenshot(path=artifacts / "accounts-compact-light.png")
    page.click("#density-toggle")

    # every htmx request shows the loading bar until its answer is in
    held = []

    def hold(route):
        if route.request.headers.get("hx-request"):
            held.append(route)
        else:
            route.continue_()

    page.route("**/accounts/?*", hold)
    page.fill("input[name=group]", "nothing-matches")
    page.press("input[name=group]", "Enter")
    _wait(page, lambda: held, what="the filter's htmx request")
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('busy-bar')).opacity === '1'")
    assert page.evaluate("document.documentElement.classList.contains('htmx-busy')")
    held[0].continue_()
    page.unroute("**/accounts/?*")
    page.wait_for_function("() => !document.documentElement.classList.contains('htmx-busy')")

    # a page out of reach is a 404 that keeps the frame and the navigation
    response = page.goto(f"{live_server_url}/platforms/{pk + 1000}/accounts/")
    assert response.status == 404
    assert page.locator("nav.nav a", has_text="Platforms").is_visible()
    assert page.locator("nav.nav a", has_text="Margins").is_visible()
    assert page.locator("#error-page h1").inner_text() == "Nothing here"
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.screenshot(path=artifacts / "not-found-light.png")
    assert _violations(page, console) == []

    with capsys.disabled():
        print(f"\nscreenshots: {artifacts}")
