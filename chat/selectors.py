"""Reads of the mirror, always through the signed-in member: his chats, a thread, its changes.

`access_chat` is the one way to a chat by id: "does not exist" and "not yours" (another tenant,
or a chat the member is not in) are the same 404.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404

from chat.models import Chat, ChatMember, ChatSyncState, Message
from chat.render import chat_title, needs_names, plain_text
from tenants.models import TenantUser

PAGE_SIZE = 50
CHATS_PAGE_SIZE = 50
CHANGES_LIMIT = 200
PEOPLE_LIMIT = 20


def access_chat(*, member: TenantUser, chat_id: int) -> Chat:
    chat = Chat.objects.filter(pk=chat_id, tenant=member.tenant, members__oid=member.oid).first()
    if chat is None:
        raise Http404("No such chat")
    return chat


@dataclass(frozen=True)
class ChatEntry:
    """One line of the chat list."""

    chat: Chat
    title: str
    preview: str
    at: dt.datetime | None
    unread: bool


def _latest(field: str) -> Subquery:
    newest = Message.objects.filter(
        tenant=OuterRef("tenant"), chat=OuterRef("pk"), deleted_at__isnull=True, message_type="message"
    ).order_by("-created_at", "-graph_id")
    return Subquery(newest.values(field)[:1])


def member_chats(*, member: TenantUser, page: int = 1, seen: int | None = None) -> tuple[list[ChatEntry], bool]:
    """The member's chats, latest activity first, a page at a time; and whether more follow.

    `seen`: the chat the person has open in front of him, shown read.
    """
    mine = ChatMember.objects.filter(tenant=member.tenant, chat=OuterRef("pk"), oid=member.oid)
    others = ChatMember.objects.filter(tenant=member.tenant).exclude(oid=member.oid).order_by("display_name", "oid")
    chats = (
        Chat.objects.filter(tenant=member.tenant, members__oid=member.oid)
        .annotate(
            read_at=Subquery(mine.values("last_read_at")[:1]),
            hidden=Subquery(mine.values("hidden")[:1]),
            preview_at=_latest("created_at"),
            preview_body=_latest("body"),
            preview_type=_latest("body_type"),
            preview_sender=_latest("sender_oid"),
            preview_name=_latest("sender_name"),
        )
        .filter(_listed(seen))
        .prefetch_related(Prefetch("members", queryset=others, to_attr="others"))
        .order_by("-last_message_at", "-created_at", "-pk")
    )
    start = (max(1, page) - 1) * CHATS_PAGE_SIZE
    rows = list(chats[start : start + CHATS_PAGE_SIZE + 1])
    entries = [_entry(chat, member, seen=chat.pk == seen) for chat in rows[:CHATS_PAGE_SIZE]]
    return entries, len(rows) > CHATS_PAGE_SIZE


def _listed(seen: int | None) -> Q:
    """Not hidden; or hidden, and a message came after (Graph shows it again then, and its next
    listing says so). Hiding reads the chat first, so "after" is after his last read. The chat
    open in front of him is listed whatever."""
    listed = Q(hidden=False) | Q(preview_at__gt=F("read_at"))
    return listed | Q(pk=seen) if seen is not None else listed


def _entry(chat: Chat, member: TenantUser, *, seen: bool) -> ChatEntry:
    names = [m.display_name or m.email or "Someone" for m in chat.others]  # type: ignore[attr-defined]
    body = chat.preview_body  # type: ignore[attr-defined]
    preview = ""
    if body is not None:
        text = plain_text(body, chat.preview_type)  # type: ignore[attr-defined]
        mine = chat.preview_sender is not None and chat.preview_sender == member.oid  # type: ignore[attr-defined]
        who = "You" if mine else chat.preview_name  # type: ignore[attr-defined]
        preview = f"{who}: {text}" if who else text
    # Messages of others make a chat unread; system events ("renamed", "added …") do not.
    read_at, last = chat.read_at, chat.preview_at  # type: ignore[attr-defined]
    mine = chat.preview_sender is not None and chat.preview_sender == member.oid  # type: ignore[attr-defined]
    unread = not seen and not mine and last is not None and (read_at is None or last > read_at)
    return ChatEntry(chat, chat_title(chat, names=names), preview, chat.last_message_at, unread)


def last_message_time(*, chat: Chat) -> dt.datetime | None:
    """When the chat's newest message (not a system event, not deleted) was sent: what makes it unread."""
    newest = Message.objects.filter(
        tenant_id=chat.tenant_id, chat=chat, deleted_at__isnull=True, message_type="message"
    )
    return newest.order_by("-created_at").values_list("created_at", flat=True).first()


