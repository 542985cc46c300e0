"""What a user does through Graph from the browser, as himself: send, edit, delete, restore and
react to messages, start a chat.

All run in the web request (the user waits for Graph's answer, a second or so) and land in the
mirror at once, so the sender's other tabs and the other members see them without waiting for a
sync. Sending shares Graph's chat-message limits with the sync (the same Redis windows); when
Graph or our turn says "wait", the browser is told how long and keeps the text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chat import live, services, sync, tasks
from chat.models import Chat, Message
from chat.render import body_edited, html_with_mentions
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
# Teams' own six reactions: the ones its clients show everywhere.
REACTIONS = ("👍", "❤️", "😆", "😮", "😢", "😡")


class ActionFailed(Exception):
    """Graph did not do it; `status` and `reason` for the browser, `retry_after` when waiting helps."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


STOPPED_MESSAGES = {
    "consent_revoked": gettext_lazy("Your organization's consent was revoked. An administrator must grant it again."),
    "sign_in_again": gettext_lazy("Your Microsoft sign-in has expired. Sign in again to send."),
}


def _as_user(member: TenantUser, call: Callable[[graph.GraphSession], Awaitable[T]], *, also: str | None = None) -> T:
    """Run one Graph call with the member's own token (holding `also` too, when given); Graph's
    and Entra's refusals made plain."""
    try:
        token = sync.member_token(member, also=also)
    except sync.PermissionMissing as exc:
        permission = str(exc).rsplit("/", 1)[-1]
        raise ActionFailed(403, "permission_missing", PERMISSION_MISSING.format(permission=permission)) from exc
    except sync.SyncStopped as exc:
        status = 403 if str(exc) == "consent_revoked" else 401
        raise ActionFailed(status, str(exc), str(STOPPED_MESSAGES.get(str(exc), _("Sign in again.")))) from exc
    except sync.SyncDeferred as exc:
        raise ActionFailed(503, exc.reason, _("Microsoft sign-in is not answering. Try again."), exc.countdown) from exc
    try:
        return graph.run_with_session(token, call)
    except graph.GraphError as exc:
        raise _failure(exc) from exc


PERMISSION_UNKNOWN = gettext_lazy(
    "Your organization has not allowed the portal to do this in Teams. An administrator can grant "
    "the Microsoft Graph permission it needs by connecting the organization again."
)
PERMISSION_MISSING = gettext_lazy(
    "Your organization has not allowed the portal to do this in Teams. An administrator can grant "
    "the Microsoft Graph permission {permission} by connecting the organization again."
)


def _failure(exc: graph.GraphError) -> ActionFailed:
    if exc.throttled:
        wait = sync.backoff(1, exc.retry_after)
        return ActionFailed(429, "graph_throttled", _("Teams is busy. Sending again shortly."), wait)
    if exc.transient:
        return ActionFailed(
            503,
            "graph_unavailable",
            _("Teams did not answer. If the message reached Teams it appears here shortly; if not, retry."),
            exc.retry_after,
        )
    if exc.status == 413:
        return ActionFailed(413, "too_long", _("This message is too long for Teams."))
    if exc.status == 403 and "scope" in exc.message.lower():
        # A permission the tenant has not consented to (removing members needs its own).
        return ActionFailed(403, "permission_missing", str(PERMISSION_UNKNOWN))
    if exc.status == 403:
        return ActionFailed(403, "not_in_chat", _("You are no longer a member of this chat."))
    if exc.status == 404:
        return ActionFailed(404, "gone_in_teams", _("Teams no longer has this: it was deleted, or you left the chat."))
    log.warning("Graph refused a user action: %s %s", exc.status, exc.code)
    return ActionFailed(400, "refused", _("Teams refused it: %(reason)s") % {"reason": exc.message or exc.code})


def _not_connected() -> ActionFailed:
    # Disconnected while Teams did it: it is in Teams, and the portal keeps nothing of it.
    return ActionFailed(403, "tenant_not_active", _("Your organization is no longer connected to the portal."))


def _send_key(member: TenantUser, client_id: str) -> str:
    return f"chat-send:{member.pk}:{client_id}"


