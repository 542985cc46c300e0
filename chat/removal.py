"""A disconnected tenant's chats leave the portal: the mirror's rows at once, its Graph
subscriptions as soon as Graph lets us delete them.

Only the member who created a subscription may delete it, with his own token, and his account
(token cache included) goes when the tenant is disconnected. So each owner's token cache is kept,
sealed, in a SubscriptionRemoval row until a worker has deleted his subscriptions, retrying while
Entra or Graph are unavailable, and for a day at most (`KEEP_FOR`): what is left then expires in
Graph by itself (subscriptions live GRAPH_SUBSCRIPTION_MINUTES at most). Beat picks up what a lost
task left.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.utils.translation import ngettext_lazy
from django.views.decorators.debug import sensitive_variables

from chat.models import Chat, ChatMember, ChatSyncState, GraphSubscription, Message, SubscriptionRemoval
from core import coordination, crypto, rotation
from identity import services as identity_services
from integrations import entra, graph
from tenants import services as tenant_services
from tenants.models import AuditEvent, CustomerTenant, TenantUser
from tenants.signals import Removed

log = logging.getLogger(__name__)
DELETE_CONCURRENCY = 5
# An owner's token cache is kept at most this long after the disconnection.
KEEP_FOR = dt.timedelta(hours=24)
# A removal no task touched for this long lost its task: beat queues it again.
IDLE_AFTER = dt.timedelta(minutes=30)
LOCK_SECONDS = 300


class RemovalDeferred(Exception):
    """Entra or Graph could not answer now: try the rest again later."""


def _context(tenant: CustomerTenant, oid: object) -> str:
    return f"graph-subscription-removal:{tenant.tid}:{oid}"


SEALED_CACHES = rotation.SealedColumn(
    "token caches kept to delete Graph subscriptions",
    SubscriptionRemoval,
    "sealed_cache",
    lambda row: _context(row.tenant, row.owner_oid),
    related=("tenant",),
)


# at disconnection (inside its transaction) ----------------------------------------------------
def mirror_remove(*, tenant: CustomerTenant) -> tuple[list[Removed], list[int]]:
    """Remove every mirrored row of the tenant: what was removed, and the SubscriptionRemoval rows
    for a worker (the subscriptions to delete in Graph)."""
    removals, unowned = _removals_record(tenant)
    GraphSubscription.objects.filter(tenant=tenant).delete()
    messages, _ = Message.objects.filter(tenant=tenant).delete()
    ChatMember.objects.filter(tenant=tenant).delete()
    ChatSyncState.objects.filter(tenant=tenant).delete()
    chats, _ = Chat.objects.filter(tenant=tenant).delete()
    removed = [
        Removed(chats, "chats", ngettext_lazy("%(count)d chat", "%(count)d chats", "count")),
        Removed(messages, "messages", ngettext_lazy("%(count)d message", "%(count)d messages", "count")),
        Removed(
            sum(len(r.graph_ids) for r in removals),
            "Teams change subscriptions, being deleted in Microsoft Graph",
            ngettext_lazy(
                "%(count)d Teams change subscription, being deleted in Microsoft Graph",
                "%(count)d Teams change subscriptions, being deleted in Microsoft Graph",
                "count",
            ),
        ),
        Removed(
            unowned,
            "Teams change subscriptions left to expire in Microsoft Graph within three days",
            ngettext_lazy(
                "%(count)d Teams change subscription left to expire in Microsoft Graph within three days",
                "%(count)d Teams change subscriptions left to expire in Microsoft Graph within three days",
                "count",
            ),
        ),
    ]
    return removed, [removal.pk for removal in removals]


@sensitive_variables("serialized")
def _removals_record(tenant: CustomerTenant) -> tuple[list[SubscriptionRemoval], int]:
    """A removal per owner of the tenant's subscriptions; and how many have no token to go with."""
    owners: dict[TenantUser, list[str]] = defaultdict(list)
    for sub in GraphSubscription.objects.filter(tenant=tenant).select_related("owner__tenant"):
        owners[sub.owner].append(sub.graph_id)
    removals, unowned = [], 0
    for owner, graph_ids in owners.items():
        try:
            serialized = identity_services.token_cache_load(member=owner)
        except crypto.DecryptionError:
            serialized = ""
        if not serialized:
            unowned += len(graph_ids)  # nothing to delete them with: Graph expires them
            continue
        sealed = crypto.seal(serialized, context=_context(tenant, owner.oid))
        removals.append(
            SubscriptionRemoval.objects.create(
                tenant=tenant, owner_oid=owner.oid, graph_ids=graph_ids, sealed_cache=sealed
            )
        )
    return removals, unowned


# in a worker ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    deleted: int = 0
    gone: int = 0  # expired or deleted already (404)
    refused: int = 0  # Graph said no for good (403, 400): left to expire


