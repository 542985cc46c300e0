"""The sync's write path (`chat.services.pages_upsert`): a `$batch` round's pages of several chats
in one transaction, newer wins, each chat's watermark and last message time only forward, nothing
once the tenant is gone. On PostgreSQL through a staging table and one merge; generic on SQLite."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chat import services
from chat.models import Chat, Message
from tenants.models import CustomerTenant
from tenants.services import vendor_save

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]
START = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
ALICE = str(uuid.uuid4())


def at(minutes: int) -> str:
    return services.graph_time(START + dt.timedelta(minutes=minutes))


def message(graph_id: str, minutes: int, *, modified: int | None = None, text: str = "hello", **extra: Any) -> dict:
    return {
        "id": graph_id,
        "messageType": "message",
        "createdDateTime": at(minutes),
        "lastModifiedDateTime": at(minutes if modified is None else modified),
        "from": {"user": {"id": ALICE, "displayName": "Alice Anders"}},
        "body": {"contentType": "html", "content": f"<p>{text}</p>"},
        **extra,
    }


def a_tenant(tid: uuid.UUID | None = None) -> CustomerTenant:
    vendor = vendor_save(
        name="Tailspin",
        slug=f"tailspin-{uuid.uuid4().hex[:8]}",
        client_id=str(uuid.uuid4()),
        client_secret="not-a-real-secret",
        acs_connection_string="endpoint=https://acs.example/;accesskey=a2V5",
    )
    return CustomerTenant.objects.create(
        vendor=vendor, tid=tid or uuid.uuid4(), domain="fabrikam.example", status=CustomerTenant.Status.ACTIVE
    )


def a_chat(tenant: CustomerTenant, name: str) -> Chat:
    return Chat.objects.create(tenant=tenant, graph_id=f"19:{name}@thread.v2", chat_type="group", created_at=START)


@pytest.fixture
def tenant() -> CustomerTenant:
    return a_tenant()


def bodies(chat: Chat) -> dict[str, str]:
    return dict(Message.objects.filter(chat=chat).values_list("graph_id", "body"))


def test_a_rounds_pages_of_several_chats_are_written_with_each_chats_watermark(tenant: CustomerTenant) -> None:
    one, two, three = a_chat(tenant, "one"), a_chat(tenant, "two"), a_chat(tenant, "three")
    mark = START + dt.timedelta(minutes=7)
    written = services.pages_upsert(
        pages=[
            services.Page(one, [message("1", 5), message("2", 7)], watermark=mark),  # one's last page
            services.Page(two, [message("1", 9), message("3", 3)]),  # more pages of two to come
            services.Page(three, [], watermark=START),  # nothing new in three
        ]
    )
    assert written == 4
    assert bodies(one) == {"1": "<p>hello</p>", "2": "<p>hello</p>"}
    assert set(bodies(two)) == {"1", "3"}  # the same Graph id in two chats is two messages
    for chat in (one, two, three):
        chat.refresh_from_db()
    assert (one.watermark, one.last_message_at) == (mark, START + dt.timedelta(minutes=7))
    assert one.synced_at is not None
    assert (two.watermark, two.last_message_at, two.synced_at) == (None, START + dt.timedelta(minutes=9), None)
    assert (three.watermark, three.last_message_at) == (START, None)
    stored = Message.objects.get(chat=one, graph_id="2")
    assert (stored.sender_name, str(stored.sender_oid), stored.created_at) == (
        "Alice Anders",
        ALICE,
        START + dt.timedelta(minutes=7),
    )


def test_watermarks_and_last_message_times_only_move_forward(tenant: CustomerTenant) -> None:
    chat = a_chat(tenant, "one")
    late = START + dt.timedelta(minutes=30)
    services.pages_upsert(pages=[services.Page(chat, [message("9", 30)], watermark=late)])
    # A page of older messages (a replay, a late page) with an older watermark moves neither.
    services.pages_upsert(pages=[services.Page(chat, [message("1", 1)], watermark=START)])
    chat.refresh_from_db()
    assert (chat.watermark, chat.last_message_at) == (late, late)
    assert set(bodies(chat)) == {"1", "9"}


def test_newer_wins_across_rounds_and_a_deletion_is_undone_only_by_a_newer_copy(tenant: CustomerTenant) -> None:
    chat = a_chat(tenant, "one")
    services.pages_upsert(pages=[services.Page(chat, [message("1", 0, modified=5, text="edited")])])
    services.pages_upsert(pages=[services.Page(chat, [message("1", 0, modified=1, text="stale")])])
    assert bodies(chat) == {"1": "<p>edited</p>"}
    deleted = message("1", 0, modified=6, text="", deletedDateTime=at(6))
    services.pages_upsert(pages=[services.Page(chat, [deleted])])
    services.pages_upsert(pages=[services.Page(chat, [message("1", 0, modified=5, text="edited")])])
    assert Message.objects.get(chat=chat).deleted_at is not None
    services.pages_upsert(pages=[services.Page(chat, [message("1", 0, modified=8, text="undone")])])
    restored = Message.objects.get(chat=chat)
    assert (restored.deleted_at, restored.body) == (None, "<p>undone</p>")


def test_writes_inside_one_outer_transaction_each_merge_only_their_own_rows(tenant: CustomerTenant) -> None:
    """The staging table is emptied by each merge, not only at commit: in a caller's transaction a
    later write never writes an earlier one's rows again (here: brings back what was removed)."""
    chat = a_chat(tenant, "one")
    with transaction.atomic():
        services.pages_upsert(pages=[services.Page(chat, [message("1", 0, modified=1, text="first")])])
        services.pages_upsert(pages=[services.Page(chat, [message("1", 0, modified=2, text="second")])])
        assert bodies(chat) == {"1": "<p>second</p>"}
        Message.objects.filter(chat=chat).delete()
        services.pages_upsert(pages=[services.Page(chat, [message("2", 3)])])
    assert bodies(chat) == {"2": "<p>hello</p>"}


