"""Who may read ``/metrics``: a client inside ``METRICS_ALLOWED_NETWORKS`` or one that sends
``Authorization: Bearer $METRICS_TOKEN``. The figures name platforms and queue sizes: not for
the internet, and not behind a staff login either (Prometheus has no session)."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_in_allowed_network(request: HttpRequest) -> bool:
    """``REMOTE_ADDR`` (behind the proxy, uvicorn's ``--proxy-headers`` has already put the
    client's address there from a trusted proxy's ``X-Forwarded-For``)."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False)
               for network in settings.METRICS_ALLOWED_NETWORKS)


def bearer_token_matches(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode())


def may_scrape(request: HttpRequest) -> bool:
    return client_in_allowed_network(request) or bearer_token_matches(request)
