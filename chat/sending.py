"""What a user does through Graph from the browser, as himself: send a message, start a chat.

Both run in the web request (the user waits for Graph's answer, a second or so) and land in the
mirror at once, so the sender's other tabs and the other members see them without waiting for a
sync. Sending shares Graph's chat-message limits with the sync (the same Redis buckets); when
Graph or the buckets say "wait", the browser is told how long and keeps the text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from django.db import transaction

from chat import live, services, sync, tasks
from chat.models import Chat, Message
from chat.render import html_from_text
from core import coordination
from integrations import graph
from tenants.models import TenantUser

log = logging.getLogger(__name__)
T = TypeVar("T")
SEND_MAX_WAIT_SECONDS = 3.0
# A send in progress is remembered this long (longer than one can take); a sent one, a day.
SEND_PENDING_SECONDS = 120
SEND_MEMORY_SECONDS = 86400
SENDING = "sending"


class ActionFailed(Exception):
    """Graph did not do it; `status` and `reason` for the browser, `retry_after` when waiting helps."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


STOPPED_MESSAGES = {
    "consent_revoked": "Your organization's consent was revoked. An administrator must grant it again.",
    "sign_in_again": "Your Microsoft sign-in has expired. Sign in again to send.",
}


def _as_user(member: TenantUser, call: Callable[[graph.GraphSession], Awaitable[T]]) -> T:
    """Run one Graph call with the member's own token; Graph's and Entra's refusals made plain."""
    try:
        token = sync.member_token(member)
    except sync.SyncStopped as exc:
        status = 403 if str(exc) == "consent_revoked" else 401
        raise ActionFailed(status, str(exc), STOPPED_MESSAGES.get(str(exc), "Sign in again.")) from exc
    except sync.SyncDeferred as exc:
        raise ActionFailed(503, exc.reason, "Microsoft sign-in is not answering. Try again.", exc.countdown) from exc
    try:
        return graph.run_with_session(token, call)
    except graph.GraphError as exc:
        raise _failure(exc) from exc


def _failure(exc: graph.GraphError) -> ActionFailed:
    if exc.throttled:
        wait = sync.backoff(1, exc.retry_after)
        return ActionFailed(429, "graph_throttled", "Teams is busy. Sending again shortly.", wait)
    if exc.transient:
        return ActionFailed(
            503,
            "graph_unavailable",
            "Teams did not answer. If the message reached Teams it appears here shortly; if not, retry.",
            exc.retry_after,
        )
    if exc.status == 413:
        return ActionFailed(413, "too_long", "This message is too long for Teams.")
    if exc.status in (403, 404):
        return ActionFailed(403, "not_in_chat", "You are no longer a member of this chat.")
    log.warning("Graph refused a user action: %s %s", exc.status, exc.code)
    return ActionFailed(400, "refused", f"Teams refused it: {exc.message or exc.code}")


def _not_connected() -> ActionFailed:
    # Disconnected while Teams did it: it is in Teams, and the portal keeps nothing of it.
    return ActionFailed(403, "tenant_not_active", "Your organization is no longer connected to the portal.")


def _send_slot(member: TenantUser, chat: Chat) -> None:
    """Wait for our turn under Graph's chat-message limits (shared with the sync), or say how long."""
    try:
        time.sleep(sync.graph_slot(member.tenant, chat, max_wait=SEND_MAX_WAIT_SECONDS))
    except sync.SyncDeferred as exc:
        raise ActionFailed(429, "busy", "Teams is busy. Sending again shortly.", exc.countdown) from exc


def _send_key(member: TenantUser, client_id: str) -> str:
    return f"chat-send:{member.pk}:{client_id}"


def message_send(*, member: TenantUser, chat: Chat, text: str, client_id: str) -> Message:
    """Send `text` to the chat as the member; the message is mirrored and shown live.

    `client_id` names this message in the browser, the same on every try: a try after one
    that reached Teams answers that message instead of posting it again.
    """
    key = _send_key(member, client_id)
    if not coordination.put_new(key, SENDING, seconds=SEND_PENDING_SECONDS):
        return _already_sent(chat, coordination.get(key))
    try:
        message = _send(member, chat, text)
    except ActionFailed as exc:
        coordination.forget([key])  # not in Teams (or unknown, and said so): a retry may post it
        if exc.reason == "graph_unavailable":
            # Teams may have stored it all the same: a sync of the chat shows it if so.
            transaction.on_commit(partial(tasks.sync_chats.delay, member.pk, [chat.graph_id]))
        raise
    coordination.put(key, message.graph_id, seconds=SEND_MEMORY_SECONDS)
    return message


def _already_sent(chat: Chat, known: str | None) -> Message:
    if known and known != SENDING:
        message = Message.objects.filter(tenant_id=chat.tenant_id, chat=chat, graph_id=known).first()
        if message is not None:
            return message
    raise ActionFailed(409, "in_progress", "Still sending…", retry_after=2)


def _send(member: TenantUser, chat: Chat, text: str) -> Message:
    html = html_from_text(text)
    for attempt in range(2):
        _send_slot(member, chat)
        try:
            item: dict[str, Any] = _as_user(member, lambda g: g.send_message(chat.graph_id, html))
            break
        except ActionFailed as exc:
            # One short wait here (the buckets reserve a turn, Graph counts arrivals); longer
            # ones go back to the browser, which keeps the text and sends again.
            short = exc.retry_after is not None and exc.retry_after <= SEND_MAX_WAIT_SECONDS
            if exc.status != 429 or not short or attempt:
                raise
            time.sleep(exc.retry_after or 0)
    try:
        services.messages_upsert(chat=chat, items=[item])
    except services.TenantGone:
        raise _not_connected() from None
    message = Message.objects.get(tenant_id=chat.tenant_id, chat=chat, graph_id=item["id"])
    live.publish_messages(chat, [message])
    return message


def chat_create(*, member: TenantUser, oids: list[str], topic: str = "") -> Chat:
    """A chat with these people (of the member's tenant), created in Teams; a one-on-one may exist already."""

    async def create(session: graph.GraphSession) -> dict[str, Any]:
        created = await session.create_chat(creator=str(member.oid), members=oids, topic=topic)
        members = await session.members_page(created["id"])
        return {**created, "members": members.get("value", [])}

    item = _as_user(member, create)
    try:
        chat = services.chats_upsert(member=member, items=[item], complete=False)[item["id"]]
    except services.TenantGone:
        raise _not_connected() from None
    live.publish_chats([chat])
    return chat
