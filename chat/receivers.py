"""chat's part in events of the apps below it (each signal has this one receiver)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from chat import removal, tasks
from tenants.models import CustomerTenant, TenantUser
from tenants.signals import Removed


def member_signed_in(sender: Any, *, member: TenantUser, **kwargs: Any) -> None:
    """His chats are mirrored by the time he opens them (a stopped sync starts again)."""
    transaction.on_commit(partial(tasks.sync_member_chats.delay, member.pk))


def tenant_activated(sender: Any, *, tenant: CustomerTenant, admin: TenantUser, **kwargs: Any) -> None:
    """The admin who connected the tenant is a Teams user too: his chats, now that it is active."""
    transaction.on_commit(partial(tasks.sync_member_chats.delay, admin.pk))


def tenant_disconnected(sender: Any, *, tenant: CustomerTenant, **kwargs: Any) -> list[Removed]:
    """The tenant's mirror goes now; its Graph subscriptions are deleted by a worker."""
    removed, removal_ids = removal.mirror_remove(tenant=tenant)
    for removal_id in removal_ids:
        transaction.on_commit(partial(tasks.remove_graph_subscriptions.delay, removal_id))
    return removed
