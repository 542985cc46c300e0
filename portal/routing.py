"""Websocket routes of every app, served by Channels."""

from typing import Any

websocket_urlpatterns: list[Any] = []
