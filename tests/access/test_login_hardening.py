"""Staff sign-in hardening: failed logins throttled per username and per address (with an admin
unlock), TOTP two-factor for the admin and (by a setting) every page, idle session expiry, and
the environment banner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.middleware import IdleSessionMiddleware
from platforms.models import AuditEvent
from tests.factories import StaffUserFactory, TradePlatformFactory, grant

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
LOCKED = "Sign-in locked"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _sign_in(client, username, password=PASSWORD, address="192.0.2.10"):
    return client.post(reverse("login"), {"username": username, "password": password},
                       REMOTE_ADDR=address)


def _token(device: TOTPDevice) -> str:
    """The device's current code, computed the way an authenticator app does."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


# --- throttling ---------------------------------------------------------------------------------

def test_a_username_is_locked_after_the_limit_of_failures_from_any_addresses(client):
    user = StaffUserFactory(username="victim")
    statuses = [_sign_in(client, user.username, "wrong", address=f"192.0.2.{n + 1}").status_code
                for n in range(3)]
    assert statuses == [200, 200, 429]  # the failure that reaches the limit is told at once
    response = _sign_in(client, user.username, address="198.51.100.7")  # the right password
    assert response.status_code == 429
    body = response.content.decode()
    assert LOCKED in body and "victim" in body and "15 minutes" in body
    assert "_auth_user_id" not in client.session


def test_an_address_is_locked_after_the_limit_of_failures_for_any_usernames(client):
    other = StaffUserFactory(username="bystander")
    for name in ("alice", "bob", "carol"):
        _sign_in(client, name, "wrong", address="203.0.113.9")
    assert _sign_in(client, other.username, address="203.0.113.9").status_code == 429
    # the same user from another address is not locked: the lock is on the address
    response = _sign_in(client, other.username, address="203.0.113.10")
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:overview")


def test_a_successful_sign_in_clears_the_users_failures(client):
    user = StaffUserFactory(username="typo")
    _sign_in(client, user.username, "wrong")
    _sign_in(client, user.username, "wrong")
    assert _sign_in(client, user.username).status_code == 302
    client.logout()
    _sign_in(client, user.username, "wrong")
    _sign_in(client, user.username, "wrong")
    assert _sign_in(client, user.username).status_code == 302


def test_an_operator_unlocks_a_user_with_axes_reset_username(client):
    user = StaffUserFactory(username="locked-out")
    for n in range(3):
        _sign_in(client, user.username, "wrong", address=f"192.0.2.{n + 1}")
    assert _sign_in(client, user.username, address="198.51.100.1").status_code == 429
    call_command("axes_reset_username", user.username)
    assert _sign_in(client, user.username, address="198.51.100.1").status_code == 302


