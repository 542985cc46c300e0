"""Disconnecting a tenant removes what the portal keeps of it, counted before and after: its people,
their token caches, the mirror and its Graph subscriptions (deleted in Graph); another tenant's
rows stay, and so do the consent and audit records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chat import removal
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
    said = page.content.decode()
    assert (
        f"Removed from the portal: 2 people, {before['chats']} chats, {before['messages']} messages." in said
        and f"{subscribed} Teams change subscriptions are being deleted in Microsoft Graph." in said
    )
    audited = AuditEvent.objects.get(kind=AuditEvent.Kind.TENANT_DISCONNECTED)
    assert audited.details["removed"] == {
        "people": 2,
        "chats": before["chats"],
        "messages": before["messages"],
        "graph_subscriptions": subscribed,
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
    row = SubscriptionRemoval.objects.select_related("tenant__vendor").get()  # bob's; no worker runs here
    with pytest.raises(removal.RemovalDeferred):
        removal.subscriptions_delete(removal=row)
    assert len(row.graph_ids) == 2 and row.deleted == 2  # two refused with a 503, kept for later
    assert len(graph_subscriptions(devcloud_settings)) == 2
    assert removal.subscriptions_delete(removal=row) == "done"
    assert graph_subscriptions(devcloud_settings) == {}
    assert not SubscriptionRemoval.objects.exists()  # the owner's token cache gone with it


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
    row = SubscriptionRemoval.objects.select_related("tenant__vendor").get()
    assert removal.subscriptions_delete(removal=row) == "given_up"
    assert not SubscriptionRemoval.objects.exists()
    cleanup = AuditEvent.objects.get(kind=AuditEvent.Kind.GRAPH_CLEANUP)
    assert cleanup.reason.startswith("entra:") and cleanup.details["left_to_expire"] == 4
