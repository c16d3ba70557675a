"""Models, one module per concern; everything is importable from ``platforms.models``."""

from platforms.models.access import PlatformAccess
from platforms.models.alerts import MarginAlert
from platforms.models.mirror import (
    MarginState,
    MirrorAccount,
    MirrorClosedTrade,
    MirrorGroup,
    MirrorOpenTrade,
    MirrorState,
    MirrorSymbol,
    SnapshotKind,
    SnapshotRun,
    SnapshotState,
    SnapshotTrigger,
)
from platforms.models.platform import (
    ENVIRONMENT_PRESETS,
    AuditEvent,
    PlatformEnvironment,
    PlatformKind,
    TradePlatform,
)
from platforms.models.server import (
    BreakerTransition,
    HealthSample,
    JobState,
    MailJob,
    MailRecipient,
    ReportJob,
    ReportScope,
)
from platforms.models.tasks import (
    FINAL_STATES,
    ApprovalDecision,
    OperationPolicy,
    TaskApproval,
    TaskKind,
    TaskState,
    TradeTask,
)

__all__ = [
    "ENVIRONMENT_PRESETS",
    "FINAL_STATES",
    "ApprovalDecision",
    "AuditEvent",
    "BreakerTransition",
    "HealthSample",
    "JobState",
    "MailJob",
    "MailRecipient",
    "MarginAlert",
    "MarginState",
    "MirrorAccount",
    "MirrorClosedTrade",
    "MirrorGroup",
    "MirrorOpenTrade",
    "MirrorState",
    "MirrorSymbol",
    "OperationPolicy",
    "PlatformAccess",
    "PlatformEnvironment",
    "PlatformKind",
    "ReportJob",
    "ReportScope",
    "SnapshotKind",
    "SnapshotRun",
    "SnapshotState",
    "SnapshotTrigger",
    "TaskApproval",
    "TaskKind",
    "TaskState",
    "TradePlatform",
    "TradeTask",
]
