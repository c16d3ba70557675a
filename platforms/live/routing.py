"""WebSocket routes of the platforms app."""

from django.urls import path

from platforms.live.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
