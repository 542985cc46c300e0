"""The chat websocket: one per open page, delivering the user's live events."""

from typing import Any

from django.urls import path

from chat.consumers import ChatConsumer

SOCKET_PATH = "/ws/chat/"

websocket_urlpatterns: list[Any] = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    path("ws/chat/<int:chat_id>/", ChatConsumer.as_asgi()),
]
