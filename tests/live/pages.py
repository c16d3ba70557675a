"""Helpers for the live pages in Chromium: a logged-in page, the live indicator, waiting."""

from __future__ import annotations

import time

from tests.support.polling import wait_until


def _logged_in_page(browser, url, cookie):
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": url}])
    return context.new_page()


def _state(page) -> str:
    return page.get_attribute("[data-live-status]", "data-state") or ""


def _wait(page, predicate, timeout=10.0, what="condition"):
    """When ``predicate`` came to hold; Playwright's own wait lets the page run meanwhile."""
    wait_until(predicate, lambda: f"{what} (status {_state(page)!r})", timeout=timeout,
               interval=0.025, pause=lambda seconds: page.wait_for_timeout(seconds * 1000))
    return time.monotonic()
