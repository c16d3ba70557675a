"""Embedded CPlugin WebAPI v2 trade-server simulator (plain Python; never imports Django).

Run it with ``python -m platforms.sandbox`` (see ``docs/sandbox.md``).
"""

MT4_PLATFORM_ID = "5a1d0b0e-4d54-4000-8000-000000000004"
MT5_PLATFORM_ID = "5a1d0b0e-4d54-4000-8000-000000000005"

__all__ = ["MT4_PLATFORM_ID", "MT5_PLATFORM_ID"]
