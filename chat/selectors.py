"""Reads of the mirror, always through the signed-in member: his chats, a thread, its changes.

`access_chat` is the one way to a chat by id (`access_open_chat` is the same check, with what the
chat's page shows beside): "does not exist" and "not yours" (another tenant, or a chat the member
is not in) are the same 404.

The chat page's reads (the open chat, the list, the thread, the sync state) are statements of
their own, read by `_fetch` into model instances as a queryset would make them: for these the ORM
took longer to build and plan a query than the database to run it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection
from django.db.models import DEFERRED, Field, JSONField, Model, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from chat.models import Chat, ChatMember, ChatSyncState, Message
from chat.render import chat_title, needs_names, plain_text
from tenants.models import TenantUser

PAGE_SIZE = 50
CHATS_PAGE_SIZE = 50
CHANGES_LIMIT = 200
PEOPLE_LIMIT = 20
M = TypeVar("M", bound=Model)


def _columns(alias: str, fields: Sequence[Field[Any, Any]]) -> str:
    return ", ".join(f"{alias}.{f.column}" for f in fields)


# The chat page's statements. Tables and columns are constants; every value is a parameter.
_CHAT_FIELDS: list[Any] = list(Chat._meta.concrete_fields)
_MEMBER_FIELDS: list[Any] = list(ChatMember._meta.concrete_fields)
_SYNC_FIELDS: list[Any] = list(ChatSyncState._meta.concrete_fields)
# A thread's messages as drawn: `mirrored_at` (catch-ups' cursor) is left deferred, as `.only()`
# would (each time read is parsed in Python).
_MESSAGE_FIELDS: list[Any] = [f for f in Message._meta.concrete_fields if f.name != "mirrored_at"]
_OPEN_COLUMNS = [*_MEMBER_FIELDS, *_CHAT_FIELDS, *_SYNC_FIELDS]
_OPEN_SQL = (
    f"SELECT {_columns('m', _MEMBER_FIELDS)}, {_columns('c', _CHAT_FIELDS)}, {_columns('s', _SYNC_FIELDS)} "  # noqa: S608
    f"FROM {ChatMember._meta.db_table} m LEFT JOIN {Chat._meta.db_table} c "
    "ON c.id = m.chat_id AND c.tenant_id = m.tenant_id AND m.oid = %(oid)s "
    f"LEFT JOIN {ChatSyncState._meta.db_table} s ON s.member_id = %(member)s AND s.tenant_id = c.tenant_id "
    "WHERE m.tenant_id = %(tenant)s AND m.chat_id = %(chat)s ORDER BY m.display_name, m.oid"
)
_SYNC_SQL = (
    f"SELECT {_columns('s', _SYNC_FIELDS)} FROM {ChatSyncState._meta.db_table} s "  # noqa: S608
    "WHERE s.member_id = %(member)s AND s.tenant_id = %(tenant)s"
)


def access_chat(*, member: TenantUser, chat_id: int) -> Chat:
    chat = Chat.objects.filter(pk=chat_id, tenant=member.tenant, members__oid=member.oid).first()
    if chat is None:
        raise Http404("No such chat")
    return chat


@dataclass(frozen=True)
class OpenChat:
    """A chat as its page opens it: the chat, its members by name, and the sync state of the
    member who opens it (the page shows it beside)."""

    chat: Chat
    members: list[ChatMember]
    sync: ChatSyncState | None


def access_open_chat(*, member: TenantUser, chat_id: int) -> OpenChat:
    """`access_chat` (the same 404), its members and his sync state in one statement: the chat's
    and the sync state's columns come with the member's own row only."""
    oid = ChatMember._meta.get_field("oid").get_db_prep_value(member.oid, connection)
    params = {"tenant": member.tenant_id, "chat": chat_id, "oid": oid, "member": member.pk}
    rows = _fetch(_OPEN_SQL, params, _OPEN_COLUMNS)
    chat_at, sync_at = len(_MEMBER_FIELDS), len(_MEMBER_FIELDS) + len(_CHAT_FIELDS)
    own = next((row for row in rows if row[chat_at] is not None), None)
    if own is None:
        raise Http404("No such chat")
    [chat] = _made(Chat, _CHAT_FIELDS, [own[chat_at:sync_at]])
    members = _made(ChatMember, _MEMBER_FIELDS, [row[:chat_at] for row in rows])
    for m in members:
        m.chat = chat
    sync = _made(ChatSyncState, _SYNC_FIELDS, [own[sync_at:]])[0] if own[sync_at] is not None else None
    return OpenChat(chat, members, sync)


@dataclass(frozen=True)
class ChatEntry:
    """One line of the chat list."""

    chat: Chat
    title: str
    preview: str
    at: dt.datetime | None
    unread: bool


def member_chats(*, member: TenantUser, page: int = 1, seen: int | None = None) -> tuple[list[ChatEntry], bool]:
    """The member's chats, latest activity first, a page at a time; and whether more follow.

    `seen`: the chat the person has open in front of him, shown read.
    """
    oid = ChatMember._meta.get_field("oid").get_db_prep_value(member.oid, connection)
    start = (max(1, page) - 1) * CHATS_PAGE_SIZE
    params = {"tenant": member.tenant_id, "oid": oid, "seen": seen, "limit": CHATS_PAGE_SIZE + 1, "offset": start}
    rows = _fetch(_chats_sql(connection.vendor), params, _CHATS_COLUMNS)
    split = len(_LISTED_FIELDS)
    chats = _made(Chat, _LISTED_FIELDS, [row[:split] for row in rows[:CHATS_PAGE_SIZE]])
    entries = [_entry(chat, row[split:], member, seen=seen) for chat, row in zip(chats, rows, strict=False)]
    return entries, len(rows) > CHATS_PAGE_SIZE


# The chat's columns a line of the list draws (the rest deferred, as `.only()` would); his last
# read, the newest message (not a system event, not deleted) and, for a chat without a topic,
# the other members' (name, email) as a JSON array.
_LISTED_FIELDS: list[Any] = [
    Chat._meta.get_field(name) for name in ("id", "tenant", "graph_id", "chat_type", "topic", "last_message_at")
]
_CHATS_COLUMNS: list[Any] = [
    *_LISTED_FIELDS,
    ChatMember._meta.get_field("last_read_at"),
    *(Message._meta.get_field(name) for name in ("created_at", "body", "body_type", "sender_oid", "sender_name")),
    None,
]


@functools.cache
def _chats_sql(vendor: str) -> str:
    """The list in one statement: the ORM's version (a subquery per column of the newest message,
    a query more for names) cost more to build and plan than to run. Tables and columns are
    constants; every value is a parameter.

    Listed: not hidden; or hidden, and a message came after (Graph shows it again then, and its
    next listing says so; hiding reads the chat first, so "after" is after his last read); or
    the chat open in front of him.
    """
    chats, members, messages = Chat._meta.db_table, ChatMember._meta.db_table, Message._meta.db_table
    others = f"FROM {members} o WHERE o.tenant_id = c.tenant_id AND o.chat_id = c.id AND o.oid <> me.oid"
    order = "ORDER BY o.display_name, o.oid"
    if vendor == "postgresql":
        names = f"SELECT json_agg(json_build_array(o.display_name, o.email) {order})::text {others}"
    else:  # SQLite's aggregates take no ORDER BY (before 3.44): they keep a subquery's order
        ordered = f"SELECT o.display_name n, o.email e {others} {order}"
        names = f"SELECT json_group_array(json_array(n, e)) FROM ({ordered})"  # noqa: S608
    return (
        f"SELECT {_columns('c', _LISTED_FIELDS)}, "  # noqa: S608
        "me.last_read_at, p.created_at, p.body, p.body_type, p.sender_oid, p.sender_name, "
        f"CASE WHEN c.topic = '' THEN ({names}) END "
        f"FROM {members} me JOIN {chats} c ON c.id = me.chat_id AND c.tenant_id = me.tenant_id "
        f"LEFT JOIN {messages} p ON p.id = (SELECT n.id FROM {messages} n "
        "WHERE n.tenant_id = c.tenant_id AND n.chat_id = c.id AND n.deleted_at IS NULL AND n.message_type = 'message' "
        "ORDER BY n.created_at DESC, n.graph_id DESC LIMIT 1) "
        "WHERE me.tenant_id = %(tenant)s AND me.oid = %(oid)s "
        "AND (NOT me.hidden OR p.created_at > me.last_read_at OR c.id = %(seen)s) "
        "ORDER BY c.last_message_at DESC, c.created_at DESC, c.id DESC LIMIT %(limit)s OFFSET %(offset)s"
    )


def _fetch(sql: str, params: Mapping[str, Any], columns: Sequence[Field[Any, Any] | None]) -> list[list[Any]]:
    """The rows of a SELECT, each value converted as the ORM converts its field's (SQLite gives
    times and ids as text); a column without a field as the database gave it."""
    converters = _converters(columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [list(row) for row in cursor.fetchall()]
    for row in rows:
        for i, column, functions, json_field in converters:
            # Most JSON columns of a message are empty lists: the same value, without the decoder.
            if json_field and row[i] == "[]":
                row[i] = []
                continue
            for convert in functions:
                row[i] = convert(row[i], column, connection)
    return rows


# What `_converters` and `_made` work out once for each list of columns they are given (the
# module's constant lists: an entry holds its list, so that its id is not reused).
_CONVERTERS: dict[tuple[int, str], tuple[object, list[tuple[int, Any, list[Callable[..., Any]], bool]]]] = {}
_SLOTS: dict[tuple[int, type[Model]], tuple[object, list[int | None] | None]] = {}


def _converters(columns: Sequence[Field[Any, Any] | None]) -> list[tuple[int, Any, list[Callable[..., Any]], bool]]:
    """(index, column, converters, is JSON) of each column whose values the ORM converts."""
    key = (id(columns), connection.vendor)
    if key not in _CONVERTERS:
        found = []
        for i, field in enumerate(columns):
            column = field.get_col(field.model._meta.db_table) if field is not None else None
            functions = (
                [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)] if column else []
            )
            if functions:
                found.append((i, column, functions, isinstance(field, JSONField)))
        _CONVERTERS[key] = (columns, found)
    return _CONVERTERS[key][1]


def _made(model: type[M], fields: Sequence[Field[Any, Any]], rows: Sequence[Sequence[Any]]) -> list[M]:
    """Model instances of rows of `fields`' values (as a queryset makes them), other fields deferred."""
    key = (id(fields), model)
    if key not in _SLOTS:
        names = [f.attname for f in fields]
        found = [names.index(f.attname) if f.attname in names else None for f in model._meta.concrete_fields]
        _SLOTS[key] = (fields, None if found == list(range(len(found))) else found)
    slots, db = _SLOTS[key][1], connection.alias
    if slots is None:
        return [model.from_db(db, [], row) for row in rows]
    # `from_db` would look each field up in the list of names, for every row.
    return [model.from_db(db, [], [DEFERRED if i is None else row[i] for i in slots]) for row in rows]


