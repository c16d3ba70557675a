"""The TOTP step after the password: enrol a first device (QR code, then a first token) or
prove the enrolled one. ``RequireTwoFactorMiddleware`` sends users here when 2FA is required."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from dashboard import login_security


@require_http_methods(["GET", "POST"])
@login_required
def two_factor(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = ""
    device = login_security.confirmed_device(request.user)
    enrolling = device is None
    if enrolling:
        device = login_security.enrolment_device(request.user)
    error = ""
    if request.method == "POST":
        error = login_security.check_token(device, request.POST.get("token", ""))
        if not error:
            otp_login(request, device)
            return redirect(next_url or "dashboard:overview")
    context = {"enrolling": enrolling, "error": error, "next": next_url}
    if enrolling:
        context |= {"otpauth_uri": device.config_url, "qr_svg": login_security.qr_svg(
            device.config_url)}
    return render(request, "registration/two_factor.html", context, status=400 if error else 200)
