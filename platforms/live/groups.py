"""The one place channel-layer group names are made (bridge publishes, consumers join)."""

from __future__ import annotations


def platform_group(platform_pk: int) -> str:
    """Batches (margin rows and account events) and the upstream status of one platform.

    There are no per-account groups: the in-memory layer walks every group membership on each
    receive (50 sockets x 50 accounts made that most of the process's CPU), and a batch index
    lets each socket pick its accounts' events as cheaply as their rows."""
    return f"rt.platform.{int(platform_pk)}"


def quotes_group(platform_pk: int) -> str:
    """Coalesced quote batches of one platform."""
    return f"rt.quotes.{int(platform_pk)}"



def exposure_group(platform_pk: int) -> str:
    """"Net exposure changed" nudges of one platform (client trades, coverage fills): joined
    only by sockets of users who may view that platform's exposure."""
    return f"rt.exposure.{int(platform_pk)}"
