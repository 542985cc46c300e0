"""Live updates: what the sync and the composer changed, to every open tab of each member concerned.

One channel-layer group per portal user (`chat-user-<tenant user id>`); the websocket consumer
joins it. Events carry what the page needs to redraw (messages already rendered safe), so the
browser asks nothing back; after a reconnect it catches up over HTTP.

Messages are drawn in words of the reader's language (system events, notes for what is not
shown): a worker does not know which that is, so a messages event carries them drawn in the
portal's default language and, under `translated`, in each other language that draws them
differently. The socket hands its reader the ones of his language (`for_reader`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import translation

from chat import selectors
from chat.models import Chat, ChatMember, ChatSyncState, Message
from chat.render import for_viewer, shared_payload
from tenants.models import TenantUser

log = logging.getLogger(__name__)


def group_name(member_id: int) -> str:
    return f"chat-user-{member_id}"


def _portal_members(chat: Chat) -> list[tuple[int, str]]:
    """(tenant user id, oid) of the chat's members who use the portal."""
    oids = ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat).values("oid")
    return [
        (pk, str(oid))
        for pk, oid in TenantUser.objects.filter(tenant_id=chat.tenant_id, oid__in=oids).values_list("pk", "oid")
    ]


async def send_events(events: list[tuple[int, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for member_id, event in events:
        await layer.group_send(group_name(member_id), {"type": "chat.event", "event": event})


def _send(events: list[tuple[int, dict[str, Any]]]) -> None:
    """Best effort: a page that misses an event catches up when it reconnects or reloads."""
    if not events:
        return
    try:
        async_to_sync(send_events)(events)
    except Exception:  # the channel layer (Redis) is down: the mirror is right, pages catch up
        log.warning("live update of %d events not delivered", len(events), exc_info=True)


def _chat_event(chat: Chat) -> dict[str, Any]:
    """'This chat changed' (new, renamed, new activity): the list reloads."""
    return {"type": "chat", "chat": chat.pk}


def publish_messages(chat: Chat, messages: Iterable[Message]) -> None:
    """New or changed messages of a chat (and the chat itself) to its members' pages."""
    rows = list(messages)
    names = selectors.message_names(chat=chat, messages=rows)
    # Rendered (sanitized) once per language; what is the viewer's own (his message, his
    # reactions) per viewer.
    drawn: dict[str, list[dict[str, Any]]] = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            drawn[code] = [shared_payload(m, names=names) for m in rows]
    default = drawn.pop(settings.LANGUAGE_CODE)
    drawn = {code: payloads for code, payloads in drawn.items() if payloads != default}
    events = []
    for member_id, oid in _portal_members(chat):
        if rows:
            event: dict[str, Any] = {"type": "messages", "chat": chat.pk, "messages": _seen(rows, default, oid)}
            if drawn:
                event["translated"] = {code: _seen(rows, payloads, oid) for code, payloads in drawn.items()}
            events.append((member_id, event))
        events.append((member_id, _chat_event(chat)))
    _send(events)


def _seen(rows: list[Message], payloads: list[dict[str, Any]], oid: str) -> list[dict[str, Any]]:
    return [for_viewer(m, payload, me=oid) for m, payload in zip(rows, payloads, strict=True)]


def for_reader(event: dict[str, Any], language: str) -> dict[str, Any]:
    """The event as a reader of `language` gets it: the messages drawn in his language."""
    translated = event.get("translated")
    if translated is None:
        return event
    mine = {key: value for key, value in event.items() if key != "translated"}
    if language in translated:
        mine["messages"] = translated[language]
    return mine


def publish_chats(chats: Iterable[Chat]) -> None:
    _send([(member_id, _chat_event(chat)) for chat in chats for member_id, _ in _portal_members(chat)])


def publish_list(member: TenantUser) -> None:
    """The member's chat list as a whole changed (a sync listed his chats)."""
    _send([(member.pk, {"type": "chat", "chat": None})])


def progress_event(state: ChatSyncState) -> tuple[int, dict[str, Any]]:
    return (
        state.member_id,
        {
            "type": "sync",
            "status": state.status,
            "chats_done": state.chats_done,
            "chats_total": state.chats_total,
            "messages": state.messages_synced,
            "reason": state.stopped_reason,
        },
    )


def publish_progress(state: ChatSyncState) -> None:
    _send([progress_event(state)])
