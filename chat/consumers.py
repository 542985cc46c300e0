"""The chat websocket: the signed-in member's live events (messages, chat changes, sync progress).

The member comes from the session (Channels' AuthMiddlewareStack), never from the socket. A
thread page opens `ws/chat/<id>/`, which is refused (4404) for a chat that is not the member's,
exactly as the HTTP views answer 404; both paths deliver every event of the member.

Events come in the reader's language, found as for his pages (the language cookie, else the
browser's Accept-Language), at connect: a page reloads when its reader changes language.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404, HttpRequest
from django.utils import translation

from chat import selectors
from chat.live import for_reader, group_name
from tenants import selectors as tenant_selectors
from tenants.models import CustomerTenant, TenantUser

NOT_SIGNED_IN = 4401
NOT_ALLOWED = 4403
NOT_FOUND = 4404


def _member_and_chat(user: Any, chat_id: int | None) -> tuple[TenantUser | None, int]:
    """The member (or None) and the close code to use when there is none."""
    if not user.is_authenticated:
        return None, NOT_SIGNED_IN
    member = tenant_selectors.access_member(user=user)
    if member is None or member.tenant.status != CustomerTenant.Status.ACTIVE:
        return None, NOT_ALLOWED
    if chat_id is not None:
        try:
            selectors.access_chat(member=member, chat_id=chat_id)
        except Http404:
            return None, NOT_FOUND
    return member, 0


def reader_language(scope: dict[str, Any]) -> str:
    """The language the socket's pages are in: Django's choice for a request with its cookies and headers."""
    request = HttpRequest()
    request.COOKIES = dict(scope.get("cookies") or {})
    for name, value in scope.get("headers") or []:
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)


class ChatConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    group: str | None = None
    language: str = ""

    async def connect(self) -> None:
        chat_id = self.scope["url_route"]["kwargs"].get("chat_id")
        member, refusal = await database_sync_to_async(_member_and_chat)(self.scope.get("user"), chat_id)
        if member is None:
            # Accepted first: a close before the handshake reaches the browser as a bare
            # failure (1006), and the page could not tell "sign in again" from a lost network.
            await self.accept()
            await self.close(code=refusal)
            return
        self.group = group_name(member.pk)
        self.language = reader_language(self.scope)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The page only listens; a ping keeps proxies from closing an idle socket.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def chat_event(self, message: dict[str, Any]) -> None:
        await self.send_json(for_reader(message["event"], self.language))
