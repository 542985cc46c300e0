"""Keeping the mirror fresh: Graph change-notification subscriptions and the periodic resync.

One subscription per chat (Graph allows one per app and chat), created with the delegated token
of one portal member of the chat (its `owner`) for the member's most recently active chats.
Only the SHA-256 of the secret `clientState` is kept: a notification whose `clientState` hashes
to it is genuine, and names the chat to sync for the owner. Subscriptions are renewed by their
owner before they expire; an owner who can no longer get a token hands the chat to another
portal member of it until the subscription runs out. Notifications can be lost (Graph drops
them after its retries), so active members are also resynced periodically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse

from chat import services
from chat.models import Chat, ChatMember, ChatSyncState, GraphSubscription
from chat.sync import SyncStopped, member_token, sync_stop
from core import coordination
from integrations import graph
from tenants.models import CustomerTenant, TenantUser

log = logging.getLogger(__name__)

# After Graph says a chat has a subscription of ours that we have no record of (another worker's
# not yet committed, or one that outlived its row), leave the chat to the resync for this long.
TAKEN_RETRY_SECONDS = 3600
# A burst of notifications for one chat makes one queued sync; the task clears the mark when it
# starts reading, and the mark expires anyway should the task be lost.
NOTIFIED_MARK_SECONDS = 60
CREATE_CONCURRENCY = 5
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
ACTIVE = CustomerTenant.Status.ACTIVE


def client_state_hash(client_state: str) -> str:
    return hashlib.sha256(client_state.encode()).hexdigest()


def notification_urls() -> tuple[str, str]:
    """Where Graph sends change notifications, and lifecycle events."""
    base = settings.GRAPH_NOTIFICATION_URL
    return base + reverse("graph_notifications"), base + reverse("graph_lifecycle")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _expiry() -> dt.datetime:
    return _now() + dt.timedelta(minutes=settings.GRAPH_SUBSCRIPTION_MINUTES)


def wanted_chat_ids(member: TenantUser) -> set[int]:
    """The member's most recently active chats, those that deserve a subscription."""
    chats = Chat.objects.filter(tenant=member.tenant, members__oid=member.oid).order_by(
        F("last_message_at").desc(nulls_last=True), "-pk"
    )
    return set(chats.values_list("pk", flat=True)[: settings.GRAPH_SUBSCRIPTIONS_PER_MEMBER])


def _taken_key(chat: Chat) -> str:
    return f"graph-subscription-taken:{chat.tenant_id}:{chat.pk}"


def _notified_key(subscription: GraphSubscription) -> str:
    return f"graph-notified:{subscription.tenant_id}:{subscription.chat_id}"


def _inherited_key(subscription: GraphSubscription) -> str:
    return f"graph-subscription-inherited:{subscription.pk}"


def _token_or_stop(member: TenantUser) -> str | None:
    """The member's Graph token, or None once his sync is stopped; SyncDeferred when Entra is down."""
    try:
        return member_token(member)
    except SyncStopped as exc:
        sync_stop(member=member, reason=str(exc))
        return None


# creating ------------------------------------------------------------------------------------
def subscriptions_ensure(*, member: TenantUser) -> list[str]:
    """Subscribe to those of the member's most active chats that have no subscription; the Graph ids
    of the chats subscribed to."""
    if not settings.GRAPH_NOTIFICATION_URL or member.tenant.status != ACTIVE:
        return []
    try:
        # One at a time per member: the member's subscriptions are his to create and delete.
        with coordination.held(f"chat-subscriptions:{member.pk}", timeout=300, wait=0):
            return _ensure(member)
    except coordination.Busy:
        return []


def _ensure(member: TenantUser) -> list[str]:
    missing = [
        chat
        for chat in Chat.objects.filter(tenant=member.tenant, pk__in=wanted_chat_ids(member), subscriptions=None)
        if coordination.get(_taken_key(chat)) is None
    ]
    if not missing:
        return []
    token = _token_or_stop(member)
    if token is None:
        return []
    results = graph.run_with_session(token, lambda session: _create_all(session, missing))
    created = [chat.graph_id for chat, secret, result in results if _record(member, chat, secret, result, token)]
    log.info("member %s: %d of %d chat subscriptions created", member.pk, len(created), len(missing))
    return created


