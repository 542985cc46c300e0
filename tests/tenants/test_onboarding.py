"""Onboarding with admin consent tracked by role, sign-in refusals, revocation, disconnection."""

from __future__ import annotations

from typing import Any

import pytest

from tenants.models import AuditEvent, ConsentRecord, CustomerTenant, TenantUser
from tenants.tasks import confirm_tenant_consent
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, NORTHWIND, USERS, DevCloud, sign_in
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db

ROLES = {
    "alice": "Global Administrator",
    "april": "Application Administrator",
    "cloe": "Cloud Application Administrator",
}


@pytest.fixture
def devcloud_vendors(devcloud_settings: DevCloud) -> DevCloud:
    load_vendors(devcloud_settings)
    return devcloud_settings


def person(devcloud: DevCloud, who: str) -> Person:
    return Person(devcloud, USERS[who][0])


def fabrikam() -> CustomerTenant:
    return CustomerTenant.objects.get(vendor__slug="contoso", tid=FABRIKAM)


def last_refusal() -> AuditEvent:
    return AuditEvent.objects.filter(kind=AuditEvent.Kind.SIGN_IN_REFUSED).latest("created_at")


@pytest.mark.parametrize("admin", list(ROLES))
def test_an_admin_with_a_consent_role_connects_the_organization(devcloud_vendors: DevCloud, admin: str) -> None:
    response: Any = person(devcloud_vendors, admin).connect()
    assert response.status_code == 302 and response["Location"] == "/tenant/"
    tenant = fabrikam()
    assert tenant.status == CustomerTenant.Status.ACTIVE
    grant = ConsentRecord.objects.get(tenant=tenant)
    assert grant.admin_role == ROLES[admin]
    assert str(grant.admin_oid) == USERS[admin][1]
    assert "client-credentials" in grant.confirmed_by
    assert set(tenant.scopes_granted) == set(tenant.vendor.requested_scopes)


def test_the_tenant_admin_page_shows_the_grant_with_the_role(devcloud_vendors: DevCloud) -> None:
    alice = person(devcloud_vendors, "alice")
    alice.connect()
    page = alice.client.get("/tenant/").content.decode()
    assert "Global Administrator" in page
    assert "Alice Anders" in page
    assert "Active" in page


def test_a_user_without_a_consent_role_is_stopped_with_the_explanation(devcloud_vendors: DevCloud) -> None:
    # Fabrikam allows no user consent: Entra itself stops Tom ("Need admin approval").
    response: Any = person(devcloud_vendors, "tom").connect()
    assert response.status_code == 403
    page = response.content.decode()
    for role in ROLES.values():
        assert role in page
    assert "http://localhost/v/contoso/" in page
    assert not CustomerTenant.objects.filter(tid=FABRIKAM).exists()
    assert last_refusal().reason == "entra:access_denied"


def test_a_member_who_may_sign_in_but_not_consent_gets_the_same_explanation(devcloud_vendors: DevCloud) -> None:
    # Northwind lets users consent for themselves: the portal reads Charlie's roles and stops him.
    response: Any = person(devcloud_vendors, "charlie").connect()
    assert response.status_code == 403
    assert "Cloud Application Administrator" in response.content.decode()
    assert not CustomerTenant.objects.filter(tid=NORTHWIND).exists()
    assert last_refusal().reason == "not_consent_admin"


def test_members_sign_in_only_once_the_organization_is_connected(devcloud_vendors: DevCloud) -> None:
    devcloud_vendors.grant_consent(FABRIKAM)  # Entra-side consent alone does not onboard.
    refused: Any = person(devcloud_vendors, "bob").sign_in()
    assert refused.status_code == 403
    assert "not connected" in refused.content.decode()
    assert last_refusal().reason == "not_onboarded"
    person(devcloud_vendors, "alice").connect()
    bob = person(devcloud_vendors, "bob")
    signed_in: Any = bob.sign_in()
    assert signed_in.status_code == 302
    member = TenantUser.objects.get(oid=USERS["bob"][1])
    assert member.tenant == fabrikam()
    assert member.portal_role == TenantUser.Role.MEMBER
    home = bob.client.get("/").content.decode()
    assert "Successfully signed in as Bob Baker." in home
    assert str(member.oid) not in home


def test_a_northwind_user_cannot_sign_in_before_northwind_is_onboarded(devcloud_vendors: DevCloud) -> None:
    response: Any = person(devcloud_vendors, "charlie").sign_in()
    assert response.status_code == 403
    refusal = last_refusal()
    assert (refusal.reason, refusal.tid) == ("not_onboarded", NORTHWIND)


