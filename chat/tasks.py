"""Celery tasks: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from chat import removal, subscriptions
from chat.models import ChatSyncState, GraphSubscription
from chat.sync import SyncDeferred, chat_sync_member
from integrations import graph
from tenants.models import CustomerTenant, TenantUser

log = logging.getLogger(__name__)

# Redis redelivers an unacknowledged task after its visibility timeout: a countdown must stay
# below it, or the task would run twice at once.
MAX_COUNTDOWN = 300
# The share of its interval over which a resync queues the members' syncs.
RESYNC_SPREAD = 0.8


def _countdown_limit() -> float:
    return float(min(MAX_COUNTDOWN, settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] // 2))


def _countdown(task: Any, wanted: float) -> float:
    """Growing with each retry (a long sync holds the member's lock), below the visibility timeout."""
    return min(_countdown_limit(), max(1.0, wanted, float(2.0**task.request.retries)))


def _retry(task: Any, exc: SyncDeferred) -> Exception:
    """Graph or Entra asked us to wait: the task runs again after that (bounded by max_retries)."""
    log.info("%s deferred: %s", task.name, exc.reason)
    retry: Exception = task.retry(countdown=_countdown(task, exc.countdown))
    return retry


def _member(member_id: int) -> TenantUser | None:
    """The member, if his tenant is still active (re-checked: the task was queued earlier)."""
    return (
        TenantUser.objects.select_related("tenant__vendor")
        .filter(pk=member_id, tenant__status=CustomerTenant.Status.ACTIVE)
        .first()
    )


def _subscription(subscription_id: int) -> GraphSubscription | None:
    sub = (
        GraphSubscription.objects.select_related("tenant", "chat", "owner__tenant__vendor")
        .filter(pk=subscription_id, tenant__status=CustomerTenant.Status.ACTIVE)
        .first()
    )
    return sub if sub is not None and sub.owner.tenant_id == sub.tenant_id == sub.chat.tenant_id else None


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=8)
def sync_member_chats(self: Any, member_id: int, full: bool = False, chat_ids: list[str] | None = None) -> str:
    member = TenantUser.objects.select_related("tenant__vendor").filter(pk=member_id).first()
    if member is None:
        return "gone"
    try:
        state = chat_sync_member(member=member, full=full, chat_ids=chat_ids)
    except SyncDeferred as exc:
        raise _retry(self, exc) from exc
    if state.status == ChatSyncState.Status.IDLE and settings.GRAPH_NOTIFICATION_URL:
        # The chat list is fresh: subscribe to the chats that have no subscription yet.
        transaction.on_commit(partial(ensure_member_subscriptions.delay, member.pk))
    return str(state.status)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=10)
def sync_chats(self: Any, member_id: int, chat_ids: list[str]) -> str:
    """Just these chats of the member (Graph ids), e.g. after a lifecycle event or new subscriptions."""
    member = _member(member_id)
    if member is None:
        return "skipped"
    try:
        return str(chat_sync_member(member=member, chat_ids=chat_ids, only=True).status)
    except SyncDeferred as exc:
        raise _retry(self, exc) from exc


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=10)
def sync_notified_chat(self: Any, subscription_id: int) -> str:
    """A change notification named this subscription's chat: sync it for the owner."""
    sub = _subscription(subscription_id)
    if sub is None:
        return "skipped"
    subscriptions.notification_unmark(subscription=sub)
    try:
        return str(chat_sync_member(member=sub.owner, chat_ids=[sub.chat.graph_id], only=True).status)
    except SyncDeferred as exc:
        raise _retry(self, exc) from exc


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=5)
def ensure_member_subscriptions(self: Any, member_id: int) -> int:
    member = _member(member_id)
    if member is None:
        return 0
    try:
        created = subscriptions.subscriptions_ensure(member=member)
    except SyncDeferred as exc:
        raise _retry(self, exc) from exc
    if created:
        # What changed between the member's sync and the subscriptions was notified to nobody.
        transaction.on_commit(partial(sync_chats.delay, member.pk, created))
    return len(created)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def renew_subscriptions() -> int:
    """Beat: one renewal task per owner whose subscriptions expire within the margin."""
    owners = subscriptions.subscriptions_due()
    for member_id in owners:
        transaction.on_commit(partial(renew_member_subscriptions.delay, member_id))
    return len(owners)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=3)
def renew_member_subscriptions(self: Any, member_id: int) -> int:
    member = _member(member_id)
    if member is None:
        return 0
    try:
        return subscriptions.subscriptions_renew(member=member)
    except SyncDeferred as exc:
        # The next beat looks again; the retry only spares the subscriptions closest to expiry.
        raise _retry(self, exc) from exc


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=5)
def handle_subscription_lifecycle(self: Any, subscription_id: int, event: str) -> str:
    sub = _subscription(subscription_id)
    if sub is None:
        return "skipped"
    owner, chat_id = sub.owner, sub.chat.graph_id
    try:
        outcome = subscriptions.subscription_lifecycle(subscription=sub, event=event)
    except SyncDeferred as exc:
        raise _retry(self, exc) from exc
    except graph.GraphError as exc:
        if not exc.transient:
            raise
        raise self.retry(countdown=_countdown(self, exc.retry_after or 5)) from exc
    if outcome in ("removed", "gone"):
        transaction.on_commit(partial(ensure_member_subscriptions.delay, owner.pk))
    if outcome in ("removed", "gone", "reauthorized", "missed"):
        # Graph sent nothing while the subscription was paused or gone.
        transaction.on_commit(partial(sync_chats.delay, owner.pk, [chat_id]))
    return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def resync_active_members(full: bool = False) -> int:
    """Beat: a sync of every active member, for what notifications missed (`full`: every chat's messages)."""
    ids = list(subscriptions.members_to_resync().values_list("pk", flat=True))
    # Spread over most of the interval (at most the longest countdown): queued at once, a thousand
    # members' syncs would hold every worker while notifications' syncs of one chat wait behind.
    interval = settings.CHAT_FULL_RESYNC_SECONDS if full else settings.CHAT_RESYNC_SECONDS
    step = min(interval * RESYNC_SPREAD, _countdown_limit()) / max(1, len(ids))
    for n, member_id in enumerate(ids):
        queue = partial(sync_member_chats.apply_async, (member_id,), {"full": full}, countdown=n * step)
        transaction.on_commit(queue)
    return len(ids)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=8)
def remove_graph_subscriptions(self: Any, removal_id: int) -> str:
    """A disconnected tenant's subscriptions of one owner, deleted in Graph (best effort, retried)."""
    try:
        return removal.subscriptions_delete(removal_id=removal_id)
    except removal.RemovalDeferred as exc:
        if self.request.retries >= self.max_retries:
            return removal.removal_give_up(removal_id=removal_id, reason=f"retries:{exc}")
        raise self.retry(countdown=_countdown(self, 30)) from exc


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def retry_subscription_removals() -> int:
    """Beat: give up the removals kept too long; queue again those whose task was lost."""
    removal.removals_expire()
    idle = removal.removals_idle()
    for removal_id in idle:
        transaction.on_commit(partial(remove_graph_subscriptions.delay, removal_id))
    return len(idle)
