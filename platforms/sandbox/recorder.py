"""ASGI middleware that keeps every request/response pair of the API for
``GET /_sandbox/exchanges`` (``--record-exchanges``): the conformance tests judge them."""

from __future__ import annotations

from typing import Any

from .simulator import Sandbox


class Recorder:
    """ASGI middleware keeping request/response pairs (/api, /connect, /.well-known)."""

    PREFIXES = ("/api/", "/connect/", "/.well-known/")

    def __init__(self, app: Any, sandbox: Sandbox, port: str) -> None:
        self.app = app
        self.sandbox = sandbox
        self.port = port

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not self.sandbox.config.record_exchanges
            or not scope["path"].startswith(self.PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        req_body = bytearray()
        resp: dict[str, Any] = {"status": 0, "headers": [], "body": bytearray()}

        async def rx() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                req_body.extend(message.get("body", b""))
            return message

        async def tx(message: dict) -> None:
            if message["type"] == "http.response.start":
                resp["status"] = message["status"]
                resp["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                resp["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, rx, tx)
        finally:
            sb = self.sandbox
            sb.exchange_seq += 1
            sb.exchanges.append(
                {
                    "seq": sb.exchange_seq,
                    "port": self.port,
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "requestHeaders": {
                        k.decode("latin-1"): v.decode("latin-1")
                        for k, v in scope.get("headers", [])
                    },
                    "requestBody": bytes(req_body).decode("utf-8", "replace"),
                    "status": resp["status"],
                    "responseHeaders": {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in resp["headers"]
                    },
                    "responseBody": bytes(resp["body"]).decode("utf-8", "replace"),
                }
            )
