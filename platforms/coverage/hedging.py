"""Hedge orders on a coverage account: exactly once under lost answers and bridge errors.

Every attempt of one hedge carries the same ``x-request-id`` and the same body, so a resend is
an idempotent replay by the wire's contract (the same task, its current state; a different
body would be a 409, which this module never causes). What may be resent:

* a lost answer (``WriteOutcomeUnknown``, a transport error): the write may have run; the
  replay returns the task it created, or creates it if it never arrived;
* ``502 BridgeUnavailable``, ``429``, no connection, an open circuit: answered before anything
  ran ("a request answered with an error was not executed");

never a ``400``/``404``/``409``: those are final. A submission is a *queued* task; the outcome
(``executed`` with ticket and fill price, or ``rejected``) is learnt by replaying the same
request (the bridge has no task-status call), and cross-checked on ``GET /positions`` by task
id. The trading domain's task state machine is meant to call :func:`send_hedge` (see
docs/coverage.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from platforms.coverage.client import (
    BridgeApiError,
    BridgeClient,
    BridgeUnavailable,
    CircuitOpen,
    ConnectionNotMade,
    RateLimited,
    Task,
    TransportError,
    WriteOutcomeUnknown,
)

log = logging.getLogger(__name__)

#: Errors after which the same request may be sent again (nothing ran, or the replay is safe).
RESENDABLE = (WriteOutcomeUnknown, TransportError, ConnectionNotMade, BridgeUnavailable,
              RateLimited, CircuitOpen)
#: Read timeout of one hedge request: past it the answer counts as lost (and is replayed).
HEDGE_TIMEOUT_S = 10.0
ACTIONS = ("open", "modify", "close")
SIDES = ("buy", "sell", "buy_limit", "sell_limit", "buy_stop", "sell_stop")
FINAL = ("executed", "rejected")


class HedgeInvalid(ValueError):
    """The hedge request itself is wrong (a form error, never sent)."""


@dataclass(frozen=True)
class HedgeRequest:
    """One hedge write: ``open`` (symbol, side, volume[, price, sl, tp]), ``modify`` a queued
    bridge task (``bridge_task_id`` + changes) or ``close`` a position (``ticket``[, volume])."""

    action: str
    symbol: str = ""
    side: str = ""
    volume: float | None = None
    price: float | None = None
    sl: float = 0.0
    tp: float = 0.0
    ticket: int | None = None
    bridge_task_id: str = ""
    comment: str = ""

    def validate(self) -> HedgeRequest:
        if self.action not in ACTIONS:
            raise HedgeInvalid(f"action must be one of {', '.join(ACTIONS)}")
        if self.volume is not None and not (0 < self.volume <= 100):
            raise HedgeInvalid("volume must be between 0.01 and 100 lots")
        if self.action == "open":
            if not self.symbol or self.side not in SIDES or self.volume is None:
                raise HedgeInvalid("an open needs a symbol, a side and a volume")
            if self.side in ("buy", "sell") and self.price is not None:
                raise HedgeInvalid("a market order takes no price")
            if self.side not in ("buy", "sell") and not self.price:
                raise HedgeInvalid("a pending order needs a price")
        if self.action == "modify" and not self.bridge_task_id:
            raise HedgeInvalid("a modify needs the bridge task id")
        if self.action == "close" and not self.ticket:
            raise HedgeInvalid("a close needs the position's ticket")
        return self

    def as_payload(self) -> dict[str, Any]:
        """JSON-safe form (a trade task's payload)."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> HedgeRequest:
        known = {k: payload[k] for k in cls.__dataclass_fields__ if k in payload}
        return cls(**known).validate()


@dataclass
class HedgeOutcome:
    """What the bridge says about one hedge: the task (``queued`` / ``executed`` /
    ``rejected``), how many sends it took, and why it stopped if it is not final."""

    task: Task | None
    sends: int
    error: str = ""
    errors: list[str] = field(default_factory=list)
    #: stopped by a final refusal (400/401/404/409, or no such coverage account): nothing ran
    refused: bool = False

    @property
    def status(self) -> str:
        return self.task.status if self.task else "unknown"

    @property
    def final(self) -> bool:
        return self.status in FINAL


def _send_once(client: BridgeClient, hedge: HedgeRequest, request_id: str) -> Task:
    if hedge.action == "open":
        return client.submit_order(hedge.symbol, hedge.side, float(hedge.volume or 0),
                                   sl=hedge.sl, tp=hedge.tp, comment=hedge.comment,
                                   price=hedge.price, request_id=request_id)
    if hedge.action == "modify":
        changes = {k: v for k, v in (("volume", hedge.volume), ("sl", hedge.sl),
                                     ("tp", hedge.tp), ("price", hedge.price)) if v}
        return client.modify_order(hedge.bridge_task_id, request_id=request_id, **changes)
    return client.close_position(int(hedge.ticket or 0), hedge.volume, request_id=request_id)


def send_hedge(client: BridgeClient, hedge: HedgeRequest, request_id: str, *,
               deadline_s: float = 15.0, pause_s: float = 0.1) -> HedgeOutcome:
    """Send ``hedge`` under ``request_id`` until the bridge names its final state, resending
    only what :data:`RESENDABLE` allows, always with the same id and body; stop at
    ``deadline_s`` (the outcome then says ``queued`` or ``unknown``: reconcile later with the
    same call, never with a new id)."""
    hedge.validate()
    deadline = time.monotonic() + deadline_s
    outcome = HedgeOutcome(task=None, sends=0)
    while True:
        outcome.sends += 1
        try:
            outcome.task = _send_once(client, hedge, request_id)
            outcome.error = ""
        except RESENDABLE as exc:
            outcome.error = str(exc)
            outcome.errors.append(type(exc).__name__)
        except BridgeApiError as exc:  # 400/401/404/409: final, nothing ran
            outcome.error = str(exc)
            outcome.errors.append(type(exc).__name__)
            outcome.refused = True
            return outcome
        if outcome.final or time.monotonic() > deadline:
            return outcome
        time.sleep(pause_s)


def run_hedge(payload: dict[str, Any], request_id: str, *,
              deadline_s: float = 10.0) -> HedgeOutcome:
    """The trading worker's entry point: the hedge of a trade task's ``payload`` (with
    ``coverage_account``, the account's pk) sent under ``request_id``. After a final outcome a
    poll of the account is queued on the ``reporting`` queue so the exposure page follows."""
    from platforms.coverage.models import CoverageAccount
    from platforms.coverage.services import bridge_config
    from platforms.coverage.tasks import poll_coverage

    account_pk = payload.get("coverage_account")
    account = (CoverageAccount.objects.filter(pk=account_pk, enabled=True).first()
               if isinstance(account_pk, int) else None)
    if account is None:
        return HedgeOutcome(None, 0, error="The coverage account is gone or disabled.",
                            errors=["NotFound"], refused=True)
    try:
        hedge = HedgeRequest.from_payload(payload)
    except (HedgeInvalid, TypeError) as exc:
        return HedgeOutcome(None, 0, error=str(exc), errors=["ValidationError"], refused=True)
    with BridgeClient(bridge_config(account, timeout=HEDGE_TIMEOUT_S)) as client:
        outcome = send_hedge(client, hedge, request_id, deadline_s=deadline_s)
    if outcome.final:
        try:
            poll_coverage.delay(account.pk)
        except Exception:  # the page's own staleness check queues a poll later anyway
            log.warning("could not queue a poll of coverage account %s", account.pk,
                        exc_info=True)
    return outcome
