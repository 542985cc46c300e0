"""What a member does to a chat as a whole, in Teams as himself: read or unread it (shared with
Teams), hide it, rename it, add and remove people, leave it.

Each goes to Graph first; what Graph answers 204 to is read back from Graph (the chat with its
members) and upserted, so the mirror says what Graph says. Then every open page concerned is told.
The system message Teams adds (renamed, members added or removed) comes with a sync of the chat.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chat import live, selectors, services, tasks
from chat.models import Chat, ChatMember
from chat.sending import ActionFailed, _as_user, _not_connected
from integrations import graph
from tenants.models import TenantUser
from tenants.scopes import MEMBER_MANAGEMENT_SCOPE

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TOPIC_CHARS = 250


def topic_too_long() -> str:
    return ngettext(
        "A chat name has at most %(count)d character.", "A chat name has at most %(count)d characters.", MAX_TOPIC_CHARS
    ) % {"count": MAX_TOPIC_CHARS}


# "Unread" reads up to just before the last message, as Teams does by default.
JUST_BEFORE = dt.timedelta(milliseconds=1)


def _as_member(member: TenantUser, call: Callable[[graph.GraphSession], Awaitable[T]], *, also: str | None = None) -> T:
    """`sending._as_user`, with its answers to "wait" worded for actions rather than messages."""
    try:
        return _as_user(member, call, also=also)
    except ActionFailed as exc:
        if exc.status == 429:
            raise ActionFailed(429, exc.reason, _("Teams is busy. Try again shortly."), exc.retry_after) from exc
        if exc.status == 503 and exc.reason == "graph_unavailable":
            raise ActionFailed(503, exc.reason, _("Teams did not answer. Try again."), exc.retry_after) from exc
        raise


def _me(member: TenantUser) -> dict[str, str]:
    return {"user": str(member.oid), "tenant": str(member.tenant.tid)}


def _mine(member: TenantUser, chat: Chat) -> Any:
    return ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat, oid=member.oid)


def _group_only(chat: Chat) -> None:
    if chat.chat_type != "group":
        raise ActionFailed(400, "not_group", _("Only group chats can be renamed or have people added or removed."))


def _land(member: TenantUser, item: dict[str, Any]) -> Chat:
    """The chat Graph answered, in the mirror and on its members' pages; its new system message follows."""
    try:
        chat = services.chats_upsert(member=member, items=[item], complete=False)[item["id"]]
    except services.TenantGone:
        raise _not_connected() from None
    live.publish_chats([chat])
    _sync_soon(member, chat)
    return chat


def _sync_soon(member: TenantUser, chat: Chat) -> None:
    """Teams' system message for the change ("renamed the chat", "added …"), fetched as `member`."""
    transaction.on_commit(partial(tasks.sync_chats.delay, member.pk, [chat.graph_id]))


# read state and hiding (the member's own view, shared with Teams) -----------------------------
def chat_read(*, member: TenantUser, chat: Chat) -> bool:
    """Read up to now, in Teams and here; says whether Teams has it too.

    The person is reading the chat in front of him: it is read here whatever Graph says (the next
    listing of his chats brings Teams' view back if Teams did not take it). Nothing is asked of
    Graph when nothing came since his last read.
    """
    read_at = _mine(member, chat).values_list("last_read_at", flat=True).first()
    shared = True
    if read_at is None or chat.last_message_at is None or chat.last_message_at > read_at:
        try:
            _as_member(member, lambda g: g.mark_chat_read(chat.graph_id, **_me(member)))
        except ActionFailed as exc:
            log.warning("chat %s read here only: Teams refused (%s %s)", chat.pk, exc.status, exc.reason)
            shared = False
    services.chat_mark_read(member=member, chat=chat)
    return shared


def chat_unread(*, member: TenantUser, chat: Chat) -> None:
    """Unread from the last message on, in Teams and here (the list shows it unread)."""
    last = selectors.last_message_time(chat=chat)
    if last is None:
        raise ActionFailed(400, "no_messages", _("This chat has no message to mark unread."))
    until = last - JUST_BEFORE
    _as_member(member, lambda g: g.mark_chat_unread(chat.graph_id, read_until=until, **_me(member)))
    _mine(member, chat).update(last_read_at=until)
    live.publish_list(member)


