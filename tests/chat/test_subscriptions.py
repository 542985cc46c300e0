"""Subscriptions against devcloud, with the portal served over HTTPS for Graph's deliveries."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from django.test import TestCase

from chat import subscriptions, tasks
from chat.models import ChatSyncState, GraphSubscription, Message
from chat.sync import chat_sync_member
from tenants.models import CustomerTenant, TenantUser
from tests.asgi_server import PortalServer, serve_portal
from tests.chat.test_sync import BOB
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, USERS, DevCloud
from tests.portal_flow import Person, load_vendors

ALICE = USERS["alice"][1]


def wait_for(check: Callable[[], Any], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def graph_subscriptions(devcloud: DevCloud) -> dict[str, dict[str, Any]]:
    return {s["chat_id"]: s for s in devcloud.control("GET", "/subscriptions")["subscriptions"]}


def member(oid: str) -> TenantUser:
    return TenantUser.objects.select_related("tenant__vendor").get(oid=oid)


@pytest.fixture
def eager() -> Iterator[None]:
    """Queued tasks run at once, where they are queued (the webhook's request thread)."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def portal(devcloud_settings: DevCloud, settings: Any) -> Iterator[PortalServer]:
    """The cast signed in (alice connected Fabrikam, bob a member), the portal served for Graph."""
    # Tokens that never outlive the sync's 15-minute margin: each run asks Entra again.
    devcloud_settings.control("PUT", "/settings", json={"access_token_lifetime": 600})
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    Person(devcloud_settings, USERS["bob"][0]).sign_in()
    with serve_portal(devcloud_settings) as server:
        settings.GRAPH_NOTIFICATION_URL = server.url
        yield server


def subscribed_bob() -> TenantUser:
    bob = member(BOB)
    assert chat_sync_member(member=bob).status == ChatSyncState.Status.IDLE
    assert len(subscriptions.subscriptions_ensure(member=bob)) == 4
    return bob


transactional = pytest.mark.django_db(transaction=True)


@transactional
def test_a_subscription_is_created_through_graphs_handshake_with_the_portal(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = subscribed_bob()
    in_graph = graph_subscriptions(devcloud_settings)
    rows = {s.chat.graph_id: s for s in GraphSubscription.objects.filter(tenant=bob.tenant).select_related("chat")}
    assert set(rows) == set(in_graph)
    for chat_id, sub in rows.items():
        graph_sub = in_graph[chat_id]
        assert (sub.graph_id, sub.owner_id, sub.status) == (graph_sub["id"], bob.pk, "active")
        assert graph_sub["notificationUrl"] == f"{portal.url}/graph/notifications/"
        assert graph_sub["lifecycleNotificationUrl"] == f"{portal.url}/graph/lifecycle/"
        # Only the hash is kept.
        assert sub.client_state_hash == subscriptions.client_state_hash(graph_sub["clientState"])
        assert graph_sub["clientState"] not in sub.client_state_hash
        assert sub.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4100)
    validations = [
        d for d in devcloud_settings.control("GET", "/notifications")["deliveries"] if d["kind"] == "validation"
    ]
    assert len(validations) == 8 and {d["status"] for d in validations} == {200}
    # A second run has nothing to do and asks Graph nothing.
    devcloud_settings.control("DELETE", "/requests")
    assert subscriptions.subscriptions_ensure(member=bob) == []
    assert devcloud_settings.requests(service="graph") == []


@transactional
def test_a_message_typed_in_teams_reaches_the_mirror_through_the_webhook(
    portal: PortalServer, devcloud_settings: DevCloud, eager: None
) -> None:
    bob = subscribed_bob()
    chat_id = next(iter(graph_subscriptions(devcloud_settings)))
    devcloud_settings.control(
        "POST", f"/chats/{quote(chat_id, safe='')}/messages", json={"from": BOB, "content": "<p>via the webhook</p>"}
    )
    message = wait_for(lambda: Message.objects.filter(tenant=bob.tenant, body="<p>via the webhook</p>").first())
    assert message.chat.graph_id == chat_id
    delivered = wait_for(
        lambda: [
            d.get("status")
            for d in devcloud_settings.control("GET", "/notifications")["deliveries"]
            if d["kind"] == "created" and "status" in d
        ]
    )
    assert delivered == [202]
    assert GraphSubscription.objects.get(chat=message.chat).last_notified_at is not None


@transactional
def test_a_subscription_graph_has_but_we_lost_is_deleted_and_made_again(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = subscribed_bob()
    lost = GraphSubscription.objects.filter(tenant=bob.tenant).first()
    assert lost is not None
    lost.delete()  # Graph still has it (a worker died before recording it); its clientState is gone
    devcloud_settings.control("DELETE", "/requests")
    assert subscriptions.subscriptions_ensure(member=bob) == []
    assert GraphSubscription.objects.filter(tenant=bob.tenant).count() == 3
    refused = [r for r in devcloud_settings.requests(service="graph") if r["status"] == 403]
    assert len(refused) == 1
    # Bob's own orphan was deleted in Graph: the next round subscribes again, with a secret we know.
    assert subscriptions.subscriptions_ensure(member=bob) == [lost.chat.graph_id]
    assert GraphSubscription.objects.filter(tenant=bob.tenant).count() == 4
    assert lost.graph_id not in {s["id"] for s in devcloud_settings.control("GET", "/subscriptions")["subscriptions"]}


@transactional
def test_reauthorization_required_reauthorizes_the_subscription(
    portal: PortalServer, devcloud_settings: DevCloud, eager: None
) -> None:
    bob = subscribed_bob()
    chat_id, graph_sub = next(iter(graph_subscriptions(devcloud_settings).items()))
    devcloud_settings.control("POST", f"/subscriptions/{graph_sub['id']}/reauthorization-required")
    wait_for(lambda: not graph_subscriptions(devcloud_settings)[chat_id]["reauthorization_required"])
    sub = GraphSubscription.objects.get(graph_id=graph_sub["id"])
    assert sub.status == GraphSubscription.Status.ACTIVE
    reauthorized = [r for r in devcloud_settings.requests(service="graph") if r["path"].endswith("/reauthorize")]
    assert [r["status"] for r in reauthorized] == [204]
    # Notifications flow again.
    devcloud_settings.control(
        "POST", f"/chats/{quote(chat_id, safe='')}/messages", json={"from": BOB, "content": "<p>resumed</p>"}
    )
    wait_for(lambda: Message.objects.filter(tenant=bob.tenant, body="<p>resumed</p>").exists())


@transactional
def test_a_removed_subscription_is_subscribed_again(
    portal: PortalServer, devcloud_settings: DevCloud, eager: None
) -> None:
    bob = subscribed_bob()
    chat_id, graph_sub = next(iter(graph_subscriptions(devcloud_settings).items()))
    devcloud_settings.control("POST", f"/subscriptions/{graph_sub['id']}/remove")
    again = wait_for(
        lambda: (
            graph_subscriptions(devcloud_settings).get(chat_id, {}).get("id") not in (None, graph_sub["id"])
            and GraphSubscription.objects.filter(tenant=bob.tenant, chat__graph_id=chat_id)
            .exclude(graph_id=graph_sub["id"])
            .first()
        )
    )
    assert again.graph_id == graph_subscriptions(devcloud_settings)[chat_id]["id"]
    assert not GraphSubscription.objects.filter(graph_id=graph_sub["id"]).exists()


@transactional
def test_renewal_moves_the_expiration_in_graph_and_drops_chats_no_longer_wanted(
    portal: PortalServer, devcloud_settings: DevCloud, settings: Any
) -> None:
    bob = subscribed_bob()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    GraphSubscription.objects.filter(tenant=bob.tenant).update(expires_at=soon)
    settings.GRAPH_SUBSCRIPTIONS_PER_MEMBER = 3
    assert tasks.renew_subscriptions() == 1  # one owner
    before = {c: s["expires_ms"] for c, s in graph_subscriptions(devcloud_settings).items()}
    assert tasks.renew_member_subscriptions.apply(args=[bob.pk]).result == 3
    after = graph_subscriptions(devcloud_settings)
    assert len(after) == 3 and set(after) < set(before)
    for chat_id, graph_sub in after.items():
        assert graph_sub["expires_ms"] > before[chat_id]
        row = GraphSubscription.objects.get(graph_id=graph_sub["id"])
        assert row.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4100) and row.renewed_at
    assert GraphSubscription.objects.filter(tenant=bob.tenant).count() == 3
    # Nothing due any more.
    assert tasks.renew_subscriptions() == 0


@transactional
def test_an_owner_who_lost_his_token_hands_shared_chats_to_another_member(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = subscribed_bob()
    GraphSubscription.objects.filter(tenant=bob.tenant).update(
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    )
    devcloud_settings.control("POST", f"/users/{BOB}/revoke-sessions")
    assert subscriptions.subscriptions_renew(member=bob) == 0
    state = ChatSyncState.objects.get(member=bob)
    assert (state.status, state.stopped_reason) == (ChatSyncState.Status.STOPPED, "sign_in_again")
    # Alice shares two of bob's chats; nobody else in the other two uses the portal.
    alice = member(ALICE)
    rows = GraphSubscription.objects.filter(tenant=bob.tenant)
    assert {r.owner_id for r in rows} == {alice.pk} and rows.count() == 2
    # Graph lets only bob renew them: alice leaves them to run out, then subscribes anew.
    devcloud_settings.control("DELETE", "/requests")
    assert subscriptions.subscriptions_renew(member=alice) == 0
    assert devcloud_settings.requests(service="graph") == []


@transactional
def test_revoked_consent_stops_the_members_sync_with_a_reason(
    portal: PortalServer, devcloud_settings: DevCloud
) -> None:
    bob = member(BOB)
    chat_sync_member(member=bob)
    devcloud_settings.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    assert tasks.ensure_member_subscriptions.apply(args=[bob.pk]).result == 0
    state = ChatSyncState.objects.get(member=bob)
    assert (state.status, state.stopped_reason) == (ChatSyncState.Status.STOPPED, "consent_revoked")
    assert CustomerTenant.objects.get(tid=FABRIKAM).status == CustomerTenant.Status.CONSENT_REVOKED
    assert not GraphSubscription.objects.exists()
    assert tasks.ensure_member_subscriptions.apply(args=[bob.pk]).result == 0  # tenant no longer active


@pytest.mark.django_db
def test_a_successful_sync_enqueues_the_members_subscriptions(
    devcloud_settings: DevCloud, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    Person(devcloud_settings, USERS["bob"][0]).sign_in()
    bob = member(BOB)
    ensured: list[int] = []
    monkeypatch.setattr(tasks.ensure_member_subscriptions, "delay", ensured.append)
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.sync_member_chats.apply(args=[bob.pk])
    assert ensured == []  # no GRAPH_NOTIFICATION_URL: no subscriptions
    settings.GRAPH_NOTIFICATION_URL = "https://portal.example.com"
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = tasks.sync_member_chats.apply(args=[bob.pk])
    assert result.result == "idle"
    assert ensured == [bob.pk]


@pytest.mark.django_db
def test_resync_active_members_enqueues_the_right_members_only(
    devcloud_settings: DevCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_vendors(devcloud_settings)
    Person(devcloud_settings, USERS["alice"][0]).connect()
    for who in ("bob", "april", "cloe", "tom"):
        Person(devcloud_settings, USERS[who][0]).sign_in()
    Person(devcloud_settings, "nina@northwind.example").connect()
    Person(devcloud_settings, USERS["charlie"][0]).sign_in()
    now = dt.datetime.now(dt.UTC)
    people = {who: member(USERS[who][1]) for who in ("alice", "bob", "april", "cloe", "tom", "charlie")}
    # april has not signed in for a month; cloe's sync stopped after her last sign-in; tom's
    # stopped before it (he signed in again since); charlie's tenant revoked consent.
    TenantUser.objects.filter(pk=people["april"].pk).update(last_sign_in_at=now - dt.timedelta(days=30))
    for who, when in (("cloe", now + dt.timedelta(seconds=1)), ("tom", now - dt.timedelta(hours=1))):
        ChatSyncState.objects.create(
            tenant=people[who].tenant,
            member=people[who],
            status="stopped",
            stopped_reason="sign_in_again",
            finished_at=when,
        )
    ChatSyncState.objects.create(tenant=people["bob"].tenant, member=people["bob"], status="idle")
    CustomerTenant.objects.filter(pk=people["charlie"].tenant_id).update(status=CustomerTenant.Status.CONSENT_REVOKED)
    queued: list[tuple[int, bool, float]] = []

    def apply_async(args: tuple[int], kwargs: dict[str, bool], countdown: float) -> None:
        queued.append((args[0], kwargs["full"], countdown))

    monkeypatch.setattr(tasks.sync_member_chats, "apply_async", apply_async)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.resync_active_members(full=True) == 3
    assert sorted(q[:2] for q in queued) == sorted((people[who].pk, True) for who in ("alice", "bob", "tom"))
    # Spread over the interval, below the broker's visibility timeout: not all at once.
    assert [q[2] for q in queued] == [0, 100, 200]  # 300 s (the longest countdown) among 3


@pytest.mark.django_db
def test_a_resync_of_many_members_is_spread_over_most_of_its_interval(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CHAT_RESYNC_SECONDS = 300
    monkeypatch.setattr(tasks.subscriptions, "members_to_resync", lambda: TenantUser.objects.none())
    assert tasks.resync_active_members() == 0
    members = list(range(1, 1001))

    class Members:
        def values_list(self, *_: Any, **__: Any) -> list[int]:
            return members

    monkeypatch.setattr(tasks.subscriptions, "members_to_resync", Members)
    countdowns: list[float] = []
    monkeypatch.setattr(
        tasks.sync_member_chats, "apply_async", lambda args, kwargs, countdown: countdowns.append(countdown)
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.resync_active_members() == 1000
    assert countdowns == sorted(countdowns) and countdowns[0] == 0
    assert 230 < countdowns[-1] < 240  # 0.8 of 300 s
    assert max(b - a for a, b in itertools.pairwise(countdowns)) < 0.25