def test_an_administrator_unlocks_a_user_by_deleting_the_attempts_in_the_admin(client):
    user = StaffUserFactory(username="locked-out")
    for n in range(3):
        _sign_in(client, user.username, "wrong", address=f"192.0.2.{n + 1}")
    assert _sign_in(client, user.username).status_code == 429
    admin_client = type(client)()
    admin_client.force_login(StaffUserFactory(username="root", is_superuser=True))
    listing = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and "locked-out" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.filter(username=user.username)
           .values_list("pk", flat=True)]
    response = admin_client.post(reverse("admin:axes_accessattempt_changelist"),
                                 {"action": "delete_selected", "_selected_action": ids,
                                  "post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username=user.username).exists()
    unlocks = AuditEvent.objects.filter(action="login_lockout.unlock")
    assert unlocks.count() == len(ids)  # one event per lockout row the administrator deleted
    assert {e.actor.username for e in unlocks} == {"root"}
    assert any(user.username in e.target for e in unlocks)
    assert _sign_in(client, user.username).status_code == 302


def test_failures_count_against_the_address_a_trusted_proxy_saw(client, settings):
    settings.DASHBOARD_TRUSTED_PROXY_COUNT = 1
    for name in ("a", "b", "c"):
        client.post(reverse("login"), {"username": name, "password": "x"},
                    REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="spoofed, 192.0.2.50")
    user = StaffUserFactory(username="behind-proxy")
    locked = client.post(reverse("login"), {"username": user.username, "password": PASSWORD},
                         REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.50")
    assert locked.status_code == 429
    # another client behind the same proxy is not locked (nor can it pick its own address)
    other = client.post(reverse("login"), {"username": user.username, "password": PASSWORD},
                        REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.50, 192.0.2.51")
    assert other.status_code == 302


# --- two-factor -----------------------------------------------------------------------------------

def test_with_2fa_required_the_first_sign_in_enrols_a_device_with_a_real_token(client, settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    user = StaffUserFactory(username="newcomer")
    response = _sign_in(client, user.username)
    assert response.status_code == 302
    page = client.get(reverse("dashboard:overview"))
    assert page.status_code == 302
    assert page["Location"] == reverse("two-factor") + "?next=%2F"
    enrol = client.get(page["Location"])
    body = enrol.content.decode()
    assert enrol.status_code == 200 and "<svg" in body and "otpauth://totp/" in body
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert enrol.context["otpauth_uri"] == device.config_url

    wrong = client.post(reverse("two-factor"), {"token": "000000", "next": "/margins/"})
    assert wrong.status_code == 400 and "not valid" in wrong.content.decode()
    # a wrong code throttles the device: at once, even the right one is refused
    throttled = client.post(reverse("two-factor"), {"token": _token(device)})
    assert throttled.status_code == 400 and "wait a few seconds" in throttled.content.decode()
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=5))
    ok = client.post(reverse("two-factor"), {"token": _token(device), "next": "/margins/"})
    assert ok.status_code == 302 and ok["Location"] == "/margins/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("dashboard:overview")).status_code == 200


def test_an_enrolled_user_proves_a_token_at_each_sign_in_and_is_shown_no_secret(client,
                                                                               settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    user = StaffUserFactory(username="enrolled")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    _sign_in(client, user.username)
    page = client.get(reverse("two-factor"))
    body = page.content.decode()
    assert "otpauth://" not in body and "<svg" not in body and "six-digit code" in body
    assert client.get(reverse("dashboard:margins")).status_code == 302
    response = client.post(reverse("two-factor"), {"token": _token(device),
                                                   "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:overview")
    assert client.get(reverse("dashboard:margins")).status_code == 200


def test_an_htmx_request_of_an_unverified_session_is_told_to_go_to_the_token_page(client,
                                                                                  settings):
    settings.DASHBOARD_REQUIRE_2FA = True
    client.force_login(StaffUserFactory(username="htmx-user"))
    response = client.get(reverse("dashboard:margins"), HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("two-factor"))


def test_the_admin_asks_for_a_token_when_admin_2fa_is_on_even_with_staff_2fa_off(client,
                                                                                 settings):
    settings.DASHBOARD_REQUIRE_2FA = False
    settings.DASHBOARD_ADMIN_REQUIRE_2FA = True
    root = StaffUserFactory(username="root", is_superuser=True)
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    client.force_login(root)
    assert client.get(reverse("dashboard:overview")).status_code == 200  # pages: password only
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"] == reverse("two-factor") + "?next=%2Fadmin%2F"
    client.post(reverse("two-factor"), {"token": _token(device), "next": "/admin/"})
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_admin_site_itself_refuses_an_unverified_session(rf, settings):
    """The check of last resort, should a path reach the admin without the middleware."""
    from django.contrib import admin
    from django_otp.middleware import OTPMiddleware

    settings.DASHBOARD_ADMIN_REQUIRE_2FA = True
    request = rf.get("/admin/")
    request.user = StaffUserFactory(username="root", is_superuser=True)
    request.session = {}
    OTPMiddleware(lambda r: None)(request)
    assert admin.site.has_permission(request) is False
    settings.DASHBOARD_ADMIN_REQUIRE_2FA = False
    assert admin.site.has_permission(request) is True


def test_the_admins_own_login_page_sends_to_the_one_sign_in_page(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/"


def test_the_demo_signs_in_in_one_step_and_production_asks_for_2fa(client, settings):
    assert settings.DJANGO_ENV == "demo"
    assert settings.DASHBOARD_REQUIRE_2FA is False
    assert settings.DASHBOARD_ADMIN_REQUIRE_2FA is False
    user = StaffUserFactory(username="demo-like")
    _sign_in(client, user.username)
    assert client.get(reverse("dashboard:overview")).status_code == 200


# --- idle expiry ----------------------------------------------------------------------------------

def _session_row(client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def test_the_users_requests_push_the_idle_expiry_on_and_background_requests_do_not(client,
                                                                                  settings):
    settings.SESSION_COOKIE_AGE = 600
    client.force_login(StaffUserFactory(username="idle"))
    session = client.session
    session[IdleSessionMiddleware.ACTIVITY_KEY] -= IdleSessionMiddleware.REFRESH_SECONDS
    session.save()  # the user's last activity: a while ago
    soon = timezone.now() + timedelta(seconds=30)
    Session.objects.filter(session_key=client.session.session_key).update(expire_date=soon)

    client.get(reverse("dashboard:margins"), HTTP_HX_REQUEST="true",
               HTTP_X_DASHBOARD_BACKGROUND="1")
    assert _session_row(client).expire_date == soon

    before = timezone.now()
    response = client.get(reverse("dashboard:margins"))
    assert response.status_code == 200
    expiry = _session_row(client).expire_date
    assert before + timedelta(seconds=595) <= expiry <= timezone.now() + timedelta(seconds=600)
    assert response.cookies["sessionid"]["max-age"] == 600
    # within a minute of that, another request writes nothing (the limit holds to a minute)
    client.get(reverse("dashboard:margins"))
    assert _session_row(client).expire_date == expiry


def test_a_session_idle_past_its_expiry_is_signed_out(client):
    client.force_login(StaffUserFactory(username="idle"))
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("dashboard:margins"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- environment banner ---------------------------------------------------------------------------

def test_every_page_says_its_environment_and_a_platform_page_its_platforms(client, settings):
    platform = TradePlatformFactory(name="Live MT4", environment="production")
    user = grant(StaffUserFactory(username="banner", is_superuser=True), platform)
    client.force_login(user)
    body = client.get(reverse("dashboard:margins")).content.decode()
    assert 'id="env-banner"' in body and "Demo environment" in body
    assert "Production platform" not in body
    body = client.get(reverse("dashboard:snapshots", args=[platform.pk])).content.decode()
    assert "Demo environment" in body and "Live MT4: Production platform" in body
    assert "Demo environment" in client.get(reverse("login")).content.decode()

    settings.DJANGO_ENV = "production"
    body = client.get(reverse("dashboard:margins")).content.decode()
    assert "env-site-production" in body and "Production environment" in body


def test_the_admin_header_says_the_environment_and_a_platforms_page_its_platforms(client):
    platform = TradePlatformFactory(name="Sandbox MT5", environment="sandbox")
    client.force_login(StaffUserFactory(username="root", is_superuser=True))
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="env-banner"' in body and "Demo environment" in body
    body = client.get(reverse("admin:platforms_tradeplatform_change",
                              args=[platform.pk])).content.decode()
    assert "Sandbox MT5: Sandbox platform" in body


def test_a_wrong_password_at_a_money_operations_reauthentication_counts_as_a_failure(client,
                                                                                    rf):
    from django.contrib.sessions.backends.db import SessionStore

    from platforms.trading.forms import ReauthForm

    user = StaffUserFactory(username="reauth")
    for _ in range(3):
        request = rf.post("/", REMOTE_ADDR="192.0.2.77")
        request.session = SessionStore()
        form = ReauthForm({"password": "guess", "confirm": "1"}, user=user, request=request)
        assert not form.is_valid()
    assert _sign_in(client, user.username, address="198.51.100.3").status_code == 429


@pytest.mark.django_db(transaction=True)
async def test_with_2fa_required_the_live_socket_refuses_a_session_that_skipped_the_token(
        settings):
    """The socket is checked like the pages: password alone opens no live data."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from dashboard.asgi import application

    settings.DASHBOARD_REQUIRE_2FA = True

    def session_cookie(verified: bool) -> str:
        user = StaffUserFactory(username=f"socket-{verified}", is_superuser=True)
        client = Client()
        client.force_login(user)
        if verified:
            device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
            response = client.post(reverse("two-factor"), {"token": _token(device)})
            assert response.status_code == 302
        return client.cookies["sessionid"].value

    async def connects(cookie: str) -> bool:
        socket = WebsocketCommunicator(application, "/ws/live/", headers=[
            (b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"http://127.0.0.1")])
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    assert await connects(await sync_to_async(session_cookie)(verified=False)) is False
    assert await connects(await sync_to_async(session_cookie)(verified=True)) is True


@pytest.mark.django_db(transaction=True)
async def test_an_open_live_socket_closes_when_its_session_ends(settings):
    """The socket never extends the session, and does not outlive it either."""
    import asyncio

    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from dashboard.asgi import application
    from dashboard.middleware import SessionEndSocketMiddleware

    settings.DASHBOARD_SOCKET_SESSION_CHECK_SECONDS = 0.2

    def session_key() -> str:
        client = Client()
        client.force_login(StaffUserFactory(username="socket-idle", is_superuser=True))
        return client.cookies["sessionid"].value

    key = await sync_to_async(session_key)()
    socket = WebsocketCommunicator(application, "/ws/live/", headers=[
        (b"cookie", f"sessionid={key}".encode()), (b"origin", b"http://127.0.0.1")])
    connected, _ = await socket.connect()
    assert connected
    await asyncio.sleep(0.5)
    assert socket.output_queue.empty() or (await socket.output_queue.get())["type"] != \
        "websocket.close"  # alive while the session is
    await sync_to_async(Session.objects.filter(session_key=key).update)(
        expire_date=timezone.now() - timedelta(seconds=1))
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        message = await asyncio.wait_for(socket.output_queue.get(),
                                          deadline - asyncio.get_running_loop().time())
        if message["type"] == "websocket.close":
            break
    assert message["code"] == SessionEndSocketMiddleware.CLOSE_SESSION_ENDED
    await socket.wait(timeout=5)  # the consumer ended cleanly, no error