def statements(pages: list[services.Page]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        services.pages_upsert(pages=pages)
    transactions = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(transactions)]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite writes page by page")
def test_a_round_takes_as_many_statements_for_twenty_chats_as_for_one(tenant: CustomerTenant) -> None:
    chats = [a_chat(tenant, f"c{n}") for n in range(21)]
    one = statements([services.Page(chats[0], [message("1", 1)], watermark=START)])
    twenty = statements([services.Page(c, [message(str(i), i) for i in range(50)], watermark=START) for c in chats[1:]])
    assert Message.objects.filter(tenant=tenant).count() == 1001
    # the tenant held, the staging table, COPY, its merge, the chats' times
    assert len(twenty) == len(one) == 5, twenty


def test_nothing_is_written_once_the_tenant_is_gone(tenant: CustomerTenant) -> None:
    chat = a_chat(tenant, "one")
    CustomerTenant.objects.filter(pk=tenant.pk).update(status=CustomerTenant.Status.DISCONNECTED)
    with pytest.raises(services.TenantGone):
        services.pages_upsert(pages=[services.Page(chat, [message("1", 0)], watermark=START)])
    chat.refresh_from_db()
    assert not Message.objects.filter(chat=chat).exists() and chat.watermark is None


def test_pages_of_two_tenants_or_two_pages_of_one_chat_are_refused(tenant: CustomerTenant) -> None:
    mine, theirs = a_chat(tenant, "one"), a_chat(a_tenant(), "one")
    with pytest.raises(ValueError, match="one tenant"):
        services.pages_upsert(pages=[services.Page(mine, [message("1", 0)]), services.Page(theirs, [message("1", 0)])])
    with pytest.raises(ValueError, match="one page of a chat"):
        services.pages_upsert(pages=[services.Page(mine, [message("1", 0)]), services.Page(mine, [message("2", 1)])])
    assert not Message.objects.exists()
    assert services.pages_upsert(pages=[]) == 0
