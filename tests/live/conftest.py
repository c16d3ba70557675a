"""Realtime fixtures: a sandbox of its own (margin calls are pushed into its accounts), both
channel layers, and the sandbox platforms registered."""

from __future__ import annotations

import os

import httpx
import pytest

from dashboard.settings import redis_channel_layer
from tests.sandbox_process import forget_connections, start_sandbox
from tests.support.asgi_server import serve_dashboard

#: The Redis database these tests flush: the run's own when ``REDIS_URL`` names one.
REDIS_TEST_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/1"


@pytest.fixture(scope="session")
def hub_sandbox():
    info = start_sandbox("--users", "300", "--seed", "11", "--tick-rate", "0")
    yield info
    info.stop()


@pytest.fixture
def hubs(hub_sandbox):
    """The sandbox with hub faults cleared before and after, and a fast keep-alive."""

    def control(method: str, path: str, **kwargs) -> dict:
        response = httpx.request(method, f"{hub_sandbox.control_url}/hubs{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    control("DELETE", "/faults")
    control("POST", "/config", json={"keepAliveSeconds": 0.3})
    hub_sandbox.hubs = control
    yield hub_sandbox
    control("DELETE", "/faults")


@pytest.fixture(params=["memory", "redis"])
def channel_layer_backend(request, settings):
    """Run the test on the in-memory layer and on channels_redis (always both)."""
    from channels.layers import channel_layers

    if request.param == "memory":
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels.layers.InMemoryChannelLayer",
                "CONFIG": {"capacity": 20000},
            }
        }
    else:
        import redis

        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        settings.CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_TEST_URL, capacity=20000)}
    channel_layers.backends.clear()
    yield request.param
    channel_layers.backends.clear()


@pytest.fixture
def live_server_url(settings, hubs):
    """The real ASGI app (Django + Channels + the in-process bridge) on uvicorn, in a thread
    of this process so it shares the test database."""
    from channels.layers import channel_layers

    from platforms.services import register_sandbox_platforms

    settings.REALTIME_BRIDGE = "in-process"
    settings.REALTIME_SERVER_TIMEOUT_SECONDS = 1.5
    settings.REALTIME_RECONNECT_MAX_SECONDS = 1.0
    settings.REALTIME_BRIDGE_FLUSH_SECONDS = 0.05
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    forget_connections(hubs)
    register_sandbox_platforms(hubs)
    with serve_dashboard() as url:
        yield url
    channel_layers.backends.clear()
    forget_connections(hubs)


@pytest.fixture
def session(live_server_url, client):
    """A logged-in superuser's session cookie and the MT4 platform's pk (the ORM is used here,
    before Playwright's sync API puts an event loop on this thread)."""
    from django.contrib.auth import get_user_model

    from platforms.models import TradePlatform

    user = get_user_model().objects.create_superuser("rt-browser", "rt@example.com", "pw-123456")
    client.force_login(user)
    return client.cookies["sessionid"].value, TradePlatform.objects.get(name="Sandbox MT4").pk
