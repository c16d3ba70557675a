"""What every MT4 operation reads from its call: the platform and the path's login or group."""

from __future__ import annotations

from ...registry import Ctx
from ...wire import validation
from ..platform import MT4Platform

MT4 = "MT4"
MAX_GROUP_NAME = 16  # MT4 ConGroup.group is char[16]


def platform_of(ctx: Ctx) -> MT4Platform:
    return ctx.platform


def group_name_arg(ctx: Ctx, i: int) -> str:
    name = ctx.args[i]
    if not name or len(name) > MAX_GROUP_NAME:
        raise validation(f"'group' must be 1-{MAX_GROUP_NAME} characters, got {name!r}")
    return name


def login_arg(ctx: Ctx, i: int = 0) -> int:
    login = ctx.int_arg(i, "login")
    if login < 1:
        raise validation("'login' must be a positive integer")
    return login
