"""What went wrong with an operation: the desk's refusals, the client errors after which
nothing was sent, and staff-facing messages for what the platform answered.

The client raises typed errors carrying the WebAPI code and the raw MetaTrader ``managerCode``;
a dealer needs one sentence saying what happened and whether to try again.
"""

from __future__ import annotations

from platforms.client import Busy, CircuitOpen, ConnectionNotMade, ManagerApiError, NoConnect

#: errors after which the platform certainly did not run the write
NOT_SENT_ERRORS = (Busy, ConnectionNotMade, CircuitOpen, NoConnect)


class OperationRefused(Exception):
    """A rule of the desk refuses the action (self-approval, wrong state, not available)."""


MANAGER_CODE_MESSAGES: dict[str, str] = {
    "TradeNoMoney": "Not enough money: the balance or free margin does not cover this.",
    "TradeMarketClosed": "The market for this symbol is closed.",
    "TradeBadStops": "Stop loss or take profit is on the wrong side of the price or too close.",
    "TradeBadVolume": "Invalid volume for this symbol (check minimum, maximum and step).",
    "TradeBadPrices": "Invalid price: a pending order must be on the correct side of the market.",
    "TradeDisable": "Trading is disabled for this symbol or account.",
    "TradeOrderLocked": "The order is locked: another dealer or the server is processing it.",
    "TradeTooManyReq": "Too many requests to the trade server; try again in a moment.",
    "TradeTooManyOrders": "The account has reached its limit of orders.",
    "TradeModifyDenied": "The order is too close to the market to be modified.",
    "TradeExpirationDenied": "Expiration is not allowed for this symbol.",
    "TradeHedgeProhibited": "Hedging is prohibited for this account's group.",
    "TradeProhibitedByFIFO": "Prohibited by the FIFO rule of this account's group.",
    "TradePriceChanged": "The price changed; review and try again.",
    "TradeRequote": "Requote: the price changed; review and try again.",
    "TradeOffquotes": "No quotes for this symbol right now.",
    "TradeLongOnly": "Only buy orders are allowed on this symbol.",
    "TradeContextBusy": "The trade context is busy; try again in a moment.",
    "TradeTimeout": "The trade server timed out on this order.",
    "NotEnoughRights": "The manager account of this platform lacks the rights for this.",
    "TooFrequent": "Requests are too frequent; wait a moment and try again.",
    "AccountDisabled": "The account is disabled.",
    "InvalidData": "The platform refused the data as invalid.",
    "NoConnect": "The trade server is unreachable.",
    "TechProblem": "The trade server reported a technical problem.",
}

CODE_MESSAGES: dict[str, str] = {
    "NoConnect": "The platform is unreachable right now; nothing was applied.",
    "ConnectionNotMade": "The platform is unreachable right now; nothing was applied.",
    "CircuitOpen": "The platform is unreachable (too many recent failures); nothing was applied.",
    "Busy": "The platform is busy; the operation was not sent.",
    "Forbidden": "The platform refused: not enough rights for this operation.",
    "NotFound": "Not found on the platform (account, order or symbol).",
    "Validation": "The platform refused the request as invalid.",
    "OutcomeUnknown": "The platform did not confirm in time; checking what happened.",
    "InvalidResponse": "The platform gave an unreadable answer; checking what happened.",
    "TransportError": "The connection dropped after sending; checking what happened.",
    "Internal": "The platform reported an internal error.",
}


def staff_message(exc: ManagerApiError) -> str:
    """One sentence for the dealer; the platform's own text follows for the specialist."""
    manager_code = str(exc.manager_code) if exc.manager_code is not None else ""
    text = MANAGER_CODE_MESSAGES.get(manager_code) or CODE_MESSAGES.get(exc.code)
    if text is None:
        text = "The platform refused the operation."
    detail = exc.message if exc.message and exc.message != exc.code else ""
    return f"{text} ({detail})"[:500] if detail else text