@dataclass(frozen=True)
class Draft:
    """What the composer sends: the text, and optionally a quoted message, mentions and images.

    `mentions`: (oid, display name) of chat members; `@Display Name` in the text mentions them.
    """

    text: str
    reply_to: str | None = None
    mentions: Sequence[tuple[str, str]] = ()
    images: Sequence[graph.Image] = field(default_factory=tuple)


def message_send(*, member: TenantUser, chat: Chat, draft: Draft, client_id: str) -> Message:
    """Send the draft to the chat as the member; the message is mirrored and shown live.

    `client_id` names this message in the browser, the same on every try: a try after one
    that reached Teams answers that message instead of posting it again.
    """
    key = _send_key(member, client_id)
    if not coordination.put_new(key, SENDING, seconds=SEND_PENDING_SECONDS):
        return _already_sent(chat, coordination.get(key))
    try:
        message = _send(member, chat, draft)
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
    raise ActionFailed(409, "in_progress", _("Still sending…"), retry_after=2)


def _send(member: TenantUser, chat: Chat, draft: Draft) -> Message:
    html, kept = html_with_mentions(draft.text, draft.mentions)
    html += "".join(
        f'<p><img src="../hostedContents/{n}/$value" alt="image"></p>' for n in range(1, len(draft.images) + 1)
    )
    mentions = [graph.Mention(n, oid, name) for n, oid, name in kept]

    def post(g: graph.GraphSession) -> Awaitable[dict[str, Any]]:
        if draft.reply_to:
            return g.reply_with_quote(chat.graph_id, draft.reply_to, html, mentions=mentions, images=draft.images)
        return g.send_message(chat.graph_id, html, mentions=mentions, images=draft.images)

    message = _mirrored(chat, _retrying(member, _turned(member, chat, post)))
    # Graph shows a hidden chat again to everyone once a message arrives in it.
    services.chat_unhide(chat=chat)
    return message


def _turned(
    member: TenantUser, chat: Chat, call: Callable[[graph.GraphSession], Awaitable[T]]
) -> Callable[[graph.GraphSession], Awaitable[T]]:
    """`call`, once its turn under Graph's chat-message limits (shared with the sync) has come:
    inside the member's session, so the token is fetched first; the turn is over when Graph has
    answered."""

    async def in_turn(g: graph.GraphSession) -> T:
        try:
            with sync.graph_turn(member.tenant, [chat], max_wait=SEND_MAX_WAIT_SECONDS) as wait:
                await asyncio.sleep(wait)
                return await call(g)
        except sync.SyncDeferred as exc:
            raise ActionFailed(429, "busy", _("Teams is busy. Sending again shortly."), exc.countdown) from exc

    return in_turn


def _retrying(member: TenantUser, call: Callable[[graph.GraphSession], Awaitable[T]]) -> T:
    """`call` as the member; after a 429, once more when the wait is short."""
    for attempt in range(2):
        try:
            return _as_user(member, call)
        except ActionFailed as exc:
            # One short wait here (our turns allow for lateness, Graph counts arrivals); longer
            # ones go back to the browser, which keeps what was typed and tries again.
            short = exc.retry_after is not None and exc.retry_after <= SEND_MAX_WAIT_SECONDS
            if exc.status != 429 or not short or attempt:
                raise
            time.sleep(exc.retry_after or 0)
    raise AssertionError("unreachable")


def _mirrored(chat: Chat, item: dict[str, Any]) -> Message:
    """Graph's copy of a message, in the mirror (newer wins) and on every member's page."""
    try:
        services.messages_upsert(chat=chat, items=[item])
    except services.TenantGone:
        raise _not_connected() from None
    message = Message.objects.get(tenant_id=chat.tenant_id, chat=chat, graph_id=item["id"])
    live.publish_messages(chat, [message])
    return message


# changes to a message ---------------------------------------------------------------------
def _own(member: TenantUser, message: Message) -> None:
    """Graph lets only the sender edit or delete a message: said before Graph is asked."""
    if message.sender_oid is None or str(message.sender_oid) != str(member.oid):
        raise ActionFailed(403, "not_yours", _("You can change only your own messages."))


