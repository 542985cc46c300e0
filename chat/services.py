"""Writes to the mirror: chats with their members, and messages in bulk (newer wins).

Every write holds its tenant active for its transaction (`tenant_hold`): a disconnection, which
locks the tenant row before it removes the mirror, waits for writes under way, and writes that
come after it find the tenant gone. So no mirror row outlives a disconnection.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction

from chat.models import Chat, ChatMember, Message
from tenants.models import CustomerTenant, TenantUser

ACTIVE = CustomerTenant.Status.ACTIVE

MESSAGE_COLUMNS = (
    "tenant_id",
    "chat_id",
    "graph_id",
    "message_type",
    "sender_oid",
    "sender_name",
    "body_type",
    "body",
    "event",
    "attachments",
    "mentions",
    "reactions",
    "created_at",
    "last_modified_at",
    "last_edited_at",
    "deleted_at",
)
# Set by the database when a row is written (and only then: the update's WHERE is newer-wins).
STAMP = "mirrored_at"
UPDATED_COLUMNS = (*MESSAGE_COLUMNS[3:], STAMP)


def parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def required_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def graph_time(value: dt.datetime) -> str:
    """A watermark as Graph writes timestamps (UTC, milliseconds, `Z`)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class TenantGone(Exception):
    """The tenant is no longer active (disconnected, say): nothing more of it is written."""


def _hold_sql(vendor: str, *, tenant: str = "%s", status: str = "%s") -> str:
    # FOR KEY SHARE: writers of one tenant do not wait for each other, only for (and against) the
    # disconnection's FOR UPDATE. SQLite has one writer at a time anyway.
    lock = " FOR KEY SHARE" if vendor == "postgresql" else ""
    return f"SELECT 1 FROM {CustomerTenant._meta.db_table} WHERE id = {tenant} AND status = {status}{lock}"  # noqa: S608


def tenant_hold(*, tenant_id: int) -> None:
    """In the caller's transaction: the tenant is active and stays so until it ends; else TenantGone."""
    if not connection.in_atomic_block:
        raise RuntimeError("tenant_hold() holds the tenant for a transaction: call it inside one")
    with connection.cursor() as cursor:
        cursor.execute(_hold_sql(connection.vendor), [tenant_id, ACTIVE])
        if cursor.fetchone() is None:
            raise TenantGone(tenant_id)


@transaction.atomic
def chats_upsert(*, member: TenantUser, items: list[dict[str, Any]], complete: bool = True) -> dict[str, Chat]:
    """The member's chats as Graph listed them (with members), by Graph id; memberships follow.

    `complete`: `items` are all his chats, so he has left any other (a new chat is not complete).
    """
    tenant = member.tenant
    tenant_hold(tenant_id=tenant.pk)
    rows = [_chat_row(tenant, item) for item in items]
    # The newest message time only moves forward: a listing without a preview (a new chat) or
    # one older than a notification's message leaves it.
    known = dict(
        Chat.objects.filter(tenant=tenant, graph_id__in=[r.graph_id for r in rows]).values_list(
            "graph_id", "last_message_at"
        )
    )
    for row in rows:
        before = known.get(row.graph_id)
        if before is not None and (row.last_message_at is None or row.last_message_at < before):
            row.last_message_at = before
    Chat.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "graph_id"],
        update_fields=["chat_type", "topic", "web_url", "last_updated_at", "last_message_at"],
    )
    chats = {c.graph_id: c for c in Chat.objects.filter(tenant=tenant, graph_id__in=[r.graph_id for r in rows])}
    _members_replace(tenant, {chats[item["id"]]: item.get("members") or [] for item in items})
    _viewpoints_record(member, {chats[item["id"]]: item.get("viewpoint") for item in items})
    if not complete:
        return chats
    # Chats the member has left: his membership goes, the chat stays for the others.
    ChatMember.objects.filter(tenant=tenant, oid=member.oid).exclude(chat__graph_id__in=chats.keys()).delete()
    return chats


def _chat_row(tenant: CustomerTenant, item: dict[str, Any]) -> Chat:
    preview = item.get("lastMessagePreview") or {}
    return Chat(
        tenant=tenant,
        graph_id=item["id"],
        chat_type=item.get("chatType") or "",
        topic=item.get("topic") or "",
        web_url=item.get("webUrl") or "",
        created_at=required_time(item["createdDateTime"]),
        last_updated_at=parse_time(item.get("lastUpdatedDateTime")),
        last_message_at=parse_time(preview.get("createdDateTime")),
    )


