"""WebSocket routes (live margins and quotes are added by the realtime work)."""

from platforms.live.routing import websocket_urlpatterns as platform_websockets

websocket_urlpatterns: list = [*platform_websockets]