# Teams has done the change: reading it back may wait longer than a send waits for its turn.
READ_BACK_MAX_WAIT_SECONDS = 10.0


def _changed(
    member: TenantUser, chat: Chat, message: Message, change: Callable[[graph.GraphSession], Awaitable[None]]
) -> Message | None:
    """One change to a message in Graph (which answers 204), then the message as Graph has it now."""

    async def change_and_read(g: graph.GraphSession) -> dict[str, Any] | None:
        await _turned(member, chat, change)(g)
        return await _read_back(g, member, chat, message.graph_id)

    item = _retrying(member, change_and_read)
    if item is None:
        # Done in Teams, not read back yet: a sync of the chat brings it to the mirror and the pages.
        transaction.on_commit(partial(tasks.sync_chats.delay, member.pk, [chat.graph_id]))
        return None
    return _mirrored(chat, item)


async def _read_back(g: graph.GraphSession, member: TenantUser, chat: Chat, message_id: str) -> dict[str, Any] | None:
    """The message as Graph has it after a change, or None when Graph is too busy to say now."""
    for attempt in range(2):
        try:
            # The read counts against the chat's message limits too.
            with sync.graph_turn(member.tenant, [chat], max_wait=READ_BACK_MAX_WAIT_SECONDS) as wait:
                await asyncio.sleep(wait)
                try:
                    return await g.get_message(chat.graph_id, message_id)
                except graph.GraphError as exc:
                    short = exc.retry_after is not None and exc.retry_after <= READ_BACK_MAX_WAIT_SECONDS
                    if not exc.throttled or not short or attempt:
                        return None
                    retry = exc.retry_after or 0
        except sync.SyncDeferred:
            return None
        await asyncio.sleep(retry)
    return None


def _mentioned(message: Message) -> list[tuple[str, str]]:
    """The people a message mentions, (oid, name): an edit keeps them where their names stay."""
    people = []
    for mention in message.mentions or []:
        user = (((mention or {}).get("mentioned") or {}).get("user")) or {}
        name = str(mention.get("mentionText") or user.get("displayName") or "")
        if user.get("id") and name:
            people.append((str(user["id"]), name))
    return people


def message_edit(*, member: TenantUser, chat: Chat, message: Message, text: str) -> Message | None:
    _own(member, message)
    if message.deleted_at is not None or message.message_type != "message":
        raise ActionFailed(400, "not_editable", _("This message can no longer be edited."))
    html, kept = html_with_mentions(text, _mentioned(message))
    html = body_edited(message.body, html)
    mentions = [graph.Mention(n, oid, name) for n, oid, name in kept]
    return _changed(
        member, chat, message, lambda g: g.edit_message(chat.graph_id, message.graph_id, html, mentions=mentions)
    )


def message_delete(*, member: TenantUser, chat: Chat, message: Message) -> Message | None:
    _own(member, message)
    if message.deleted_at is not None:
        return message
    user, ids = str(member.oid), {"chat_id": chat.graph_id, "message_id": message.graph_id}
    return _changed(member, chat, message, lambda g: g.soft_delete(user=user, **ids))


def message_restore(*, member: TenantUser, chat: Chat, message: Message) -> Message | None:
    _own(member, message)
    if message.deleted_at is None:
        return message
    user, ids = str(member.oid), {"chat_id": chat.graph_id, "message_id": message.graph_id}
    return _changed(member, chat, message, lambda g: g.undo_soft_delete(user=user, **ids))


def message_react(*, member: TenantUser, chat: Chat, message: Message, reaction: str, on: bool) -> Message | None:
    """The member's `reaction` (one of REACTIONS) to a message, given (`on`) or taken back."""
    if reaction not in REACTIONS:
        raise ActionFailed(400, "bad_reaction", _("Choose one of Teams' reactions."))
    if message.deleted_at is not None or message.message_type != "message":
        raise ActionFailed(400, "not_reactable", _("This message takes no reactions."))
    if on:
        return _changed(member, chat, message, lambda g: g.set_reaction(chat.graph_id, message.graph_id, reaction))
    return _changed(member, chat, message, lambda g: g.unset_reaction(chat.graph_id, message.graph_id, reaction))


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