def subscriptions_delete(*, removal_id: int) -> str:
    """Delete a removal's subscriptions in Graph: `done`, `given_up` (it can no longer succeed),
    `busy` (another worker has it), `gone`; RemovalDeferred when Entra or Graph should be asked
    again later."""
    try:
        with coordination.held(_lock_name(removal_id), timeout=LOCK_SECONDS, wait=0):
            removal = SubscriptionRemoval.objects.select_related("tenant__vendor").filter(pk=removal_id).first()
            return "gone" if removal is None else _delete(removal)
    except coordination.Busy:
        return "busy"


def _lock_name(removal_id: int) -> str:
    return f"subscription-removal:{removal_id}"


@sensitive_variables("token")
def _delete(removal: SubscriptionRemoval) -> str:
    removal.attempts += 1
    removal.save(update_fields=["attempts", "updated_at"])
    try:
        token = _owner_token(removal)
    except crypto.DecryptionError:
        return _finish(removal, reason="token_cache_unreadable")
    except entra.EntraError as exc:
        if exc.transient:
            raise RemovalDeferred(exc.error) from None
        return _finish(removal, reason=f"entra:{exc.error}")
    left, outcome = graph.run_with_session(token, lambda session: _delete_all(session, removal.graph_ids))
    removal.deleted += outcome.deleted
    removal.gone += outcome.gone
    removal.refused += outcome.refused
    removal.graph_ids = left
    removal.save(update_fields=["graph_ids", "deleted", "gone", "refused", "updated_at"])
    if left:
        raise RemovalDeferred(f"{len(left)} not deleted yet")
    return _finish(removal, reason="")


@sensitive_variables("serialized", "token")
def _owner_token(removal: SubscriptionRemoval) -> str:
    """The owner's Graph token from the kept cache (kept refreshed: no refresh token redeemed twice)."""
    tenant = removal.tenant
    context = _context(tenant, removal.owner_oid)
    serialized = crypto.unseal(removal.sealed_cache, context=context)
    token = entra.acquire_user_token(
        tenant_services.vendor_entra_app(tenant.vendor),
        cache=serialized,
        tid=str(tenant.tid),
        oid=str(removal.owner_oid),
        scopes=graph.CHAT_SCOPES,
        min_valid_seconds=300,
    )
    if token.cache is not None:
        removal.sealed_cache = crypto.seal(token.cache, context=context)
        removal.save(update_fields=["sealed_cache", "updated_at"])
    return token.access_token


async def _delete_all(session: graph.GraphSession, graph_ids: list[str]) -> tuple[list[str], Outcome]:
    """Delete each subscription: the ids to try again (Graph busy or unreachable), and what came of the rest."""
    limit, outcome = asyncio.Semaphore(DELETE_CONCURRENCY), Outcome()

    async def delete(graph_id: str) -> str | None:
        async with limit:
            try:
                await session.delete_subscription(graph_id)
            except graph.GraphError as exc:
                if exc.transient:
                    return graph_id
                if exc.status == 404:
                    outcome.gone += 1
                else:
                    outcome.refused += 1
                return None
        outcome.deleted += 1
        return None

    results = await asyncio.gather(*(delete(graph_id) for graph_id in graph_ids))
    return [graph_id for graph_id in results if graph_id is not None], outcome


def removal_give_up(*, removal_id: int, reason: str) -> str:
    """Stop trying (the subscriptions left expire in Graph by themselves); `busy` if a worker has it."""
    try:
        with coordination.held(_lock_name(removal_id), timeout=LOCK_SECONDS, wait=0):
            removal = SubscriptionRemoval.objects.select_related("tenant__vendor").filter(pk=removal_id).first()
            return "gone" if removal is None else _finish(removal, reason=reason)
    except coordination.Busy:
        return "busy"


def _finish(removal: SubscriptionRemoval, *, reason: str) -> str:
    tenant_services.audit(
        vendor=removal.tenant.vendor,
        kind=AuditEvent.Kind.GRAPH_CLEANUP,
        tenant=removal.tenant,
        oid=str(removal.owner_oid),
        reason=reason[:64],
        deleted=removal.deleted,
        already_gone=removal.gone,
        refused=removal.refused,
        left_to_expire=len(removal.graph_ids),
        attempts=removal.attempts,
    )
    removal.delete()  # the owner's token cache with it
    return "given_up" if reason else "done"


# beat ------------------------------------------------------------------------------------------
def removals_expire() -> int:
    """Give up the removals kept longest (their owners' tokens go); how many."""
    cutoff = dt.datetime.now(dt.UTC) - KEEP_FOR
    old = SubscriptionRemoval.objects.filter(created_at__lt=cutoff)  # all tenants: beat's maintenance
    return sum(
        removal_give_up(removal_id=pk, reason="kept_too_long") == "given_up" for pk in old.values_list("pk", flat=True)
    )


def removals_idle() -> list[int]:
    """The removals no task has touched lately: their task was lost."""
    cutoff = dt.datetime.now(dt.UTC) - IDLE_AFTER
    return list(SubscriptionRemoval.objects.filter(updated_at__lt=cutoff).values_list("pk", flat=True))  # all tenants