def chat_hide(*, member: TenantUser, chat: Chat, hidden: bool) -> None:
    """Hidden from the member's list until a new message comes (read first: hiding puts it away);
    or shown again."""

    async def hide(session: graph.GraphSession) -> dict[str, Any]:
        if hidden:
            await session.mark_chat_read(chat.graph_id, **_me(member))
            await session.hide_chat(chat.graph_id, **_me(member))
        else:
            await session.unhide_chat(chat.graph_id, **_me(member))
        return await session.chat_with_members(chat.graph_id)

    item = _as_member(member, hide)
    try:
        services.chats_upsert(member=member, items=[item], complete=False)
    except services.TenantGone:
        raise _not_connected() from None
    # Graph may leave `viewpoint` out of a single chat: what it just did is known anyway.
    view: dict[str, Any] = {"hidden": hidden}
    if hidden:
        view["last_read_at"] = dt.datetime.now(dt.UTC)
    _mine(member, chat).update(**view)
    live.publish_list(member)


# the chat itself ------------------------------------------------------------------------------
def chat_rename(*, member: TenantUser, chat: Chat, topic: str) -> Chat:
    _group_only(chat)
    topic = topic.strip()
    if not 1 <= len(topic) <= MAX_TOPIC_CHARS:
        raise ActionFailed(400, "bad_topic", _("Give the chat a name.") if not topic else topic_too_long())

    async def rename(session: graph.GraphSession) -> dict[str, Any]:
        await session.rename_chat(chat.graph_id, topic)
        return await session.chat_with_members(chat.graph_id)

    return _land(member, _as_member(member, rename))


def chat_member_add(*, member: TenantUser, chat: Chat, oid: str) -> Chat:
    """Someone of the member's organization (as `tenant_people` offers them) added to a group chat."""
    _group_only(chat)
    if ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat, oid=oid).exists():
        raise ActionFailed(409, "already_member", _("This person is in the chat already."))
    if oid not in selectors.people_known(member=member, oids=[oid]):
        raise ActionFailed(400, "unknown_person", _("Choose people of your organization."))

    async def add(session: graph.GraphSession) -> dict[str, Any]:
        await session.add_member(chat.graph_id, oid)
        return await session.chat_with_members(chat.graph_id)

    return _land(member, _as_member(member, add))


def chat_member_remove(*, member: TenantUser, chat: Chat, oid: str) -> bool:
    """Someone removed from a group chat; the member himself: he leaves it. Says whether he left."""
    _group_only(chat)
    row = ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat, oid=oid).first()
    if row is None:
        raise ActionFailed(404, "not_member", _("This person is not in the chat."))
    leaving = uuid.UUID(oid) == member.oid
    known = row.membership_id

    async def remove(session: graph.GraphSession) -> dict[str, Any] | None:
        membership = known or await _membership_id(session, chat.graph_id, oid)
        if not membership:
            raise graph.GraphError(404, "NotFound", "Teams does not list this person in the chat.")
        await session.remove_member(chat.graph_id, membership)
        return None if leaving else await session.chat_with_members(chat.graph_id)

    # Asked for by name: a token cached before the tenant granted it (its admin's, signed in to
    # connect the organization) does not hold it, and Entra adds it on refresh.
    item = _as_member(member, remove, also=MEMBER_MANAGEMENT_SCOPE)
    if item is None:
        _left(member, chat)
        return True
    _land(member, item)
    for gone in TenantUser.objects.filter(tenant_id=chat.tenant_id, oid=oid):
        live.publish_list(gone)  # no longer his chat: his list drops it
    return False


async def _membership_id(session: graph.GraphSession, chat_id: str, oid: str) -> str:
    """Graph's membership id of `oid` (a mirror written before memberships were kept has none)."""
    next_link = None
    while True:
        page = await session.members_page(chat_id, next_link)
        for item in page.get("value", []):
            if str(item.get("userId") or "").lower() == oid.lower():
                return str(item.get("id") or "")
        next_link = page.get("@odata.nextLink")
        if not next_link:
            return ""


def _left(member: TenantUser, chat: Chat) -> None:
    """The member left: the chat is no longer his here; the others see his leaving."""
    try:
        with transaction.atomic():
            services.tenant_hold(tenant_id=chat.tenant_id)
            _mine(member, chat).delete()
    except services.TenantGone:
        raise _not_connected() from None
    live.publish_list(member)
    live.publish_chats([chat])
    stayer = _portal_member(chat)
    if stayer is not None:
        _sync_soon(stayer, chat)


def _portal_member(chat: Chat) -> TenantUser | None:
    """A member of the chat who uses the portal (to read the chat as), if any."""
    oids = ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat).values("oid")
    return TenantUser.objects.filter(tenant_id=chat.tenant_id, oid__in=oids).order_by("pk").first()
