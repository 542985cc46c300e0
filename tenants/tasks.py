"""Celery tasks: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

from functools import partial

from celery import shared_task
from django.db import transaction

from tenants import registration, services
from tenants.models import CustomerTenant


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def confirm_active_tenants() -> int:
    """Beat: enqueue a consent check for every active tenant."""
    ids = list(CustomerTenant.objects.filter(status=CustomerTenant.Status.ACTIVE).values_list("pk", flat=True))
    for tenant_id in ids:
        transaction.on_commit(partial(confirm_tenant_consent.delay, tenant_id))
    return len(ids)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(services.TransientEntraError,),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=5,
)
def confirm_tenant_consent(tenant_id: int) -> str:
    tenant = (
        CustomerTenant.objects.filter(pk=tenant_id, status=CustomerTenant.Status.ACTIVE)
        .select_related("vendor")
        .first()
    )
    if tenant is None:
        return "skipped"
    return services.tenant_confirm_consent(tenant=tenant)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def purge_stale_registrations() -> int:
    """Beat: forget the sealed registrations whose admin never came back from signing in."""
    return registration.registrations_purge()
