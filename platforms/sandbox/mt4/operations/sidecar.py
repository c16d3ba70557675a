"""MT4 operations of the x86 sidecar: news, mail, server plugins and external commands."""

from __future__ import annotations

import base64
import binascii

from ...registry import Ctx, op
from ...wire import Result, iso, not_found, validation
from .arguments import MT4, platform_of


@op(MT4, "POST", "NewsSend", 15)
def news_send(ctx: Ctx) -> Result:
    body = ctx.json_object()
    if not isinstance(body.get("topic"), str) or not body["topic"]:
        raise validation("'topic' is required")
    platform_of(ctx).news.append({"time": ctx.now, **body})
    return Result(True)


@op(MT4, "POST", "MailSend", 15)
def mail_send(ctx: Ctx) -> Result:
    body = ctx.json_object()
    logins = body.get("logins")
    if not isinstance(logins, list) or not (1 <= len(logins) <= 10000):
        raise validation("'logins' must list 1..10000 logins")
    platform_of(ctx).mails.append(
        {
            "time": iso(int(ctx.now)),
            "senderLogin": int(body.get("senderLogin") or 0),
            "senderName": body.get("senderName") or "",
            "subject": body.get("subject") or "",
            "body": body.get("body") or "",
        }
    )
    return Result(True)


@op(MT4, "GET", "MailsRequest", 30)
def mails_request(ctx: Ctx) -> Result:
    return Result(list(platform_of(ctx).mails))


@op(MT4, "GET", "PluginsGet", 10)
def plugins_get(ctx: Ctx) -> Result:
    return Result([pl["plugin"] for pl in platform_of(ctx).plugins])


@op(MT4, "GET", "PluginParamGet", 10, nargs=(1,))
def plugin_param_get(ctx: Ctx) -> Result:
    pos = ctx.int_arg(0, "pos")
    plugins = platform_of(ctx).plugins
    if not 0 <= pos < len(plugins):
        raise not_found(f"No plugin at position {pos}")
    return Result(plugins[pos])


@op(MT4, "GET", "CfgRequestPlugin", 10)
def cfg_request_plugin(ctx: Ctx) -> Result:
    return Result(list(platform_of(ctx).plugins))


def _plugin_update(ctx: Ctx) -> Result:
    body = ctx.json_object()
    plugin = body.get("plugin")
    if not isinstance(plugin, dict) or not plugin.get("file"):
        raise validation("'plugin.file' is required")
    for pl in platform_of(ctx).plugins:
        if pl["plugin"]["file"] == plugin["file"]:
            pl["plugin"].update({k: v for k, v in plugin.items() if k in pl["plugin"]})
            if isinstance(body.get("params"), list):
                pl["params"] = [
                    {"name": str(x.get("name", "")), "value": str(x.get("value", ""))}
                    for x in body["params"]
                    if isinstance(x, dict)
                ]
            return Result(True)
    raise not_found(f"Plugin '{plugin['file']}' not found")


@op(MT4, "POST", "PluginUpdate", 15)
def plugin_update(ctx: Ctx) -> Result:
    return _plugin_update(ctx)


@op(MT4, "POST", "CfgUpdatePlugin", 15)
def cfg_update_plugin(ctx: Ctx) -> Result:
    return _plugin_update(ctx)


@op(MT4, "POST", "ExternalCommandBinary", 60)
def external_command_binary(ctx: Ctx) -> Result:
    body = ctx.json_object()
    data = body.get("data")
    if not isinstance(data, str):
        raise validation("'data' must be base64 bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise validation("'data' is not valid base64") from None
    # The sandbox's "plugin" echoes the bytes reversed so a round trip is observable.
    return Result({"data": base64.b64encode(raw[::-1]).decode()})
