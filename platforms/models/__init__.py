"""Models shared by every domain: the platform and the audit trail.

Each domain keeps its own models (``platforms/<domain>/models.py``) and code imports them from
there. Django imports only this module; ``PlatformsConfig.import_models`` (``platforms.apps``)
imports each domain's models too, so that they all register with the one ``platforms`` app
(table names and migrations stay as they were) while this module imports no domain.
"""

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
    "PlatformEnvironment",
    "PlatformKind",
    "TradePlatform",
]