def test_revoked_consent_is_detected_and_sign_in_refused(devcloud_vendors: DevCloud) -> None:
    person(devcloud_vendors, "alice").connect()
    devcloud_vendors.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    assert confirm_tenant_consent(fabrikam().pk) == "revoked"
    tenant = fabrikam()
    assert tenant.status == CustomerTenant.Status.CONSENT_REVOKED
    assert ConsentRecord.objects.filter(tenant=tenant, kind=ConsentRecord.Kind.REVOKED).count() == 1
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_REVOKED, tenant=tenant).exists()
    devcloud_vendors.grant_consent(FABRIKAM)  # even if Entra let bob in, the portal refuses
    response: Any = person(devcloud_vendors, "bob").sign_in()
    assert response.status_code == 403
    assert "revoked" in response.content.decode()
    # Running the check again changes nothing.
    assert confirm_tenant_consent(tenant.pk) == "skipped"


def test_an_admin_reconnects_after_revocation(devcloud_vendors: DevCloud) -> None:
    person(devcloud_vendors, "alice").connect()
    devcloud_vendors.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    confirm_tenant_consent(fabrikam().pk)
    person(devcloud_vendors, "april").connect()
    assert fabrikam().status == CustomerTenant.Status.ACTIVE
    kinds = list(ConsentRecord.objects.filter(tenant=fabrikam()).values_list("kind", "admin_role"))
    assert kinds == [("granted", "Application Administrator"), ("revoked", ""), ("granted", "Global Administrator")]


def test_an_active_tenant_is_confirmed(devcloud_vendors: DevCloud) -> None:
    person(devcloud_vendors, "alice").connect()
    before = fabrikam().last_confirmed_at
    assert confirm_tenant_consent(fabrikam().pk) == "confirmed"
    after = fabrikam().last_confirmed_at
    assert before is not None and after is not None and after > before


def test_disconnecting_refuses_sign_in_and_removes_the_tenants_users(devcloud_vendors: DevCloud) -> None:
    alice = person(devcloud_vendors, "alice")
    alice.connect()
    person(devcloud_vendors, "bob").sign_in()
    assert TenantUser.objects.filter(tenant=fabrikam()).count() == 2
    wrong = alice.client.post("/tenant/disconnect/", {"confirm_domain": "other.example"})
    assert wrong.status_code == 400 and fabrikam().status == CustomerTenant.Status.ACTIVE
    done = alice.client.post("/tenant/disconnect/", {"confirm_domain": "fabrikam.example"})
    assert done.status_code == 302
    assert fabrikam().status == CustomerTenant.Status.DISCONNECTED
    assert TenantUser.objects.filter(tenant=fabrikam()).count() == 0
    assert ConsentRecord.objects.filter(tenant=fabrikam()).count() == 1
    response: Any = person(devcloud_vendors, "bob").sign_in()
    assert response.status_code == 403 and last_refusal().reason == "disconnected"


def test_declining_admin_consent_connects_nothing(devcloud_vendors: DevCloud) -> None:
    response: Any = person(devcloud_vendors, "alice").connect(consent="cancel")
    assert response.status_code == 302
    assert fabrikam().status == CustomerTenant.Status.PENDING
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_REFUSED, reason="entra:access_denied").exists()


def test_the_admin_page_offers_re_consent_when_the_vendor_asks_for_more(devcloud_vendors: DevCloud) -> None:
    alice = person(devcloud_vendors, "alice")
    alice.connect()
    vendor = fabrikam().vendor
    vendor.requested_scopes = [*vendor.requested_scopes, "https://graph.microsoft.com/ChatMember.Read"]
    vendor.save(update_fields=["requested_scopes"])
    page = alice.client.get("/tenant/").content.decode()
    assert "ChatMember.Read" in page and "Grant consent again" in page
    start = alice.client.post("/tenant/reconsent/")
    assert start.status_code == 302 and "/oauth2/v2.0/authorize?" in start["Location"]
    done: Any = alice.connect()
    assert done.status_code == 302
    assert "https://graph.microsoft.com/ChatMember.Read" in fabrikam().scopes_granted
    assert ConsentRecord.objects.filter(tenant=fabrikam(), kind="granted").count() == 2


def test_a_member_cannot_re_consent_or_see_the_admin_page(devcloud_vendors: DevCloud) -> None:
    person(devcloud_vendors, "alice").connect()
    bob = person(devcloud_vendors, "bob")
    bob.sign_in()
    assert bob.client.get("/tenant/").status_code == 404
    assert bob.client.post("/tenant/reconsent/").status_code == 404


def test_a_user_disabled_during_sign_in_is_refused(devcloud_vendors: DevCloud) -> None:
    person(devcloud_vendors, "alice").connect()
    bob = person(devcloud_vendors, "bob")
    start = bob.client.post("/v/contoso/sign-in/")
    back = sign_in(devcloud_vendors, start["Location"], bob.upn, browser=bob.browser)
    devcloud_vendors.control("POST", f"/users/{USERS['bob'][1]}/disable")
    response = bob.client.get("/auth/callback/", back.params)
    assert response.status_code == 403
    assert "disabled" in response.content.decode()
    assert last_refusal().reason == "user_disabled"
    assert not TenantUser.objects.filter(oid=USERS["bob"][1]).exists()
