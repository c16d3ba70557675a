"""Operation registry: name, method, platform family, default deadline, sidecar flag, handler."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from .wire import Result, decode, validation


class Ctx:
    """What a handler sees: the platform, path args, query, body and the request time."""

    __slots__ = ("args", "body", "now", "platform", "query", "sandbox")

    def __init__(
        self, platform: Any, args: list[str], query: Any, body: bytes, sandbox: Any
    ) -> None:
        self.platform = platform
        self.args = args
        self.query = query
        self.body = body
        self.now = time.time()
        self.sandbox = sandbox

    def json(self) -> Any:
        if not self.body or not self.body.strip():
            raise validation("A JSON request body is required")
        try:
            return decode(self.body)
        except msgspec.DecodeError as exc:
            raise validation(f"Malformed JSON body: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        obj = self.json()
        if not isinstance(obj, dict):
            raise validation("The request body must be a JSON object")
        return obj

    def q(self, name: str) -> str | None:
        return self.query.get(name)

    def qlist(self, name: str) -> list[str]:
        return self.query.getlist(name)

    def int_arg(self, i: int, name: str) -> int:
        try:
            return int(self.args[i])
        except (ValueError, IndexError):
            raise validation(f"'{name}' must be an integer") from None


Handler = Callable[[Ctx], Result]


@dataclass(frozen=True)
class Op:
    name: str
    family: str  # MT4 | MT5
    method: str
    nargs: tuple[int, ...]
    timeout: float
    write: bool
    sidecar: bool
    handler: Handler


REGISTRY: dict[tuple[str, str, str], Op] = {}

SIDECAR_OPS = frozenset(
    {
        "UsersSnapshot",
        "UsersSyncRead",
        "TradesSnapshot",
        "TradesSyncRead",
        "NewsSend",
        "MailSend",
        "MailsRequest",
        "PluginsGet",
        "PluginParamGet",
        "PluginUpdate",
        "CfgRequestPlugin",
        "CfgUpdatePlugin",
        "ExternalCommandBinary",
    }
)


def op(
    family: str,
    method: str,
    name: str,
    timeout: float,
    *,
    nargs: tuple[int, ...] = (0,),
    write: bool | None = None,
) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        is_write = method in ("POST", "PATCH", "PUT", "DELETE") if write is None else write
        REGISTRY[(family, method, name)] = Op(
            name,
            family,
            method,
            nargs,
            timeout,
            is_write,
            family == "MT4" and name in SIDECAR_OPS,
            fn,
        )
        return fn

    return deco


def find(family: str, method: str, name: str) -> Op | None:
    return REGISTRY.get((family, method, name))


def known_action(family: str, name: str) -> bool:
    return any(k[0] == family and k[2] == name for k in REGISTRY)
