"""Writes and checks about coverage accounts (audited; the bridge is reached through the
coverage client only)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from platforms import audit
from platforms.coverage import dispatch
from platforms.coverage.client import BridgeApiError, BridgeClient, BridgeConfig
from platforms.coverage.models import CoverageAccount
from platforms.coverage.selectors import coverage_cache_key
from platforms.models import TradePlatform
from platforms.sandbox.process import SandboxInfo
from platforms.transport import RetryPolicy

#: An admin waiting on a button: one quick retry at most, never a long Retry-After.
CHECK_RETRY = RetryPolicy(attempts=2, initial_wait=0.2, max_wait=1.0, total_time=5.0)


def bridge_config(account: CoverageAccount, **overrides) -> BridgeConfig:
    """The client settings of ``account`` (secrets decrypted in memory only)."""
    values: dict[str, Any] = dict(
        base_url=account.bridge_base_url,
        api_key=account.api_key,
        account_id=account.account_id,
        server=account.server,
        login=int(account.login),
        password=account.terminal_password,
        # short and stable: the health page records circuit transitions under this key
        target_id=f"coverage/{account.pk}",
        timeout=10.0,
    )
    values.update(overrides)
    return BridgeConfig(**values)


@dataclass(frozen=True)
class CoverageCheck:
    account: CoverageAccount
    ok: bool
    balance: float | None
    equity: float | None
    currency: str
    rtt_ms: float | None
    error: str
    breaker_state: str

    def summary(self) -> str:
        if not self.ok:
            return f"{self.account.name}: FAILED — {self.error}"
        return (f"{self.account.name}: OK — balance {self.balance:,.2f} {self.currency} "
                f"(equity {self.equity:,.2f}), /account round trip {self.rtt_ms:.0f} ms, "
                f"circuit {self.breaker_state}; session opened and released.")


def check_connection(account: CoverageAccount) -> CoverageCheck:
    """Open a bridge session, read ``/account``, release the session.

    The error text is exactly what the bridge (or the network) said, with no secret in it.
    """
    client = BridgeClient(bridge_config(account), retry=CHECK_RETRY)
    try:
        try:
            client.session()  # opens the session (and proves it answers)
            started = time.perf_counter()
            state = client.account()
            rtt_ms = (time.perf_counter() - started) * 1000
        except BridgeApiError as exc:
            return CoverageCheck(account, False, None, None, "", None, str(exc),
                                 client.breaker_state)
        return CoverageCheck(account, True, state.balance, state.equity, state.currency,
                             rtt_ms, "", client.breaker_state)
    finally:
        client.close()


def record_check(actor: audit.Actor, check: CoverageCheck):
    """The audit trail of a connection check (who ran it, what the bridge said)."""
    return audit.record(
        actor=actor,
        action="coverage.test_connection",
        target=check.account.name,
        after={"balance": check.balance, "currency": check.currency,
               "rtt_ms": None if check.rtt_ms is None else round(check.rtt_ms, 1)}
        if check.ok else {},
        outcome="ok" if check.ok else "failed",
        detail=check.error,
    )


@transaction.atomic
def register_sandbox_coverage_accounts(
    info: SandboxInfo, platforms: list[TradePlatform]
) -> list[CoverageAccount]:
    """Point the five sandbox coverage accounts at a running sandbox's bridge (the demo)."""
    registered = []
    for login in info.bridge_logins:
        account, created = CoverageAccount.objects.update_or_create(
            name=f"Sandbox LP {login}",
            defaults={
                "lp_name": "Sandbox Liquidity",
                "bridge_base_url": info.bridge_url,
                "api_key": info.bridge_api_key,
                "account_id": f"sandbox-{login}",
                "server": info.bridge_server,
                "login": login,
                "terminal_password": info.bridge_password,
                "enabled": True,
            },
        )
        account.covers.set(platforms)
        audit.record(
            actor=audit.Actor.system(),
            action="coverage.create" if created else "coverage.change",
            target=account.name,
            after={"bridge_base_url": info.bridge_url, "server": info.bridge_server,
                   "login": login, "covers": sorted(p.name for p in platforms)},
            detail="registered by the demo",
        )
        registered.append(account)
    return registered


# ---------------------------------------------------------------------------- polling reads

#: A poll feeds a page: one quick retry, never a long wait (the next poll comes soon).
POLL_RETRY = RetryPolicy(attempts=2, initial_wait=0.1, max_wait=0.5, total_time=3.0)
#: How long a polled snapshot stays in the cache (the page shows its age meanwhile).
SNAPSHOT_TTL_SECONDS = 3600


def snapshot_of(state, positions, symbols: dict[str, Any]) -> dict[str, Any]:
    """The cached form of one account's reads (``selectors.coverage_snapshot`` reads it):
    ``/account``, ``/positions`` and the symbols (``{name: record}``), stamped now."""
    return {
        "fetched_at": timezone.now().isoformat(),
        "account": msgspec.to_builtins(state),
        "positions": [msgspec.to_builtins(p) for p in positions.positions],
        "orders": [msgspec.to_builtins(o) for o in positions.orders],
        "symbols": symbols,
        "error": "",
    }


async def arefresh_coverage_account(account_pk: int, client) -> dict[str, Any]:
    """:func:`poll_coverage_account` over an open ``AsyncBridgeClient`` (the stream process,
    after an execution event): ``/account`` and ``/positions`` read now, the symbols kept from
    the last poll (read only when there are none). Errors propagate to the caller."""
    key = coverage_cache_key(account_pk)
    state = await client.account()
    positions = await client.positions()
    previous = await cache.aget(key) or {}
    symbols = previous.get("symbols") or {
        s.symbol: msgspec.to_builtins(s) for s in (await client.symbols()).symbols}
    snapshot = snapshot_of(state, positions, symbols)
    await cache.aset(key, snapshot, SNAPSHOT_TTL_SECONDS)
    return snapshot


def poll_coverage_account(account: CoverageAccount) -> dict[str, Any]:
    """Read ``/account``, ``/positions`` and ``/symbols`` of ``account`` and cache them for the
    net-exposure page (``selectors.coverage_snapshot``). A failed read keeps the previous
    figures (with their time) and records the error beside them."""
    key = coverage_cache_key(account.pk)
    client = BridgeClient(bridge_config(account, timeout=5.0), retry=POLL_RETRY)
    try:
        state = client.account()
        positions = client.positions()
        symbols = client.symbols()
    except BridgeApiError as exc:
        previous = cache.get(key) or {}
        snapshot = {**previous, "error": str(exc)}
        cache.set(key, snapshot, SNAPSHOT_TTL_SECONDS)
        return snapshot
    finally:
        client.close()
    snapshot = snapshot_of(state, positions,
                           {s.symbol: msgspec.to_builtins(s) for s in symbols.symbols})
    cache.set(key, snapshot, SNAPSHOT_TTL_SECONDS)
    return snapshot


def request_coverage_polls(account_pks: list[int]) -> int:
    """Queue a background poll for each of ``account_pks`` unless one was queued in the last
    second (a page polled by many browsers sends one poll, not one per viewer)."""
    sent = 0
    for pk in account_pks:
        if cache.add(f"coverage:poll-queued:{pk}", 1, timeout=1):
            dispatch.poll_coverage(pk)
            sent += 1
    return sent
