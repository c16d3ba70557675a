"""The one place channel-layer group names are made (bridge publishes, consumers join)."""

from __future__ import annotations


def platform_group(platform_pk: int) -> str:
    """Coalesced margin batches and the upstream status of one platform."""
    return f"rt.platform.{int(platform_pk)}"


def quotes_group(platform_pk: int) -> str:
    """Coalesced quote batches of one platform."""
    return f"rt.quotes.{int(platform_pk)}"


def account_group(platform_pk: int, login: int) -> str:
    """Discrete events of one account (trade added/updated/deleted, user changes)."""
    return f"rt.account.{int(platform_pk)}.{int(login)}"