def _members_replace(tenant: CustomerTenant, members_of: dict[Chat, list[dict[str, Any]]]) -> None:
    """Every listed chat's members, as Graph listed them, in three queries whatever the chats."""
    rows = [
        ChatMember(
            tenant=tenant,
            chat=chat,
            oid=m["userId"],
            membership_id=m.get("id") or "",
            display_name=m.get("displayName") or "",
            email=m.get("email") or "",
        )
        for chat, members in members_of.items()
        for m in members
        if m.get("userId")
    ]
    ChatMember.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "chat", "oid"],
        update_fields=["membership_id", "display_name", "email"],
    )
    listed = {(r.chat.pk, str(r.oid)) for r in rows}
    existing = ChatMember.objects.filter(tenant=tenant, chat__in=list(members_of)).values_list("pk", "chat_id", "oid")
    gone = [pk for pk, chat_id, oid in existing if (chat_id, str(oid)) not in listed]
    if gone:
        ChatMember.objects.filter(tenant=tenant, pk__in=gone).delete()


def _viewpoints_record(member: TenantUser, viewpoints: dict[Chat, dict[str, Any] | None]) -> None:
    """The member's own view of each chat as Graph listed it (read up to, hidden), shared with Teams."""
    listed = {chat.pk: view for chat, view in viewpoints.items() if view}
    rows = list(ChatMember.objects.filter(tenant=member.tenant, oid=member.oid, chat_id__in=listed))
    for row in rows:
        view = listed[row.chat_id]
        row.last_read_at = parse_time(view.get("lastMessageReadDateTime"))
        row.hidden = bool(view.get("isHidden"))
    ChatMember.objects.bulk_update(rows, ["last_read_at", "hidden"])


def _message_values(chat: Chat, item: dict[str, Any]) -> tuple[Any, ...]:
    sender = ((item.get("from") or {}).get("user")) or {}
    body = item.get("body") or {}
    event = item.get("eventDetail")
    return (
        chat.tenant_id,
        chat.pk,
        item["id"],
        item.get("messageType") or "message",
        sender.get("id"),
        sender.get("displayName") or "",
        body.get("contentType") or "text",
        body.get("content") or "",
        json.dumps(event) if event else None,
        json.dumps(item.get("attachments") or []),
        json.dumps(item.get("mentions") or []),
        json.dumps(item.get("reactions") or []),
        parse_time(item["createdDateTime"]),
        parse_time(item["lastModifiedDateTime"] or item["createdDateTime"]),
        parse_time(item.get("lastEditedDateTime")),
        parse_time(item.get("deletedDateTime")),
    )


def _on_conflict(table: str) -> str:
    # Newer wins: an older copy of a message (a late page, a replay) never overwrites a newer
    # one, so a deletion is undone only by a newer copy (Teams' undoSoftDelete bumps the time).
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED_COLUMNS)
    return (
        f"ON CONFLICT (tenant_id, chat_id, graph_id) DO UPDATE SET {updates} "
        f"WHERE {table}.last_modified_at < EXCLUDED.last_modified_at"
    )


def _upsert_sql(rows: int) -> str:
    """The generic upsert (SQLite): one VALUES tuple per row."""
    table = Message._meta.db_table
    one = "(" + ", ".join(["%s"] * len(MESSAGE_COLUMNS)) + ", CURRENT_TIMESTAMP)"
    # The table and columns are constants; every value is a parameter.
    insert = f"INSERT INTO {table} ({', '.join(MESSAGE_COLUMNS)}, {STAMP}) VALUES {', '.join([one] * rows)} "  # noqa: S608
    return insert + _on_conflict(table)


# Per-row columns of a page (tenant and chat are the page's), as PostgreSQL arrays: times as
# timestamptz, the rest as text (uuid and jsonb cast per element).
PAGE_COLUMNS = MESSAGE_COLUMNS[2:]
TIME_COLUMNS = {"created_at", "last_modified_at", "last_edited_at", "deleted_at"}
ELEMENT_CASTS = {
    "sender_oid": "sender_oid::uuid",
    "event": "event::jsonb",
    "attachments": "attachments::jsonb",
    "mentions": "mentions::jsonb",
    "reactions": "reactions::jsonb",
}


