"""Hedge orders on a coverage account: exactly once under lost answers and bridge errors.

Every attempt of one hedge carries the same ``x-request-id`` and the same body, so a resend is
an idempotent replay by the wire's contract (the same task, its current state; a different
body would be a 409, which this module never causes). What may be resent:

* a lost answer (``WriteOutcomeUnknown``, a transport error): the write may have run; the
  replay returns the task it created, or creates it if it never arrived;
* ``502 BridgeUnavailable``, ``429``, no connection, an open circuit: answered before anything
  ran ("a request answered with an error was not executed");

never a ``400``/``404``/``409``: those are final. A submission is a *queued* task; the outcome
(``executed`` with ticket and fill price, or ``rejected``) is learnt from the account's
``/events`` (``order`` channel: the stream process records each execution with
:func:`record_execution`, see ``platforms.coverage.events``) or, failing that, by replaying the
same request (the bridge has no task-status call), and cross-checked on ``GET /positions`` by
task id. A recorded execution ends the hedge without another send. The trading domain's task
state machine calls :func:`run_hedge` (see docs/coverage.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.core.cache import cache

from platforms.coverage import dispatch
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
from platforms.coverage.models import CoverageAccount
from platforms.coverage.services import bridge_config

log = logging.getLogger(__name__)

#: Errors after which the same request may be sent again (nothing ran, or the replay is safe).
RESENDABLE = (WriteOutcomeUnknown, TransportError, ConnectionNotMade, BridgeUnavailable,
              RateLimited, CircuitOpen)
#: Read timeout of one hedge request: past it the answer counts as lost (and is replayed).
HEDGE_TIMEOUT_S = 10.0
#: How long one execution of the trading task keeps replaying before it leaves the hedge
#: ``outcome_unknown`` (reconciled later, by the same replay or by an ``/events`` execution).
HEDGE_DEADLINE_S = 10.0
#: How long an execution event is kept for reconciling (the trading domain gives up far sooner).
EXECUTION_TTL_S = 24 * 3600
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
    #: where the final state came from: ``bridge`` (an answer) or ``events`` (an execution
    #: event recorded by the stream process)
    via: str = "bridge"

    @property
    def status(self) -> str:
        return self.task.status if self.task else "unknown"

    @property
    def final(self) -> bool:
        return self.status in FINAL


def _send_once(client: BridgeClient, hedge: HedgeRequest, request_id: str) -> Task:
    if hedge.action == "open":
        # Our sides are lower case (forms, stored tasks); the bridge's wire spells them "BUY".
        return client.submit_order(hedge.symbol, hedge.side.upper(), float(hedge.volume or 0),
                                   sl=hedge.sl, tp=hedge.tp, comment=hedge.comment,
                                   price=hedge.price, request_id=request_id)
    if hedge.action == "modify":
        changes = {k: v for k, v in (("volume", hedge.volume), ("sl", hedge.sl),
                                     ("tp", hedge.tp), ("price", hedge.price)) if v}
        return client.modify_order(hedge.bridge_task_id, request_id=request_id, **changes)
    return client.close_position(int(hedge.ticket or 0), hedge.volume, request_id=request_id)


# ---------------------------------------------------------------------------- /events outcomes


def _execution_keys(account_pk: int, task_id: str, request_id: str | None) -> list[str]:
    keys = [f"coverage:execution:{account_pk}:task:{task_id}"] if task_id else []
    if request_id:
        keys.append(f"coverage:execution:{account_pk}:request:{request_id}")
    return keys


def record_execution(account_pk: int, task: Task) -> list[str]:
    """Keep an ``order`` execution event of ``account_pk`` (executed or rejected) for
    :func:`recorded_outcome`, by bridge task id and by request id. Returns the keys written."""
    if task.status not in FINAL:
        return []
    keys = _execution_keys(account_pk, task.task_id, task.request_id)
    value = msgspec.to_builtins(task)
    cache.set_many(dict.fromkeys(keys, value), EXECUTION_TTL_S)
    return keys


def recorded_outcome(account_pk: int, hedge: HedgeRequest, request_id: str) -> Task | None:
    """The final state of this hedge as an ``/events`` execution told it, or None.

    An open or a close is its own bridge task, found by its request id. A modify changes
    another task (``bridge_task_id``), whose execution says the modification happened only if
    it carries the modified values; otherwise (the modify may never have arrived) only the
    replay can tell, and None is returned."""
    if hedge.action == "modify":
        raw = cache.get(_execution_keys(account_pk, hedge.bridge_task_id, None)[0])
    else:
        raw = cache.get(_execution_keys(account_pk, "", request_id)[0])
    if raw is None:
        return None
    task = msgspec.convert(raw, Task)
    if hedge.action == "modify":
        wanted = {"volume": hedge.volume, "sl": hedge.sl or None, "tp": hedge.tp or None,
                  "price": hedge.price}
        if task.status != "executed" or any(
                value is not None and abs(float(getattr(task, name) or 0) - value) > 1e-9
                for name, value in wanted.items()):
            return None
    return task


def send_hedge(client: BridgeClient, hedge: HedgeRequest, request_id: str, *,
               deadline_s: float = 15.0, pause_s: float = 0.1,
               known: Callable[[], Task | None] | None = None) -> HedgeOutcome:
    """Send ``hedge`` under ``request_id`` until the bridge names its final state, resending
    only what :data:`RESENDABLE` allows, always with the same id and body; stop at
    ``deadline_s`` (the outcome then says ``queued`` or ``unknown``: reconcile later with the
    same call, never with a new id). ``known`` is asked between sends: a final state learnt
    meanwhile from ``/events`` ends the loop without another send."""
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
        learnt = known() if known is not None else None
        if learnt is not None:
            outcome.task, outcome.via, outcome.error = learnt, "events", ""
            return outcome


def run_hedge(payload: dict[str, Any], request_id: str, *,
              deadline_s: float | None = None) -> HedgeOutcome:
    """The trading worker's entry point: the hedge of a trade task's ``payload`` (with
    ``coverage_account``, the account's pk) sent under ``request_id`` — unless an ``/events``
    execution already told its outcome (then nothing is sent: ``sends`` 0, ``via``
    ``events``). After a final outcome a poll of the account is queued on the ``reporting``
    queue so the exposure page follows."""
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
    known = recorded_outcome(account.pk, hedge, request_id)
    if known is not None:
        outcome = HedgeOutcome(known, 0, via="events")
    else:
        with BridgeClient(bridge_config(account, timeout=HEDGE_TIMEOUT_S)) as client:
            outcome = send_hedge(
                client, hedge, request_id,
                deadline_s=HEDGE_DEADLINE_S if deadline_s is None else deadline_s,
                known=lambda: recorded_outcome(account.pk, hedge, request_id))
    if outcome.final:
        try:
            dispatch.poll_coverage(account.pk)
        except Exception:  # the page's own staleness check queues a poll later anyway
            log.warning("could not queue a poll of coverage account %s", account.pk,
                        exc_info=True)
    return outcome
