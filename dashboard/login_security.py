"""Login hardening helpers: the client address that failed logins are counted against, and
the TOTP device a staff user enrols and proves.

Views and middleware call these; the rules (who must show a token, how a first device is
confirmed) live here once.
"""

from __future__ import annotations

import segno
from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

ENROLMENT_DEVICE_NAME = "Authenticator app"


def client_ip(request: HttpRequest) -> str:
    """The address failed logins count against (``AXES_CLIENT_IP_CALLABLE``).

    ``REMOTE_ADDR`` unless ``DASHBOARD_TRUSTED_PROXY_COUNT`` proxies sit in front: then the
    address the outermost trusted proxy saw, read from the right of ``X-Forwarded-For``, so that
    a client cannot pick its own address (and dodge the per-address limit) by sending the header.
    """
    proxies = settings.DASHBOARD_TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    return forwarded[-proxies] if len(forwarded) >= proxies else remote


def lockout_response(request: HttpRequest, original_response, credentials) -> HttpResponse:
    """The page a locked-out sign-in gets (``AXES_LOCKOUT_CALLABLE``): what happened, for how
    long, and who can lift it; 429 so that scripts see it as throttling."""
    cool_off = get_cool_off(request)
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "lockout_minutes": int(cool_off.total_seconds() // 60) if cool_off else 0,
    }
    return render(request, "registration/locked_out.html", context, status=429)


def two_factor_required(request: HttpRequest) -> bool:
    """Whether this request's path needs a session verified with a TOTP token."""
    if settings.DASHBOARD_REQUIRE_2FA:
        return True
    return settings.DASHBOARD_ADMIN_REQUIRE_2FA and request.path.startswith(
        reverse("admin:index"))


def session_verified(user) -> bool:
    """Whether this request's user proved a TOTP device in this session (django-otp's
    ``OTPMiddleware`` gives the user ``is_verified``; without it, nobody is verified)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def confirmed_device(user) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they have enrolled one."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).first()


def enrolment_device(user) -> TOTPDevice:
    """The unconfirmed device a first-time user is shown (the same one until they confirm it,
    so reloading the page does not invalidate the code they already scanned)."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=ENROLMENT_DEVICE_NAME, confirmed=False)
    return device


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code, drawn on the server (no script, no CDN)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff")


def check_token(device: TOTPDevice, token: str) -> str:
    """Verify a six-digit token on the device; a first correct token confirms an enrolment.

    Returns what to tell the user when it fails ("" on success). django-otp throttles a device
    after a wrong code (1 s, doubling with each further failure), so a guessing script gets
    nowhere; during that wait even the right code is refused, and the user is told to wait.
    """
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return "Too many wrong codes in a row: wait a few seconds, then enter the current code."
    token = "".join(token.split())
    if not token.isdigit() or not device.verify_token(token):
        return "That code is not valid. Enter the current six-digit code from your app."
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return ""


class TwoFactorAdminSite(AdminSite):
    """The admin site, refusing a session without a verified TOTP device when
    ``DASHBOARD_ADMIN_REQUIRE_2FA`` is on (django-otp's ``OTPAdminSite`` rule, read from the
    setting at each request). ``RequireTwoFactorMiddleware`` sends such a user to the token page
    before the admin is reached; this is the check of last resort."""

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.DASHBOARD_ADMIN_REQUIRE_2FA or session_verified(request.user)
