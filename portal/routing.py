"""Websocket routes of every app, served by Channels."""

from typing import Any

from chat.routing import websocket_urlpatterns as chat_websockets

websocket_urlpatterns: list[Any] = [*chat_websockets]
