"""A disconnected tenant's chats leave the portal: the mirror's rows at once, its Graph
subscriptions as soon as Graph lets us delete them.

Only the member who created a subscription may delete it, with his own token, and his account
(token cache included) goes when the tenant is disconnected. So each owner's token cache is kept,
sealed, in a SubscriptionRemoval row until his subscriptions are deleted, at most until Graph has
expired them anyway (GRAPH_SUBSCRIPTION_MINUTES): a worker deletes them, retrying while Entra or
Graph are unavailable; beat picks up what a lost task left.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from chat.models import Chat, ChatMember, ChatSyncState, GraphSubscription, Message, SubscriptionRemoval
from core import crypto, rotation
from identity import services as identity_services
from integrations import entra, graph
from tenants import services as tenant_services
from tenants.models import AuditEvent, CustomerTenant, TenantUser

log = logging.getLogger(__name__)
DELETE_CONCURRENCY = 5


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
def mirror_remove(*, tenant: CustomerTenant) -> tuple[dict[str, int], list[int]]:
    """Remove every mirrored row of the tenant. What was removed, counted (chats, messages, and
    the subscriptions to delete in Graph), and the SubscriptionRemoval rows for a worker."""
    removals = _removals_record(tenant)
    GraphSubscription.objects.filter(tenant=tenant).delete()
    messages, _ = Message.objects.filter(tenant=tenant).delete()
    ChatMember.objects.filter(tenant=tenant).delete()
    ChatSyncState.objects.filter(tenant=tenant).delete()
    chats, _ = Chat.objects.filter(tenant=tenant).delete()
    counts = {"chats": chats, "messages": messages, "graph_subscriptions": sum(len(r.graph_ids) for r in removals)}
    return counts, [removal.pk for removal in removals]


@sensitive_variables("serialized")
def _removals_record(tenant: CustomerTenant) -> list[SubscriptionRemoval]:
    owners: dict[TenantUser, list[str]] = defaultdict(list)
    for sub in GraphSubscription.objects.filter(tenant=tenant).select_related("owner__tenant"):
        owners[sub.owner].append(sub.graph_id)
    removals = []
    for owner, graph_ids in owners.items():
        try:
            serialized = identity_services.token_cache_load(member=owner)
        except crypto.DecryptionError:
            serialized = ""
        if not serialized:
            # No token to delete them with: Graph expires them.
            log.warning(
                "tenant %s: %d subscription(s) of member %s left to expire", tenant.pk, len(graph_ids), owner.pk
            )
            continue
        removals.append(
            SubscriptionRemoval.objects.create(
                tenant=tenant,
                owner_oid=owner.oid,
                graph_ids=graph_ids,
                sealed_cache=crypto.seal(serialized, context=_context(tenant, owner.oid)),
            )
        )
    return removals


# in a worker ------------------------------------------------------------------------------------
@sensitive_variables("serialized", "token")
def subscriptions_delete(*, removal: SubscriptionRemoval) -> str:
    """Delete the removal's subscriptions in Graph: `done`, or `given_up` when that can no longer
    succeed; RemovalDeferred when Entra or Graph should be asked again later."""
    removal.attempts += 1
    removal.save(update_fields=["attempts", "updated_at"])
    tenant = removal.tenant
    try:
        serialized = crypto.unseal(removal.sealed_cache, context=_context(tenant, removal.owner_oid))
        token = entra.acquire_user_token(
            tenant_services.vendor_entra_app(tenant.vendor),
            cache=serialized,
            tid=str(tenant.tid),
            oid=str(removal.owner_oid),
            scopes=graph.CHAT_SCOPES,
            min_valid_seconds=300,
        )
    except crypto.DecryptionError:
        return removal_give_up(removal=removal, reason="token_cache_unreadable")
    except entra.EntraError as exc:
        if exc.transient:
            raise RemovalDeferred(exc.error) from None
        return removal_give_up(removal=removal, reason=f"entra:{exc.error}")
    left = graph.run_with_session(token.access_token, lambda session: _delete_all(session, removal.graph_ids))
    removal.deleted += len(removal.graph_ids) - len(left)
    removal.graph_ids = left
    removal.save(update_fields=["graph_ids", "deleted", "updated_at"])
    if left:
        raise RemovalDeferred(f"{len(left)} not deleted yet")
    _finish(removal, reason="")
    return "done"


async def _delete_all(session: graph.GraphSession, graph_ids: list[str]) -> list[str]:
    """Delete each subscription; the ids to try again (Graph busy or unreachable)."""
    limit = asyncio.Semaphore(DELETE_CONCURRENCY)

    async def delete(graph_id: str) -> str | None:
        async with limit:
            try:
                await session.delete_subscription(graph_id)
            except graph.GraphError as exc:
                # 404: expired or deleted already; 403: not ours to delete, ever.
                return graph_id if exc.transient else None
        return None

    results = await asyncio.gather(*(delete(graph_id) for graph_id in graph_ids))
    return [graph_id for graph_id in results if graph_id is not None]


def removal_give_up(*, removal: SubscriptionRemoval, reason: str) -> str:
    """Stop trying: the subscriptions left expire in Graph by themselves."""
    _finish(removal, reason=reason)
    return "given_up"


def _finish(removal: SubscriptionRemoval, *, reason: str) -> None:
    tenant_services.audit(
        vendor=removal.tenant.vendor,
        kind=AuditEvent.Kind.GRAPH_CLEANUP,
        tenant=removal.tenant,
        oid=str(removal.owner_oid),
        reason=reason,
        deleted=removal.deleted,
        left_to_expire=len(removal.graph_ids),
        attempts=removal.attempts,
    )
    removal.delete()  # the owner's token cache with it


def removals_due() -> tuple[list[int], int]:
    """Beat: removals no task touched lately (their task was lost), and how many were given up
    because Graph has expired their subscriptions by now."""
    now = dt.datetime.now(dt.UTC)
    expired = SubscriptionRemoval.objects.filter(  # all tenants: beat's maintenance
        created_at__lt=now - dt.timedelta(minutes=settings.GRAPH_SUBSCRIPTION_MINUTES)
    ).select_related("tenant__vendor")
    given_up = [removal_give_up(removal=removal, reason="expired") for removal in expired]
    idle = SubscriptionRemoval.objects.filter(updated_at__lt=now - dt.timedelta(minutes=30))  # all tenants
    return list(idle.values_list("pk", flat=True)), len(given_up)
