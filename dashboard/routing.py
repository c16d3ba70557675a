"""WebSocket routes (live margins and quotes are added by the realtime work)."""

websocket_urlpatterns: list = []
