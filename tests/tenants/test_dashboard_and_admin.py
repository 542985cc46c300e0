from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenants import services
from tenants.models import (
    AppendOnlyError,
    AuditEvent,
    ConsentRecord,
    CustomerTenant,
    TenantUser,
    Vendor,
    VendorMembership,
)

pytestmark = pytest.mark.django_db
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


@pytest.fixture
def contoso() -> Vendor:
    return services.vendor_save(
        name="Contoso",
        slug="contoso",
        client_id=str(uuid.uuid4()),
        client_secret="x",
        acs_connection_string="endpoint=https://a/;accesskey=b",
    )


@pytest.fixture
def staff_client(contoso: Vendor) -> Client:
    user = get_user_model().objects.create_user("staff")
    VendorMembership.objects.create(vendor=contoso, tid=uuid.uuid4(), oid=uuid.uuid4(), user=user)
    client = Client()
    client.force_login(user)
    return client


def customers(
    vendor: Vendor, count: int, start: int = 0, status: str = CustomerTenant.Status.ACTIVE
) -> list[CustomerTenant]:
    made = []
    for i in range(start, start + count):
        tenant = CustomerTenant.objects.create(
            vendor=vendor, tid=uuid.uuid4(), display_name=f"Org {i:03}", domain=f"org{i}.example", status=status
        )
        user = get_user_model().objects.create_user(f"u{tenant.pk}")
        admin = TenantUser.objects.create(
            tenant=tenant,
            oid=uuid.uuid4(),
            user=user,
            display_name=f"Admin {i}",
            directory_roles=[GLOBAL_ADMIN],
            portal_role="admin",
        )
        services.consent_record_grant(tenant=tenant, admin=admin, scopes=["s"], confirmed_by="test")
        made.append(tenant)
    return made


def test_the_dashboard_paginates_with_a_constant_number_of_queries(contoso: Vendor, staff_client: Client) -> None:
    customers(contoso, 5)
    with CaptureQueriesContext(connection) as few:
        assert staff_client.get("/vendor/contoso/").status_code == 200
    customers(contoso, 30, start=5)
    with CaptureQueriesContext(connection) as many:
        page = staff_client.get("/vendor/contoso/").content.decode()
    assert len(many) == len(few)
    assert "Page 1 of 2" in page
    assert "Org 000" in page and "Org 024" in page and "Org 025" not in page
    second = staff_client.get("/vendor/contoso/?page=2").content.decode()
    assert "Page 2 of 2" in second and "Org 025" in second


def test_the_dashboard_filters_searches_and_alerts_on_revoked_consent(contoso: Vendor, staff_client: Client) -> None:
    active = customers(contoso, 3)
    services.tenant_mark_consent_revoked(tenant=active[1], detected_by="test", codes=[65001])
    page = staff_client.get("/vendor/contoso/").content.decode()
    assert "1 customer revoked consent" in page
    only_revoked = staff_client.get("/vendor/contoso/?status=consent_revoked").content.decode()
    assert "Org 001" in only_revoked and "Org 000" not in only_revoked
    searched = staff_client.get("/vendor/contoso/?q=org2.example").content.decode()
    assert "Org 002" in searched and "Org 000" not in searched
    by_tid = staff_client.get(f"/vendor/contoso/?q={active[0].tid}").content.decode()
    assert "Org 000" in by_tid and "Org 001" not in by_tid
    assert "No customer matches" in staff_client.get("/vendor/contoso/?q=nothing-like-this").content.decode()
    assert staff_client.get("/vendor/contoso/?status=bogus").status_code == 200


def test_consent_and_audit_records_are_append_only(contoso: Vendor) -> None:
    tenant = customers(contoso, 1)[0]
    record = ConsentRecord.objects.get(tenant=tenant)
    record.scopes = ["more"]
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(tenant=tenant).first().delete()  # type: ignore[union-attr]


def test_the_django_admin_shows_no_secret_and_no_way_to_edit_records(contoso: Vendor, admin_client: Client) -> None:
    customers(contoso, 1)
    vendor_page = admin_client.get(f"/admin/tenants/vendor/{contoso.pk}/change/").content.decode()
    assert contoso.entra_client_secret_sealed not in vendor_page
    record = ConsentRecord.objects.first()
    assert record is not None
    page = admin_client.get(f"/admin/tenants/consentrecord/{record.pk}/change/").content.decode()
    assert 'type="submit"' not in page or "Save" not in page
    assert admin_client.post(f"/admin/tenants/consentrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/tenants/auditevent/add/").status_code == 403


def test_the_dashboard_shows_the_newest_grant_of_each_customer(contoso: Vendor, staff_client: Client) -> None:
    tenant = customers(contoso, 1)[0]
    user = get_user_model().objects.create_user("second-admin")
    second = TenantUser.objects.create(
        tenant=tenant,
        oid=uuid.uuid4(),
        user=user,
        display_name="Second Admin",
        directory_roles=["158c047a-c907-4556-b7ef-446551a6b5f7"],
        portal_role="admin",
    )
    services.consent_record_grant(tenant=tenant, admin=second, scopes=["s"], confirmed_by="test")
    page = staff_client.get("/vendor/contoso/").content.decode()
    assert "Second Admin (Cloud Application Administrator)" in page
    assert "Admin 0 (Global Administrator)" not in page