def _entry(chat: Chat, listed: list[Any], member: TenantUser, *, seen: int | None) -> ChatEntry:
    read_at, last, body, body_type, sender, sender_name, others = listed
    mine = sender is not None and sender == member.oid
    preview = ""
    if body is not None:
        text = plain_text(body, body_type)
        who = _("You") if mine else sender_name
        preview = f"{who}: {text}" if who else text
    names = [name or email or _("Someone") for name, email in json.loads(others or "[]")]
    # Messages of others make a chat unread; system events ("renamed", "added …") do not.
    unread = chat.pk != seen and not mine and last is not None and (read_at is None or last > read_at)
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
    return chat_title(chat, names=[m.display_name or m.email or _("Someone") for m in members if m.oid != member.oid])


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
    params: dict[str, Any] = {"tenant": chat.tenant_id, "chat": chat.pk, "limit": PAGE_SIZE + 1}
    if before is not None:
        at, graph_id = before
        params |= {"at": Message._meta.get_field("created_at").get_db_prep_value(at, connection), "id": graph_id}
    rows = _fetch(_thread_sql(before=before is not None), params, _MESSAGE_FIELDS)
    messages = _made(Message, _MESSAGE_FIELDS, rows[:PAGE_SIZE])
    return list(reversed(messages)), len(rows) > PAGE_SIZE


@functools.cache
def _thread_sql(*, before: bool) -> str:
    cursor = "AND (created_at < %(at)s OR (created_at = %(at)s AND graph_id < %(id)s)) " if before else ""
    return (
        f"SELECT {_columns('m', _MESSAGE_FIELDS)} FROM {Message._meta.db_table} m "  # noqa: S608
        f"WHERE tenant_id = %(tenant)s AND chat_id = %(chat)s {cursor}"
        "ORDER BY created_at DESC, graph_id DESC LIMIT %(limit)s"
    )


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
    rows = _fetch(_SYNC_SQL, {"member": member.pk, "tenant": member.tenant_id}, _SYNC_FIELDS)
    return _made(ChatSyncState, _SYNC_FIELDS, rows)[0] if rows else None
