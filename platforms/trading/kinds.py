"""What each operation kind is: its permission, where it is available, whether a read can
find it, and the pieces of its wire body (the comment tag, signed amounts, volumes).

Pure functions of a task's validated payload; ``platforms.trading.wire`` assembles the body
from them (plus, for a few kinds, one live read made once before the first send).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from platforms.trading.models import TaskKind

#: MT4 ``TradeTransInfo.comment`` is ``char[32]``: 31 characters and a NUL.
MT4_COMMENT_MAX = 31
#: ``#`` + the first 12 hex digits of the request id (48 random bits of a UUID4).
TAG_HEX_DIGITS = 12

ENABLED_BIT = 0x01
READONLY_BIT = 0x04

MONEY = "money"
TRADES = "trades"
ACCOUNTS = "accounts"


@dataclass(frozen=True)
class OperationSpec:
    kind: str
    category: str
    permission: str
    mt5: bool = False
    bulk: bool = False
    #: the comment carries the request tag, so the platform's records identify the task
    tagged: bool = False
    #: applying it twice leaves the same state (a resend can never double it)
    idempotent: bool = False


def _spec(kind, category, **kw) -> OperationSpec:
    perm = {MONEY: "operate_balance", TRADES: "operate_trades", ACCOUNTS: "edit_accounts"}
    return OperationSpec(kind=kind, category=category, permission=perm[category], **kw)


K = TaskKind
OPERATIONS: dict[str, OperationSpec] = {
    s.kind: s
    for s in [
        _spec(K.DEPOSIT, MONEY, tagged=True),
        _spec(K.WITHDRAWAL, MONEY, tagged=True),
        _spec(K.CREDIT_IN, MONEY, tagged=True),
        _spec(K.CREDIT_OUT, MONEY, tagged=True),
        _spec(K.CORRECTION, MONEY, tagged=True),
        _spec(K.OPEN_ORDER, TRADES, tagged=True),
        _spec(K.PLACE_PENDING, TRADES, tagged=True),
        _spec(K.MODIFY_ORDER, TRADES, idempotent=True),
        _spec(K.CLOSE_ORDER, TRADES),
        _spec(K.DELETE_PENDING, TRADES, idempotent=True),
        # a hedge's x-request-id makes every resend a replay (the bridge's contract)
        _spec(K.COVERAGE_OPEN, TRADES, mt5=True, idempotent=True),
        _spec(K.COVERAGE_MODIFY, TRADES, mt5=True, idempotent=True),
        _spec(K.COVERAGE_CLOSE, TRADES, mt5=True, idempotent=True),
        _spec(K.CREATE_ACCOUNT, ACCOUNTS),
        _spec(K.EDIT_PROFILE, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.CHANGE_GROUP, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.CHANGE_LEVERAGE, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.ENABLE, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.DISABLE, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.READONLY_ON, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.READONLY_OFF, ACCOUNTS, mt5=True, idempotent=True),
        _spec(K.RESET_PASSWORD, ACCOUNTS, idempotent=True),
        _spec(K.BULK_GROUP, ACCOUNTS, bulk=True, idempotent=True),
        _spec(K.BULK_LEVERAGE, ACCOUNTS, bulk=True, idempotent=True),
        _spec(K.BULK_ENABLE, ACCOUNTS, bulk=True, idempotent=True),
        _spec(K.BULK_DISABLE, ACCOUNTS, bulk=True, idempotent=True),
    ]
}

#: hedge kinds → the action of ``platforms.coverage.hedging.HedgeRequest``
COVERAGE_KINDS = {K.COVERAGE_OPEN: "open", K.COVERAGE_MODIFY: "modify",
                  K.COVERAGE_CLOSE: "close"}

#: signed direction and MT4 trade command of each money kind
MONEY_KINDS: dict[str, tuple[int, str]] = {
    K.DEPOSIT: (1, "Balance"),
    K.WITHDRAWAL: (-1, "Balance"),
    K.CREDIT_IN: (1, "Credit"),
    K.CREDIT_OUT: (-1, "Credit"),
    K.CORRECTION: (1, "Balance"),  # the amount itself is signed
}
#: kinds whose wire body is decided at submit (no live read) and that a drain sends in batches
BATCHED_KINDS = tuple(MONEY_KINDS)
BULK_COMMANDS: dict[str, str] = {
    K.BULK_GROUP: "SetGroup",
    K.BULK_LEVERAGE: "Leverage",
    K.BULK_ENABLE: "Enable",
    K.BULK_DISABLE: "Disable",
}
PROFILE_FIELDS = ("name", "email", "phone", "country", "city", "address", "comment")
MT5_PROFILE_FIELDS = {
    "name": "name", "email": "eMail", "phone": "phone", "country": "country", "city": "city",
    "address": "address", "comment": "comment",
}


def spec_for(kind: str) -> OperationSpec:
    return OPERATIONS[kind]


def available_on(kind: str, platform_kind: str) -> bool:
    """MT5's WebAPI has only PATCH UserRecord / GroupRecord as writes."""
    return platform_kind == "MT4" or OPERATIONS[kind].mt5


def comment_tag(request_id) -> str:
    return "#" + request_id.hex[:TAG_HEX_DIGITS]


def tagged_comment(tag: str, comment: str) -> str:
    """The tag first (a platform truncates from the end), then as much of the staff comment
    as fits in MT4's 31 characters. The full comment stays in the task and the audit trail."""
    text = f"{tag} {comment.strip()}" if comment.strip() else tag
    return text[:MT4_COMMENT_MAX].rstrip()


def signed_amount(kind: str, payload: dict) -> Decimal:
    sign, _ = MONEY_KINDS[kind]
    return sign * Decimal(payload["amount"])


def lots_to_volume(lots: str | Decimal) -> int:
    return int((Decimal(lots) * 100).to_integral_value())


ORDER_KINDS = frozenset({TaskKind.MODIFY_ORDER, TaskKind.CLOSE_ORDER, TaskKind.DELETE_PENDING})


def account_actions(user, platform_kind: str) -> dict[str, list[tuple[str, str]]]:
    """Per category, the (kind, label) operations this user may start from an account card.

    Order-level kinds appear on each trade row instead; platform-level kinds (create, bulk)
    on the platform's operations page.
    """
    actions: dict[str, list[tuple[str, str]]] = {}
    for kind, spec in OPERATIONS.items():
        if (spec.bulk or kind == TaskKind.CREATE_ACCOUNT or kind in ORDER_KINDS
                or kind in COVERAGE_KINDS):  # hedges start from the exposure page
            continue
        if available_on(kind, platform_kind) and user.has_perm(f"platforms.{spec.permission}"):
            actions.setdefault(spec.category, []).append((kind, TaskKind(kind).label))
    return actions