async def _create_all(
    session: graph.GraphSession, chats: list[Chat]
) -> list[tuple[Chat, str, dict[str, Any] | graph.GraphError]]:
    notify, lifecycle = notification_urls()
    limit = asyncio.Semaphore(CREATE_CONCURRENCY)  # each creation waits for Graph's handshake

    async def create(chat: Chat) -> tuple[Chat, str, dict[str, Any] | graph.GraphError]:
        secret = secrets.token_urlsafe(32)  # Graph allows 128 characters
        async with limit:
            try:
                made = await session.subscribe_chat_messages(
                    chat_id=chat.graph_id,
                    notification_url=notify,
                    lifecycle_url=lifecycle,
                    client_state=secret,
                    expires=_expiry(),
                )
            except graph.GraphError as exc:
                return chat, secret, exc
        return chat, secret, made

    return list(await asyncio.gather(*(create(chat) for chat in chats)))


def _record(member: TenantUser, chat: Chat, secret: str, result: dict[str, Any] | graph.GraphError, token: str) -> bool:
    if isinstance(result, graph.GraphError):
        if result.status == 403 and result.code == "ExtensionError":
            # Graph's one subscription per app and chat exists already, and it is not one we
            # know the clientState of. If it is this member's (a worker died before recording
            # it), it goes and the next sync subscribes; else the resync keeps the chat fresh.
            known = set(
                GraphSubscription.objects.filter(tenant_id=chat.tenant_id, chat=chat).values_list("graph_id", flat=True)
            )
            orphans = graph.run_with_session(token, lambda session: _delete_orphans(session, chat, known))
            if not orphans:
                coordination.put(_taken_key(chat), "1", seconds=TAKEN_RETRY_SECONDS)
        log.info("member %s: chat %s not subscribed: %s %s", member.pk, chat.pk, result.status, result.code)
        return False
    try:
        with transaction.atomic():
            services.tenant_hold(tenant_id=chat.tenant_id)
            GraphSubscription.objects.create(
                tenant=member.tenant,
                chat=chat,
                owner=member,
                graph_id=result["id"],
                client_state_hash=client_state_hash(secret),
                expires_at=services.required_time(result["expirationDateTime"]),
            )
    except (IntegrityError, services.TenantGone) as exc:
        # Another worker recorded one meanwhile, or the tenant was disconnected: Graph's goes.
        log.warning("chat %s: subscription not recorded (%s); deleting it", chat.pk, type(exc).__name__)
        graph.run_with_session(token, lambda session: _delete_quietly(session, result["id"]))
        return False
    return True


async def _delete_orphans(session: graph.GraphSession, chat: Chat, known: set[str]) -> int:
    """Delete the user's subscriptions to this chat that we have no record of (`known`); how many."""
    resource = f"/chats/{chat.graph_id}/messages"
    orphans = [s["id"] for s in await session.subscriptions() if s.get("resource") == resource]
    orphans = [graph_id for graph_id in orphans if graph_id not in known]
    for graph_id in orphans:
        await _delete_quietly(session, graph_id)
    return len(orphans)


async def _delete_quietly(session: graph.GraphSession, graph_id: str) -> None:
    try:
        await session.delete_subscription(graph_id)
    except graph.GraphError as exc:
        if exc.status != 404:
            raise


# renewing ------------------------------------------------------------------------------------
def subscriptions_due() -> list[int]:
    """Forget expired subscriptions (Graph deleted them); the owners (ids) of those due for renewal."""
    now = _now()
    GraphSubscription.objects.filter(expires_at__lte=now).delete()  # all tenants: Graph deleted them
    due = GraphSubscription.objects.filter(tenant__status=ACTIVE).filter(
        Q(expires_at__lte=now + dt.timedelta(minutes=settings.GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES))
        | Q(status=GraphSubscription.Status.REAUTHORIZE)
    )
    return sorted(set(due.values_list("owner_id", flat=True)))


