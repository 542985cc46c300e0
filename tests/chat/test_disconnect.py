"""Disconnecting a tenant removes what the portal keeps of it, counted before and after: its people,
their token caches, the mirror and its Graph subscriptions (deleted in Graph); another tenant's
rows stay, and so do the consent and audit records."""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from chat import removal, services, tasks
from chat.models import Chat, ChatMember, ChatSyncState, GraphSubscription, Message, SubscriptionRemoval
from chat.sync import chat_sync_member
from identity.models import EntraTokenCache
from tenants.models import AuditEvent, ConsentRecord, CustomerTenant, TenantUser
from tests.asgi_server import PortalServer
from tests.chat.test_subscriptions import eager, graph_subscriptions, member, portal, subscribed_bob
from tests.devcloud_server import FABRIKAM, NORTHWIND, USERS, DevCloud
from tests.portal_flow import Person

__all__ = ["eager", "portal"]  # fixtures
transactional = pytest.mark.django_db(transaction=True)


def rows(tid: str) -> dict[str, int]:
    tenant = CustomerTenant.objects.get(tid=tid)
    return {
        "people": TenantUser.objects.filter(tenant=tenant).count(),
        "token caches": EntraTokenCache.objects.filter(tenant=tenant).count(),
        "chats": Chat.objects.filter(tenant=tenant).count(),
        "chat members": ChatMember.objects.filter(tenant=tenant).count(),
        "messages": Message.objects.filter(tenant=tenant).count(),
        "sync states": ChatSyncState.objects.filter(tenant=tenant).count(),
        "subscriptions": GraphSubscription.objects.filter(tenant=tenant).count(),
        "kept caches": SubscriptionRemoval.objects.filter(tenant=tenant).count(),
        "consent records": ConsentRecord.objects.filter(tenant=tenant).count(),
    }


@pytest.fixture
def northwind(portal: PortalServer, devcloud_settings: DevCloud) -> Iterator[None]:
    """Another tenant with a mirror of its own: charlie's chats, synced."""
    Person(devcloud_settings, "nina@northwind.example").connect()
    Person(devcloud_settings, USERS["charlie"][0]).sign_in()
    chat_sync_member(member=member(USERS["charlie"][1]))
    yield


@transactional
def test_disconnecting_removes_every_row_of_the_tenant_and_its_graph_subscriptions(
    portal: PortalServer, northwind: None, devcloud_settings: DevCloud, eager: None
) -> None:
    subscribed_bob()
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    before, others = rows(FABRIKAM), rows(NORTHWIND)
    subscribed = before["subscriptions"]  # bob's four, and alice's of a chat bob is not in
    assert before["people"] == before["token caches"] == 2 and subscribed > 4
    assert min(before["chats"], before["chat members"], before["messages"], before["sync states"]) > 0
    assert len(graph_subscriptions(devcloud_settings)) == subscribed

    page: Any = alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"}, follow=True)

    after = rows(FABRIKAM)
    assert after == {**dict.fromkeys(before, 0), "consent records": before["consent records"]}
    assert rows(NORTHWIND) == others
    assert graph_subscriptions(devcloud_settings) == {}  # deleted in Graph by the worker
    said = html.unescape(page.content.decode())
    assert (
        f"Removed from the portal: 2 people, {before['chats']} chats, {before['messages']} messages, "
        f"{subscribed} Teams change subscriptions, being deleted in Microsoft Graph." in said
    )
    audited = AuditEvent.objects.get(kind=AuditEvent.Kind.TENANT_DISCONNECTED)
    assert audited.details["removed"] == {
        "people": 2,
        "chats": before["chats"],
        "messages": before["messages"],
        "Teams change subscriptions, being deleted in Microsoft Graph": subscribed,
        "Teams change subscriptions left to expire in Microsoft Graph within three days": 0,
    }
    cleanups = AuditEvent.objects.filter(kind=AuditEvent.Kind.GRAPH_CLEANUP)  # one per owner
    assert {(c.oid, c.reason, c.details["left_to_expire"]) for c in cleanups} == {
        (USERS["bob"][1], "", 0),
        (USERS["alice"][1], "", 0),
    }
    assert sum(c.details["deleted"] for c in cleanups) == subscribed


