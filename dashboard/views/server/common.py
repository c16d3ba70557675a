"""What every server page shares: the message for an unreachable WebAPI or sidecar, the MT4-only
notice, and a sidecar read that fails into that message (never a 500)."""

from __future__ import annotations

from platforms.client import CircuitOpen, ConnectionNotMade, ManagerApiError
from platforms.models import PlatformKind


def api_error_text(exc: ManagerApiError, sidecar: bool = False) -> str:
    """What a page shows when the manager API (or its sidecar) did not do what was asked."""
    if isinstance(exc, ConnectionNotMade | CircuitOpen):
        where = "The x86 sidecar" if sidecar else "The trade server's WebAPI"
        return f"{where} is unreachable right now ({exc}). Nothing was sent; try again later."
    return str(exc)


def mt4_only_notice(platform) -> str:
    if platform.kind != PlatformKind.MT4:
        return "This page uses MT4 operations; MT5's WebAPI has no equivalent."
    return ""


def sidecar_read(context: dict, func, *args, **kwargs):
    """Run a sidecar read; on failure put a clear message in ``context["error"]``."""
    try:
        return func(*args, **kwargs)
    except ManagerApiError as exc:
        context["error"] = api_error_text(exc, sidecar=True)
        return None