def subscriptions_renew(*, member: TenantUser) -> int:
    """Renew the member's subscriptions due for it (those of chats he no longer wants are deleted)."""
    margin = _now() + dt.timedelta(minutes=settings.GRAPH_SUBSCRIPTION_RENEW_BEFORE_MINUTES)
    due = [
        sub
        for sub in GraphSubscription.objects.filter(tenant=member.tenant, owner=member, tenant__status=ACTIVE)
        .filter(Q(expires_at__lte=margin) | Q(status=GraphSubscription.Status.REAUTHORIZE))
        .select_related("chat")
        # Inherited from an owner who lost his token: nobody else may renew it, it runs out.
        if coordination.get(_inherited_key(sub)) is None
    ]
    if not due:
        return 0
    token = _token_or_stop(member)
    if token is None:
        _hand_over(due)
        return 0
    wanted = wanted_chat_ids(member)
    results = graph.run_with_session(token, lambda session: _renew_all(session, due, wanted))
    return sum(_renewed(sub, result) for sub, result in results)


async def _renew_all(
    session: graph.GraphSession, due: list[GraphSubscription], wanted: set[int]
) -> list[tuple[GraphSubscription, dict[str, Any] | graph.GraphError | None]]:
    async def renew(sub: GraphSubscription) -> dict[str, Any] | graph.GraphError | None:
        try:
            if sub.chat_id not in wanted:
                # Left the chat, or it fell out of his most active ones: free Graph's slot.
                await _delete_quietly(session, sub.graph_id)
                return None
            return await session.renew_subscription(sub.graph_id, expires=_expiry())
        except graph.GraphError as exc:
            return exc

    return [(sub, await renew(sub)) for sub in due]


def _renewed(sub: GraphSubscription, result: dict[str, Any] | graph.GraphError | None) -> bool:
    if result is None:
        sub.delete()
        return False
    if isinstance(result, graph.GraphError):
        log.info("subscription %s not renewed: %s %s", sub.pk, result.status, result.code)
        if result.status in (403, 404):
            # Gone in Graph (or not the owner's): the chat is subscribed again by a member's next sync.
            sub.delete()
        return False
    sub.expires_at = services.required_time(result["expirationDateTime"])
    sub.renewed_at, sub.status = _now(), GraphSubscription.Status.ACTIVE
    sub.save(update_fields=["expires_at", "renewed_at", "status"])
    return True


def _hand_over(subscriptions: Iterable[GraphSubscription]) -> None:
    """The owner lost his token: another portal member of each chat gets its notifications until it
    runs out (Graph lets only its creator renew it), then subscribes anew; no member: forget it."""
    for sub in subscriptions:
        heir = _heir(sub)
        if heir is None:
            sub.delete()
            continue
        try:
            with transaction.atomic():
                services.tenant_hold(tenant_id=sub.tenant_id)  # the heir stays while this commits
                sub.owner = heir
                sub.save(update_fields=["owner"])
        except services.TenantGone:
            return  # disconnected: its subscriptions are being deleted
        seconds = int((sub.expires_at - _now()).total_seconds())
        coordination.put(_inherited_key(sub), str(heir.pk), seconds=seconds)


def _heir(sub: GraphSubscription) -> TenantUser | None:
    members = ChatMember.objects.filter(tenant_id=sub.tenant_id, chat_id=sub.chat_id).values("oid")
    return (
        TenantUser.objects.filter(tenant_id=sub.tenant_id, tenant__status=ACTIVE, oid__in=members)
        .exclude(pk=sub.owner_id)
        .exclude(chat_sync__status=ChatSyncState.Status.STOPPED)
        .order_by(F("last_sign_in_at").desc(nulls_last=True))
        .first()
    )