@transactional
def test_subscriptions_graph_could_not_delete_are_tried_again_later(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    subscribed_bob()
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    fault = {"service": "graph", "path": "/v1.0/subscriptions/", "method": "DELETE", "status": 503, "count": 2}
    devcloud_settings.control("POST", "/faults", json=fault)
    alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"})
    row = SubscriptionRemoval.objects.get()  # bob's; no worker runs here
    with pytest.raises(removal.RemovalDeferred):
        removal.subscriptions_delete(removal_id=row.pk)
    row.refresh_from_db()
    assert (len(row.graph_ids), row.deleted, row.attempts) == (2, 2, 1)  # two answered 503: kept for later
    assert len(graph_subscriptions(devcloud_settings)) == 2
    assert removal.subscriptions_delete(removal_id=row.pk) == "done"
    assert graph_subscriptions(devcloud_settings) == {}
    assert not SubscriptionRemoval.objects.exists()  # the owner's token cache gone with it
    cleanup = AuditEvent.objects.get(kind=AuditEvent.Kind.GRAPH_CLEANUP)
    assert (cleanup.details["deleted"], cleanup.details["already_gone"], cleanup.details["attempts"]) == (4, 0, 2)


@transactional
def test_an_owner_whose_sign_in_no_longer_works_leaves_his_subscriptions_to_expire(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    subscribed_bob()
    # Bob's cached access token will not do: the next one needs his refresh token.
    devcloud_settings.control("PUT", "/settings", json={"access_token_lifetime": 120})
    Person(devcloud_settings, USERS["bob"][0]).sign_in()
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"})
    devcloud_settings.control("POST", f"/users/{USERS['bob'][1]}/revoke-sessions")
    row = SubscriptionRemoval.objects.get()
    assert removal.subscriptions_delete(removal_id=row.pk) == "given_up"
    assert not SubscriptionRemoval.objects.exists()
    cleanup = AuditEvent.objects.get(kind=AuditEvent.Kind.GRAPH_CLEANUP)
    assert cleanup.reason.startswith("entra:") and cleanup.details["left_to_expire"] == 4


@transactional
def test_after_the_retries_and_after_a_day_the_subscriptions_are_left_to_expire(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    subscribed_bob()
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    devcloud_settings.control("POST", "/faults", json={"service": "graph", "method": "DELETE", "status": 503})
    alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"})
    first = SubscriptionRemoval.objects.get()
    second = SubscriptionRemoval.objects.create(
        tenant_id=first.tenant_id, owner_oid=first.owner_oid, graph_ids=first.graph_ids, sealed_cache=first.sealed_cache
    )
    # The task's last retry gives up.
    outcome = tasks.remove_graph_subscriptions.apply(args=[first.pk], retries=8).get()
    assert outcome == "given_up" and not SubscriptionRemoval.objects.filter(pk=first.pk).exists()
    # Beat: a removal no task touched lately is queued again; one kept a day is given up.
    SubscriptionRemoval.objects.filter(pk=second.pk).update(updated_at=dt.datetime.now(dt.UTC) - removal.IDLE_AFTER * 2)
    assert removal.removals_idle() == [second.pk]
    SubscriptionRemoval.objects.filter(pk=second.pk).update(created_at=dt.datetime.now(dt.UTC) - removal.KEEP_FOR * 2)
    assert removal.removals_expire() == 1 and not SubscriptionRemoval.objects.exists()
    reasons = sorted(e.reason for e in AuditEvent.objects.filter(kind=AuditEvent.Kind.GRAPH_CLEANUP))
    assert reasons == ["kept_too_long", "retries:4 not deleted yet"]


@transactional
def test_subscriptions_whose_owner_has_no_token_cache_are_said_to_expire(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = subscribed_bob()
    EntraTokenCache.objects.filter(tenant=bob.tenant, member=bob).delete()
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    page: Any = alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"}, follow=True)
    assert "4 Teams change subscriptions left to expire in Microsoft Graph within three days" in html.unescape(
        page.content.decode()
    )
    assert not SubscriptionRemoval.objects.exists()


@transactional
def test_nothing_of_a_disconnected_tenant_is_written_again(portal: PortalServer, devcloud_settings: DevCloud) -> None:
    bob = subscribed_bob()
    chat = Chat.objects.filter(tenant=bob.tenant).first()
    assert chat is not None
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"})
    message = {"id": "1", "createdDateTime": "2026-01-01T00:00:00Z", "lastModifiedDateTime": "2026-01-01T00:00:00Z"}
    with pytest.raises(services.TenantGone):
        services.messages_upsert(chat=chat, items=[message])  # a sync that was under way
    with pytest.raises(services.TenantGone):
        services.chats_upsert(member=bob, items=[])
    assert chat_sync_member(member=bob).status == ChatSyncState.Status.STOPPED
    assert rows(FABRIKAM)["chats"] == rows(FABRIKAM)["messages"] == rows(FABRIKAM)["sync states"] == 0


@transactional
def test_a_disconnection_waits_for_a_write_under_way_and_removes_it_too(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = subscribed_bob()
    alice = Person(devcloud_settings, USERS["alice"][0])
    alice.sign_in()
    holding, written = threading.Event(), threading.Event()

    def write() -> None:
        # A sync's write: it holds the tenant, and commits a second later.
        try:
            with transaction.atomic():
                services.tenant_hold(tenant_id=bob.tenant_id)
                holding.set()
                time.sleep(1)
                Chat.objects.create(
                    tenant=bob.tenant, graph_id="19:late", chat_type="group", created_at=dt.datetime.now(dt.UTC)
                )
            written.set()
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert holding.wait(5)
    started = time.monotonic()
    alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"})
    writer.join(5)
    assert written.is_set() and time.monotonic() - started >= 0.5  # it waited for the write
    assert rows(FABRIKAM)["chats"] == 0  # and removed what it wrote
