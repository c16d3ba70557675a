"""Models, one module per concern; everything is importable from ``platforms.models``."""

from platforms.models.access import PlatformAccess
from platforms.models.platform import (
    ENVIRONMENT_PRESETS,
    AuditEvent,
    PlatformEnvironment,
    PlatformKind,
    TradePlatform,
)

__all__ = [
    "ENVIRONMENT_PRESETS",
    "AuditEvent",
    "PlatformAccess",
    "PlatformEnvironment",
    "PlatformKind",
    "TradePlatform",
]
