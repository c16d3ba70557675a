"""Session middleware of the dashboard: idle expiry, and a TOTP token before any page (and
before the live socket) when two-factor authentication is required."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from importlib import import_module
from urllib.parse import urlencode

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from dashboard.login_security import session_verified, two_factor_required
from platforms.transport import interactive

# Requests an idle user's page makes by itself: htmx polls, and re-reads that the live socket or a
# timer triggers. page.js marks them (`htmx:configRequest`), and they do not extend the session.
BACKGROUND_HEADER = "HTTP_X_DASHBOARD_BACKGROUND"


class IdleSessionMiddleware:
    """Push the session's expiry ``SESSION_COOKIE_AGE`` seconds on from each request the user
    made. Background requests leave it alone, and so does the live WebSocket (it never saves
    the session), so an open tab does not keep a session alive forever.

    The session is saved at most once a ``REFRESH_SECONDS`` (not on every request: a write per
    page and per htmx swap), so the idle limit holds to within that much."""

    REFRESH_SECONDS = 60
    ACTIVITY_KEY = "_dashboard_active_at"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and BACKGROUND_HEADER not in request.META:
            now = int(time.time())
            if now - request.session.get(self.ACTIVITY_KEY, 0) >= self.REFRESH_SECONDS:
                # saved with a fresh expiry, and the cookie re-sent with it
                request.session[self.ACTIVITY_KEY] = now
        return self.get_response(request)


class RequireTwoFactorMiddleware:
    """When 2FA is required (``DASHBOARD_REQUIRE_2FA``, or ``DASHBOARD_ADMIN_REQUIRE_2FA`` for
    /admin/), a signed-in user whose session has no verified TOTP device is sent to the token
    page (or, before their first device, to enrolment) for anything but that page and logout."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (user.is_authenticated and not session_verified(user)
                and two_factor_required(request) and not self._exempt(request)):
            target = reverse("two-factor") + "?" + urlencode({"next": request.get_full_path()})
            if request.headers.get("HX-Request") == "true":
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return HttpResponseRedirect(target)
        return self.get_response(request)

    @staticmethod
    def _exempt(request: HttpRequest) -> bool:
        return request.path in {reverse("two-factor"), reverse("logout"), reverse("healthz")}


def mark_active_at_login(sender, request: HttpRequest, user, **kwargs) -> None:
    """Signing in is activity: the new session (saved by the login anyway) starts its idle
    clock, so the first page after it needs no second write."""
    if request is not None and hasattr(request, "session"):
        request.session[IdleSessionMiddleware.ACTIVITY_KEY] = int(time.time())


class TwoFactorSocketMiddleware:
    """ASGI middleware inside Channels' ``AuthMiddlewareStack``: when ``DASHBOARD_REQUIRE_2FA``
    is on, a socket whose session passed the password but not the TOTP step is anonymous (the
    consumer then closes it), as every page would send that session to the token page."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if (settings.DASHBOARD_REQUIRE_2FA and user is not None and user.is_authenticated
                and not await database_sync_to_async(_session_verified)(scope, user)):
            scope = {**scope, "user": AnonymousUser()}
        return await self.inner(scope, receive, send)


def _session_verified(scope, user) -> bool:
    """What django-otp's ``OTPMiddleware`` checks for a request: the session names a confirmed
    device of this user."""
    session = scope.get("session")
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


class SessionEndSocketMiddleware:
    """ASGI middleware inside Channels' ``AuthMiddlewareStack``: a live socket ends when its
    session does (idle expiry, sign-out, a deleted session). The socket never extends the
    session; without this, a page left open would go on streaming after it ended.

    Every ``DASHBOARD_SOCKET_SESSION_CHECK_SECONDS`` the session is read again; once it is
    gone, the browser gets a close (4401) and the consumer a disconnect, and nothing the
    consumer still sends goes out."""

    CLOSE_SESSION_ENDED = 4401

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        session = scope.get("session")
        key = getattr(session, "session_key", None)
        if scope.get("type") != "websocket" or not key:
            return await self.inner(scope, receive, send)
        ended = asyncio.Event()
        closed = False

        async def watch() -> None:
            every = max(0.05, float(settings.DASHBOARD_SOCKET_SESSION_CHECK_SECONDS))
            # Off the consumer's thread: a check must not wait behind the consumer's own work.
            alive = database_sync_to_async(_session_alive, thread_sensitive=False)
            while await alive(key):
                await asyncio.sleep(every)
            ended.set()

        async def guarded_receive():
            nonlocal closed
            message = asyncio.ensure_future(receive())
            end = asyncio.ensure_future(ended.wait())
            try:
                await asyncio.wait({message, end}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when the consumer cancels this receive: nothing is left waiting
                end.cancel()
                received = message.done()
                if not received:
                    message.cancel()
            if received:
                return message.result()
            if not closed:
                closed = True
                await send({"type": "websocket.close", "code": self.CLOSE_SESSION_ENDED})
            return {"type": "websocket.disconnect", "code": self.CLOSE_SESSION_ENDED}

        async def guarded_send(message) -> None:
            nonlocal closed
            if closed:
                return
            if message.get("type") == "websocket.close":
                closed = True
            await send(message)

        watcher = asyncio.ensure_future(watch())
        try:
            return await self.inner(scope, guarded_receive, guarded_send)
        finally:
            watcher.cancel()


def _session_alive(session_key: str) -> bool:
    """Whether the session still exists and has not expired (the store's own load says)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    store.load()
    return store.session_key is not None


class InteractiveReadsMiddleware:
    """Every live platform read a page makes shares one deadline,
    ``DASHBOARD_INTERACTIVE_TIMEOUT`` seconds (see :mod:`platforms.transport.interactive`): a
    slow platform then costs a page that long at most, and the page shows stored data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with interactive.interactive(settings.DASHBOARD_INTERACTIVE_TIMEOUT):
            return self.get_response(request)