@functools.cache
def _page_upsert_sql() -> str:
    """PostgreSQL: a page, its chat's last message and watermark in one statement of constant text.

    One array parameter per column (not one parameter per value): the text is the same whatever
    the page size, so it is short to send and to parse. The chat row is updated only when its
    last message time or its watermark moves, once (a statement may not update a row twice).
    Nothing is written unless the tenant is active, held so (`tenant_hold`) for the statement;
    it answers whether it was.
    """
    table, chats = Message._meta.db_table, Chat._meta.db_table
    arrays = ", ".join(f"%({c})s::{'timestamptz' if c in TIME_COLUMNS else 'text'}[]" for c in PAGE_COLUMNS)
    selected = ", ".join(ELEMENT_CASTS.get(c, c) for c in PAGE_COLUMNS)
    moves_last = f"({chats}.last_message_at IS NULL OR {chats}.last_message_at < %(newest)s)"
    moves_mark = (
        f"(%(watermark)s::timestamptz IS NOT NULL AND ({chats}.watermark IS NULL OR {chats}.watermark < %(watermark)s))"
    )
    live = _hold_sql("postgresql", tenant="%(tenant)s", status="%(active)s")
    # The tables and columns are constants; every value is a parameter.
    return (
        f"WITH live AS ({live}), "  # noqa: S608
        f"page AS (INSERT INTO {table} ({', '.join(MESSAGE_COLUMNS)}, {STAMP}) "
        f"SELECT %(tenant)s, %(chat)s, {selected}, clock_timestamp() "
        f"FROM unnest({arrays}) AS page({', '.join(PAGE_COLUMNS)}) "
        "WHERE EXISTS (SELECT 1 FROM live) "
        f"{_on_conflict(table)}), "
        f"moved AS (UPDATE {chats} SET "
        f"last_message_at = CASE WHEN {moves_last} THEN %(newest)s ELSE {chats}.last_message_at END, "
        f"watermark = CASE WHEN {moves_mark} THEN %(watermark)s ELSE {chats}.watermark END, "
        f"synced_at = CASE WHEN {moves_mark} THEN %(now)s ELSE {chats}.synced_at END "
        f"WHERE {chats}.id = %(chat)s AND {chats}.tenant_id = %(tenant)s AND ({moves_last} OR {moves_mark}) "
        "AND EXISTS (SELECT 1 FROM live)) "
        "SELECT EXISTS (SELECT 1 FROM live)"
    )


def _page_upsert(chat: Chat, values: list[tuple[Any, ...]], watermark: dt.datetime | None) -> None:
    columns = list(zip(*values, strict=True))[2:]
    params: dict[str, Any] = {name: list(column) for name, column in zip(PAGE_COLUMNS, columns, strict=True)}
    params.update(
        tenant=chat.tenant_id,
        active=ACTIVE,
        chat=chat.pk,
        newest=max(params["created_at"]),
        watermark=watermark,
        now=dt.datetime.now(dt.UTC),
    )
    with connection.cursor() as cursor:
        cursor.execute(_page_upsert_sql(), params)
        live = cursor.fetchone()
    if not (live and live[0]):
        raise TenantGone(chat.tenant_id)


def _last_message_advance(chat: Chat, newest: dt.datetime) -> None:
    """The chat list orders by the newest message: a change notification may be the first to see it."""
    Chat.objects.filter(pk=chat.pk, tenant_id=chat.tenant_id).exclude(last_message_at__gte=newest).update(
        last_message_at=newest
    )


def _watermark_advance(chat: Chat, watermark: dt.datetime) -> None:
    Chat.objects.filter(pk=chat.pk, tenant_id=chat.tenant_id).exclude(watermark__gte=watermark).update(
        watermark=watermark, synced_at=dt.datetime.now(dt.UTC)
    )


def messages_upsert(*, chat: Chat, items: Iterable[dict[str, Any]], watermark: dt.datetime | None = None) -> int:
    """Upsert one page of Graph messages; with `watermark`, advance the chat's in the same transaction.
    TenantGone once the tenant is no longer active."""
    values = [_message_values(chat, item) for item in items]
    if values and connection.vendor == "postgresql":
        # One statement: its own transaction, or part of the caller's.
        _page_upsert(chat, values, watermark)
        return len(values)
    with transaction.atomic():
        tenant_hold(tenant_id=chat.tenant_id)
        if values:
            with connection.cursor() as cursor:
                cursor.execute(_upsert_sql(len(values)), [v for row in values for v in row])
            _last_message_advance(chat, max(row[MESSAGE_COLUMNS.index("created_at")] for row in values))
        if watermark is not None:
            _watermark_advance(chat, watermark)
    return len(values)


# what users do in the browser ------------------------------------------------------------------
def chat_mark_read(*, member: TenantUser, chat: Chat) -> None:
    ChatMember.objects.filter(tenant=member.tenant, chat=chat, oid=member.oid).update(
        last_read_at=dt.datetime.now(dt.UTC)
    )


def chat_unhide(*, chat: Chat) -> None:
    ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat, hidden=True).update(hidden=False)
