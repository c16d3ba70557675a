"""The MT4 v2 operations, by topic; importing the package registers them all (main port and
x86 sidecar) in :mod:`platforms.sandbox.registry`."""

from . import server, sidecar, sync, trades, users

__all__ = ["server", "sidecar", "sync", "trades", "users"]