# lifecycle events ----------------------------------------------------------------------------
def subscription_lifecycle(*, subscription: GraphSubscription, event: str) -> str:
    """Act on a lifecycle event; says what happened: `reauthorized`, `removed`, `missed`, `gone`, `stopped`."""
    if event == "missed":
        return "missed"
    if event == "subscriptionRemoved":
        subscription.delete()
        return "removed"
    if event != "reauthorizationRequired":
        return "ignored"
    return _reauthorize(subscription)


def _reauthorize(sub: GraphSubscription) -> str:
    if sub.status != GraphSubscription.Status.REAUTHORIZE:
        sub.status = GraphSubscription.Status.REAUTHORIZE
        sub.save(update_fields=["status"])
    token = _token_or_stop(sub.owner)
    if token is None:
        _hand_over([sub])
        return "stopped"
    try:
        graph.run_with_session(token, lambda session: session.reauthorize_subscription(sub.graph_id))
    except graph.GraphError as exc:
        if exc.status not in (403, 404):
            raise
        sub.delete()
        return "gone"
    sub.status = GraphSubscription.Status.ACTIVE
    sub.save(update_fields=["status"])
    return "reauthorized"


# notifications (the webhook) ------------------------------------------------------------------
@dataclass(frozen=True)
class Accepted:
    subscription: GraphSubscription
    item: dict[str, Any]


def _tid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _genuine(sub: GraphSubscription, item: dict[str, Any]) -> bool:
    client_state = item.get("clientState")
    if not isinstance(client_state, str) or str(sub.tenant.tid) != _tid(item.get("tenantId")):
        return False
    return hmac.compare_digest(client_state_hash(client_state), sub.client_state_hash)


def notifications_accept(*, items: list[Any]) -> tuple[list[Accepted], int]:
    """The items whose subscription, tenant and clientState match ours, and how many did not."""
    given = len(items)
    items = [item for item in items if isinstance(item, dict)]
    ids = {str(item.get("subscriptionId")) for item in items}
    candidates: dict[str, list[GraphSubscription]] = defaultdict(list)
    for row in GraphSubscription.objects.filter(graph_id__in=ids, tenant__status=ACTIVE).select_related("tenant"):
        candidates[row.graph_id].append(row)
    accepted = []
    for item in items:
        match = next((s for s in candidates[str(item.get("subscriptionId"))] if _genuine(s, item)), None)
        if match is not None:
            accepted.append(Accepted(match, item))
    return accepted, given - len(accepted)


def notification_mark(*, subscription: GraphSubscription) -> bool:
    """True for the first notification of a chat since its sync last started reading: enqueue one."""
    marked = coordination.client().set(
        coordination.key(_notified_key(subscription)), "1", nx=True, ex=NOTIFIED_MARK_SECONDS
    )
    return bool(marked)


def notification_forget(*, subscription: GraphSubscription) -> None:
    coordination.forget([_notified_key(subscription)])


def notification_unmark(*, subscription: GraphSubscription) -> None:
    """The sync starts reading: a notification from now on asks for another one."""
    notification_forget(subscription=subscription)
    GraphSubscription.objects.filter(pk=subscription.pk, tenant_id=subscription.tenant_id).update(
        last_notified_at=_now()
    )


# the periodic resync -------------------------------------------------------------------------
def members_to_resync() -> QuerySet[TenantUser]:
    """Members of active tenants who signed in lately, unless their sync stopped since they last did."""
    recent = TenantUser.objects.filter(
        tenant__status=ACTIVE, last_sign_in_at__gte=_now() - dt.timedelta(days=settings.CHAT_ACTIVE_DAYS)
    )
    # A member who signed in again after his sync stopped (sign in again, consent granted
    # anew) is resynced: the sign-in is what the stop waited for.
    stopped = ChatSyncState.objects.filter(member__in=recent, status=ChatSyncState.Status.STOPPED).exclude(
        finished_at__lt=F("member__last_sign_in_at")
    )
    return recent.exclude(pk__in=stopped.values("member_id")).order_by("pk")
