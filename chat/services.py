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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Page:
    """One page of a chat's messages as Graph listed them; `watermark` comes with its last page."""

    chat: Chat
    items: list[dict[str, Any]]
    watermark: dt.datetime | None = None


# PostgreSQL: pages are COPYed into a session's temporary table and merged from it in one
# statement, which empties it (an outer transaction may write again before it commits).
STAGING = "chat_message_staging"
_STAGING_CREATE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} ON COMMIT DELETE ROWS AS "  # noqa: S608 - constants
    f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM {Message._meta.db_table} WITH NO DATA"
)
_STAGING_COPY = f"COPY {STAGING} ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN"


@functools.cache
def _merge_sql() -> str:
    table, columns = Message._meta.db_table, ", ".join(MESSAGE_COLUMNS)
    return (
        f"WITH staged AS (DELETE FROM {STAGING} RETURNING {columns}) "  # noqa: S608 - constants
        f"INSERT INTO {table} ({columns}, {STAMP}) SELECT {columns}, clock_timestamp() FROM staged "
        + _on_conflict(table)
    )


@functools.cache
def _chats_advance_sql() -> str:
    """Each written chat's last message time and watermark, where they move forward, at once."""
    chats = Chat._meta.db_table
    moves_last = f"(m.newest IS NOT NULL AND ({chats}.last_message_at IS NULL OR {chats}.last_message_at < m.newest))"
    moves_mark = f"(m.watermark IS NOT NULL AND ({chats}.watermark IS NULL OR {chats}.watermark < m.watermark))"
    return (
        f"UPDATE {chats} SET "  # noqa: S608 - constants; every value is a parameter
        f"last_message_at = CASE WHEN {moves_last} THEN m.newest ELSE {chats}.last_message_at END, "
        f"watermark = CASE WHEN {moves_mark} THEN m.watermark ELSE {chats}.watermark END, "
        f"synced_at = CASE WHEN {moves_mark} THEN %(now)s ELSE {chats}.synced_at END "
        "FROM unnest(%(chats)s::bigint[], %(newest)s::timestamptz[], %(watermarks)s::timestamptz[]) "
        "AS m(id, newest, watermark) "
        f"WHERE {chats}.id = m.id AND {chats}.tenant_id = %(tenant)s AND ({moves_last} OR {moves_mark})"
    )


def _pages_write_postgresql(tenant_id: int, pages: list[Page], rows: list[list[tuple[Any, ...]]]) -> None:
    created = MESSAGE_COLUMNS.index("created_at")
    with connection.cursor() as cursor:
        if any(rows):
            cursor.execute(_STAGING_CREATE)
            with cursor.copy(_STAGING_COPY) as copy:
                for page_rows in rows:
                    for row in page_rows:
                        copy.write_row(row)
            cursor.execute(_merge_sql())
        cursor.execute(
            _chats_advance_sql(),
            {
                "chats": [page.chat.pk for page in pages],
                "newest": [max((r[created] for r in page_rows), default=None) for page_rows in rows],
                "watermarks": [page.watermark for page in pages],
                "tenant": tenant_id,
                "now": dt.datetime.now(dt.UTC),
            },
        )


def _pages_write_generic(pages: list[Page], rows: list[list[tuple[Any, ...]]]) -> None:
    """SQLite: one INSERT per page, then its chat's last message time and watermark."""
    created = MESSAGE_COLUMNS.index("created_at")
    for page, page_rows in zip(pages, rows, strict=True):
        if page_rows:
            with connection.cursor() as cursor:
                cursor.execute(_upsert_sql(len(page_rows)), [v for row in page_rows for v in row])
            _last_message_advance(page.chat, max(row[created] for row in page_rows))
        if page.watermark is not None:
            _watermark_advance(page.chat, page.watermark)


def _last_message_advance(chat: Chat, newest: dt.datetime) -> None:
    """The chat list orders by the newest message: a change notification may be the first to see it."""
    Chat.objects.filter(pk=chat.pk, tenant_id=chat.tenant_id).exclude(last_message_at__gte=newest).update(
        last_message_at=newest
    )


def _watermark_advance(chat: Chat, watermark: dt.datetime) -> None:
    Chat.objects.filter(pk=chat.pk, tenant_id=chat.tenant_id).exclude(watermark__gte=watermark).update(
        watermark=watermark, synced_at=dt.datetime.now(dt.UTC)
    )


def pages_upsert(*, pages: Iterable[Page]) -> int:
    """Upsert pages of Graph messages of one tenant's chats (a sync's round: one page of each of up to
    20 chats) in one transaction, newer wins; each chat's watermark, where its page carries one,
    advances in the same transaction. Returns the rows written; TenantGone once the tenant is no
    longer active (nothing is written then)."""
    pages = list(pages)
    if not pages:
        return 0
    tenant_id = pages[0].chat.tenant_id
    if any(page.chat.tenant_id != tenant_id for page in pages):
        raise ValueError("pages_upsert() writes one tenant's pages at a time")
    if len({page.chat.pk for page in pages}) != len(pages):
        raise ValueError("pages_upsert() writes one page of a chat at a time")
    rows = [[_message_values(page.chat, item) for item in page.items] for page in pages]
    with transaction.atomic():
        tenant_hold(tenant_id=tenant_id)
        if connection.vendor == "postgresql":
            _pages_write_postgresql(tenant_id, pages, rows)
        else:
            _pages_write_generic(pages, rows)
    return sum(len(page_rows) for page_rows in rows)


def messages_upsert(*, chat: Chat, items: Iterable[dict[str, Any]], watermark: dt.datetime | None = None) -> int:
    """Upsert one page of Graph messages (see `pages_upsert`)."""
    return pages_upsert(pages=[Page(chat, list(items), watermark)])


# what users do in the browser ------------------------------------------------------------------
def chat_mark_read(*, member: TenantUser, chat: Chat) -> None:
    ChatMember.objects.filter(tenant=member.tenant, chat=chat, oid=member.oid).update(
        last_read_at=dt.datetime.now(dt.UTC)
    )


def chat_unhide(*, chat: Chat) -> None:
    ChatMember.objects.filter(tenant_id=chat.tenant_id, chat=chat, hidden=True).update(hidden=False)
