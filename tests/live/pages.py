"""Helpers for the live pages in Chromium: a logged-in page, the live indicator, waiting."""

from __future__ import annotations

import time


def _logged_in_page(browser, url, cookie):
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": url}])
    return context.new_page()


def _state(page) -> str:
    return page.get_attribute("[data-live-status]", "data-state") or ""


def _wait(page, predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        page.wait_for_timeout(25)
    raise AssertionError(f"{what} not reached within {timeout}s (status {_state(page)!r})")
