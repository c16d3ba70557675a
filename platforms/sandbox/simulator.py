"""The sandbox's one simulated world, shared by its listeners: settings, market, the MT4 and MT5
servers, tokens, faults, call counts, the idempotency store and recorded exchanges."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import MT4_PLATFORM_ID, MT5_PLATFORM_ID
from .faults import Faults
from .idempotency import IDEM_PRUNE_AT, IdemEntry, pruned
from .market import Market
from .mt4.platform import MT4Platform
from .mt5.platform import MT5Platform
from .oauth import TokenStore


class Config:
    """The command line's settings (``python -m platforms.sandbox --help``)."""

    def __init__(self, **kw: Any) -> None:
        self.host: str = kw.get("host", "127.0.0.1")
        self.port: int = kw.get("port", 8100)
        self.sidecar_port: int = kw.get("sidecar_port", 8101)
        self.users: int = kw.get("users", 500)
        self.seed: int = kw.get("seed", 1)
        self.tick_rate: float = kw.get("tick_rate", 4.0)
        self.token_lifetime: int = kw.get("token_lifetime", 3600)
        self.client_id: str = kw.get("client_id", "sandbox")
        self.client_secret: str = kw.get("client_secret", "sandbox-secret")
        self.faults: list[dict] = kw.get("faults", [])
        self.record_exchanges: bool = kw.get("record_exchanges", False)
        self.mt5_users: int | None = kw.get("mt5_users")


class Sandbox:
    """Everything shared by both listeners: market, platforms, tokens, faults, stats, caches."""

    def __init__(self, config: Config) -> None:
        self.config = config
        now = time.time()
        anchor = float(int(now // 86400) * 86400)
        self.market = Market(config.seed, anchor)
        self.mt4 = MT4Platform(config.seed, config.users, self.market, now=now)
        mt5_users = (
            config.mt5_users
            if config.mt5_users is not None
            else min(max(config.users // 10, 50), 5000)
        )
        self.mt5 = MT5Platform(config.seed, mt5_users, self.market)
        self.platforms: dict[str, tuple[str, Any]] = {
            MT4_PLATFORM_ID: ("MT4", self.mt4),
            MT5_PLATFORM_ID: ("MT5", self.mt5),
        }
        self.tokens = TokenStore(config.client_id, config.client_secret, config.token_lifetime)
        self.faults = Faults(config.seed)
        for rule in config.faults:
            self.faults.add(rule)
        self.stats: dict[str, list[int]] = {}
        self.idem: dict[str, IdemEntry] = {}
        self.idem_prune_at = IDEM_PRUNE_AT
        self.exchanges: list[dict[str, Any]] = []
        self.exchange_seq = 0
        self.base_url = ""
        self.sidecar_url = ""
        self.sidecar_control: Callable[[bool], Awaitable[None]] | None = None
        self.sidecar_is_up = True
        self.background: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- bookkeeping
    def count(self, name: str, executed: bool = False) -> None:
        row = self.stats.setdefault(name, [0, 0])
        row[1 if executed else 0] += 1

    def stats_dict(self) -> dict[str, Any]:
        return {
            "operations": {
                k: {"received": v[0], "executed": v[1]} for k, v in sorted(self.stats.items())
            },
            "tokensIssued": self.tokens.issued,
        }

    def tick(self, count: int = 1) -> dict[str, Any]:
        closes = 0
        for _ in range(count):
            now = time.time()
            self.market.tick(now)
            closes += self.mt4.sweep(now)
        return {"tick": self.market.tick_no, "stopOutCloses": closes}

    def full_sweep(self) -> int:
        now = time.time()
        closes = 0
        for acc in list(self.mt4.accounts.values()):
            if acc.open:
                closes += self.mt4.check_stopout(acc, now)
        return closes

    def prune_idem(self) -> None:
        """Forget expired idempotent replies once the store has grown past its mark (see
        :func:`.idempotency.pruned`)."""
        self.idem, self.idem_prune_at = pruned(self.idem, self.idem_prune_at)

    # ---------------------------------------------------------------- unversioned endpoints
    def platforms_list(self) -> list[dict[str, Any]]:
        org = {
            "id": "5a1d0b0e-0000-4000-8000-00000000cafe",
            "name": "Sandbox Markets Ltd",
            "created": "2024-01-01T00:00:00Z",
        }
        return [
            {
                "id": MT4_PLATFORM_ID,
                "name": "Sandbox MT4",
                "type": "MT4",
                "login": 1,
                "organizationId": org["id"],
                "organization": org,
                "created": "2024-01-01T00:00:00Z",
            },
            {
                "id": MT5_PLATFORM_ID,
                "name": "Sandbox MT5",
                "type": "MT5",
                "login": 1000,
                "organizationId": org["id"],
                "organization": org,
                "created": "2024-01-01T00:00:00Z",
            },
        ]
