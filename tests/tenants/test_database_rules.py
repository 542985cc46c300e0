"""Rules the database keeps whatever writes to it: append-only records, PROTECTed foreign keys,
token versions that move with every status change (bulk, raw SQL or not)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.test import RequestFactory

from tenants.models import AppendOnlyError, AuditEvent, ConsentRecord, CustomerTenant, TenantUser, Vendor
from tenants.services import audit, vendor_save

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]
Status = CustomerTenant.Status
postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL trigger")


@pytest.fixture
def tenant() -> CustomerTenant:
    vendor = vendor_save(
        name="Tailspin",
        slug="tailspin",
        client_id=str(uuid.uuid4()),
        client_secret="not-a-real-secret",
        acs_connection_string="endpoint=https://acs.example/;accesskey=a2V5",
    )
    tenant = CustomerTenant.objects.create(vendor=vendor, tid=uuid.uuid4(), domain="fabrikam.example")
    ConsentRecord.objects.create(tenant=tenant, kind=ConsentRecord.Kind.GRANTED, confirmed_by="test")
    audit(vendor=vendor, kind=AuditEvent.Kind.CONSENT_GRANTED, tenant=tenant)
    return tenant


def raw(sql: str, *params: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def refused_by_the_database(change: Callable[[], object]) -> None:
    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        change()


# append-only --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [ConsentRecord, AuditEvent])
def test_records_refuse_updates_and_deletes_through_the_orm(tenant: CustomerTenant, model: Any) -> None:
    record = model.objects.get(tenant=tenant)
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk=record.pk).update(tid="")
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk=record.pk).delete()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        record.save()
    assert model.objects.filter(pk=record.pk).exists()


@postgresql_only
@pytest.mark.parametrize("table", ["tenants_consentrecord", "tenants_auditevent"])
def test_the_database_refuses_updates_and_deletes_of_records(tenant: CustomerTenant, table: str) -> None:
    refused_by_the_database(lambda: raw(f"UPDATE {table} SET created_at = now() WHERE tenant_id = %s", tenant.pk))  # noqa: S608
    refused_by_the_database(lambda: raw(f"DELETE FROM {table} WHERE tenant_id = %s", tenant.pk))  # noqa: S608
    assert ConsentRecord.objects.filter(tenant=tenant).count() == AuditEvent.objects.filter(tenant=tenant).count() == 1


def test_deleting_a_tenant_or_its_vendor_does_not_cascade_to_the_records(tenant: CustomerTenant) -> None:
    with pytest.raises(ProtectedError), transaction.atomic():
        tenant.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        tenant.vendor.delete()
    assert CustomerTenant.objects.filter(pk=tenant.pk).exists()


@postgresql_only
def test_the_database_refuses_to_delete_a_tenant_with_records(tenant: CustomerTenant) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        raw("SET CONSTRAINTS ALL IMMEDIATE")  # Django's foreign keys are checked at commit otherwise
        raw("DELETE FROM tenants_customertenant WHERE id = %s", tenant.pk)
    assert CustomerTenant.objects.filter(pk=tenant.pk).exists()


def test_the_admin_offers_no_deletion_of_vendors_tenants_or_records(tenant: CustomerTenant) -> None:
    request = RequestFactory().get("/admin/")
    for model, row in ((Vendor, tenant.vendor), (CustomerTenant, tenant), (ConsentRecord, None), (AuditEvent, None)):
        assert admin.site._registry[model].has_delete_permission(request, row) is False


# token versions ------------------------------------------------------------------------------
def version(tenant: CustomerTenant) -> int:
    return CustomerTenant.objects.values_list("token_version", flat=True).get(pk=tenant.pk)


def test_a_status_change_moves_the_tenants_token_version_however_it_is_written(tenant: CustomerTenant) -> None:
    start = version(tenant)
    CustomerTenant.objects.filter(pk=tenant.pk).update(status=Status.ACTIVE)  # bulk
    assert version(tenant) == start + 1
    tenant.status = Status.CONSENT_REVOKED
    tenant.save(update_fields=["status"])
    assert version(tenant) == start + 2
    CustomerTenant.objects.filter(pk=tenant.pk).update(status=Status.CONSENT_REVOKED)  # no change
    CustomerTenant.objects.filter(pk=tenant.pk).update(display_name="Fabrikam")
    assert version(tenant) == start + 2


def test_a_stale_copy_saved_back_never_moves_the_version_back(tenant: CustomerTenant) -> None:
    stale = CustomerTenant.objects.get(pk=tenant.pk)
    CustomerTenant.objects.filter(pk=tenant.pk).update(status=Status.ACTIVE)
    moved = version(tenant)
    stale.display_name = "Fabrikam"
    stale.status = Status.ACTIVE
    stale.save()  # every column, token_version as it was read
    assert version(tenant) == moved


@postgresql_only
def test_raw_sql_moves_the_version_too(tenant: CustomerTenant) -> None:
    start = version(tenant)
    raw("UPDATE tenants_customertenant SET status = 'disconnected' WHERE id = %s", tenant.pk)
    assert version(tenant) == start + 1


def test_a_role_change_moves_the_members_token_version(tenant: CustomerTenant, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user(username="member")
    member = TenantUser.objects.create(tenant=tenant, oid=uuid.uuid4(), user=user)
    TenantUser.objects.filter(pk=member.pk).update(portal_role=TenantUser.Role.ADMIN)
    TenantUser.objects.filter(pk=member.pk).update(display_name="Bob")
    assert TenantUser.objects.values_list("token_version", flat=True).get(pk=member.pk) == 1
