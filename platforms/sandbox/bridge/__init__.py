"""The simulated MT4 terminal-bridge API of a liquidity provider (coverage accounts).

Served by the sandbox on its own loopback port under ``/mt4/client`` (``--bridge-port``); see
``docs/coverage.md`` for the wire. Plain Python like the rest of the sandbox: no Django.
"""

from .state import (
    BASE_PATH,
    DEFAULT_API_KEY,
    DEFAULT_LOGINS,
    DEFAULT_PASSWORD,
    DEFAULT_SERVER,
    Bridge,
)
from .wire import BridgeError

__all__ = [
    "BASE_PATH",
    "DEFAULT_API_KEY",
    "DEFAULT_LOGINS",
    "DEFAULT_PASSWORD",
    "DEFAULT_SERVER",
    "Bridge",
    "BridgeError",
]
