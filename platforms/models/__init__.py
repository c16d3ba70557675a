"""Models shared by every domain (the platform, the audit trail), and Django's model registry.

Each domain keeps its own models (``platforms/<domain>/models.py``) and code imports them from
there. Django loads only ``platforms.models``, so the imports at the bottom register every
domain's models with the one ``platforms`` app (table names and migrations stay as they were).
"""

# Django's registry: every domain's models, imported once so the app registers them.
from platforms.access import models as _access_models  # noqa: F401
from platforms.coverage import models as _coverage_models  # noqa: F401
from platforms.live import models as _live_models  # noqa: F401
from platforms.mirror import models as _mirror_models  # noqa: F401
from platforms.models.platform import (
    ENVIRONMENT_PRESETS,
    AuditEvent,
    PlatformEnvironment,
    PlatformKind,
    TradePlatform,
)
from platforms.server import models as _server_models  # noqa: F401
from platforms.trading import models as _trading_models  # noqa: F401

__all__ = [
    "ENVIRONMENT_PRESETS",
    "AuditEvent",
    "PlatformEnvironment",
    "PlatformKind",
    "TradePlatform",
]