def chat_members(*, chat: Chat) -> list[ChatMember]:
    return list(ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat).order_by("display_name", "oid"))


def member_names(members: list[ChatMember]) -> dict[str, str]:
    return {str(m.oid): m.display_name or m.email for m in members}


def thread_title(*, member: TenantUser, chat: Chat, members: list[ChatMember]) -> str:
    return chat_title(chat, names=[m.display_name or m.email or "Someone" for m in members if m.oid != member.oid])


def message_names(
    *, chat: Chat, messages: list[Message], members: list[ChatMember] | None = None
) -> dict[str, str] | None:
    """The names drawing `messages` takes (system events, who reacted), by oid; None if none.

    People no longer in the chat (removed, gone) are named as the tenant's other chats name them.
    """
    if members is None and not needs_names(messages):
        return None
    names = member_names(members if members is not None else chat_members(chat=chat))
    missing = {oid for m in messages for oid in _event_people(m) if oid not in names}
    if missing:
        known = ChatMember.objects.filter(tenant_id=chat.tenant_id, oid__in=missing).exclude(display_name="")
        names |= {str(oid): name for oid, name in known.values_list("oid", "display_name")}
    return names


def _event_people(message: Message) -> list[str]:
    detail = message.event if isinstance(message.event, dict) else {}
    found = []
    for person in detail.get("members") or []:
        try:
            found.append(str(uuid.UUID(str((person or {}).get("id")))))
        except ValueError:
            continue
    return found


def thread_page(*, chat: Chat, before: tuple[dt.datetime, str] | None = None) -> tuple[list[Message], bool]:
    """A page of the thread, oldest first, ending before `before` (created, id) or at the newest."""
    messages = Message.objects.filter(tenant_id=chat.tenant_id, chat=chat)
    if before is not None:
        at, graph_id = before
        messages = messages.filter(Q(created_at__lt=at) | Q(created_at=at, graph_id__lt=graph_id))
    rows = list(messages.order_by("-created_at", "-graph_id")[: PAGE_SIZE + 1])
    return list(reversed(rows[:PAGE_SIZE])), len(rows) > PAGE_SIZE


# A write that began before a page's cursor may commit after it: catch-ups look back this far.
CATCH_UP_MARGIN = dt.timedelta(seconds=10)


def thread_changes(*, chat: Chat, since: dt.datetime) -> list[Message]:
    """What the mirror wrote in the thread after `since` (a reconnecting page catches up)."""
    messages = Message.objects.filter(tenant_id=chat.tenant_id, chat=chat, mirrored_at__gt=since - CATCH_UP_MARGIN)
    return list(messages.order_by("mirrored_at", "graph_id")[:CHANGES_LIMIT])


@dataclass(frozen=True)
class Person:
    oid: str
    name: str
    email: str


def tenant_people(*, member: TenantUser, query: str = "") -> list[Person]:
    """People the member may start a chat with: his organization's portal users and the people
    of his own chats (not those of chats he is not in)."""
    users = TenantUser.objects.filter(tenant=member.tenant).exclude(oid=member.oid)
    members = _chat_mates(member)
    if query:
        users = users.filter(Q(display_name__icontains=query) | Q(upn__icontains=query))
        members = members.filter(Q(display_name__icontains=query) | Q(email__icontains=query))
    found: dict[str, Person] = {}
    for oid, name, email in users.order_by("display_name").values_list("oid", "display_name", "upn")[:PEOPLE_LIMIT]:
        found[str(oid)] = Person(str(oid), name or email, email)
    rows = members.order_by("display_name").values_list("oid", "display_name", "email").distinct()
    for oid, name, email in rows[: PEOPLE_LIMIT * 2]:
        found.setdefault(str(oid), Person(str(oid), name or email, email))
    return sorted(found.values(), key=lambda p: (p.name.lower(), p.oid))[:PEOPLE_LIMIT]


def people_known(*, member: TenantUser, oids: list[str]) -> set[str]:
    """Those of `oids` the member may start a chat with (as `tenant_people` offers them), in two queries."""
    users = TenantUser.objects.filter(tenant=member.tenant, oid__in=oids).values_list("oid", flat=True)
    mates = _chat_mates(member).filter(oid__in=oids).values_list("oid", flat=True)
    return {str(oid) for oid in [*users, *mates]}


def _chat_mates(member: TenantUser) -> QuerySet[ChatMember]:
    mine = ChatMember.objects.filter(tenant=member.tenant, oid=member.oid).values("chat_id")
    return ChatMember.objects.filter(tenant=member.tenant, chat_id__in=mine).exclude(oid=member.oid)


def sync_state(*, member: TenantUser) -> ChatSyncState | None:
    return ChatSyncState.objects.filter(member=member, tenant=member.tenant).first()
