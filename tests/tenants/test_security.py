"""Forged consent callbacks, account takeover by email, and every URL as an outsider."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

from integrations.entra import IdTokenClaims
from tenants import services
from tenants.models import AuditEvent, ConsentRecord, CustomerTenant, TenantUser, Vendor
from tests.devcloud_server import FABRIKAM, NORTHWIND, USERS, DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db


@pytest.fixture
def devcloud_vendors(devcloud_settings: DevCloud) -> DevCloud:
    load_vendors(devcloud_settings)
    return devcloud_settings


def fabrikam() -> CustomerTenant:
    return CustomerTenant.objects.get(vendor__slug="contoso", tid=FABRIKAM)


def halfway(devcloud: DevCloud) -> tuple[Person, dict[str, str]]:
    """Alice signed in to connect Fabrikam; Entra's admin consent not done yet."""
    alice = Person(devcloud, USERS["alice"][0])
    response: Any = alice._through_entra("/v/contoso/connect/")
    assert "/adminconsent?" in response["Location"]
    return alice, dict(parse_qsl(urlsplit(response["Location"]).query))


def test_a_forged_callback_with_a_made_up_state_activates_nothing(devcloud_vendors: DevCloud) -> None:
    alice, _ = halfway(devcloud_vendors)
    forged = alice.client.get("/onboarding/callback/", {"admin_consent": "True", "tenant": FABRIKAM, "state": "guess"})
    assert forged.status_code == 400
    assert fabrikam().status == CustomerTenant.Status.PENDING
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_REFUSED, reason="state_mismatch").exists()


def test_a_callback_with_the_real_state_but_no_consent_in_entra_activates_nothing(devcloud_vendors: DevCloud) -> None:
    alice, consent = halfway(devcloud_vendors)
    forged = alice.client.get(
        "/onboarding/callback/", {"admin_consent": "True", "tenant": FABRIKAM, "state": consent["state"]}
    )
    assert forged.status_code == 400
    assert fabrikam().status == CustomerTenant.Status.PENDING
    assert not ConsentRecord.objects.exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_REFUSED, reason="not_confirmed").exists()


def test_a_callback_naming_another_tenant_activates_nothing(devcloud_vendors: DevCloud) -> None:
    alice, consent = halfway(devcloud_vendors)
    devcloud_vendors.grant_consent(NORTHWIND)
    forged = alice.client.get(
        "/onboarding/callback/", {"admin_consent": "True", "tenant": NORTHWIND, "state": consent["state"]}
    )
    assert forged.status_code == 400
    assert not CustomerTenant.objects.filter(status=CustomerTenant.Status.ACTIVE).exists()


def test_a_replayed_callback_activates_nothing_more(devcloud_vendors: DevCloud) -> None:
    alice = Person(devcloud_vendors, USERS["alice"][0])
    done: Any = alice.connect()
    assert done.status_code == 302 and fabrikam().status == CustomerTenant.Status.ACTIVE
    callback = done.wsgi_request.get_full_path()
    again = alice.client.get(callback)
    assert again.status_code == 400
    assert ConsentRecord.objects.count() == 1


def test_a_callback_in_another_browser_activates_nothing(devcloud_vendors: DevCloud) -> None:
    _, consent = halfway(devcloud_vendors)
    stranger = Client(SERVER_NAME="localhost")
    response = stranger.get(
        "/onboarding/callback/", {"admin_consent": "True", "tenant": FABRIKAM, "state": consent["state"]}
    )
    assert response.status_code == 302 and response["Location"].startswith("/?next=")
    assert fabrikam().status == CustomerTenant.Status.PENDING


def claims(tid: str, oid: str, upn: str, name: str = "Same Name") -> IdTokenClaims:
    return IdTokenClaims(tid=tid, oid=oid, name=name, preferred_username=upn)


def test_the_same_email_in_another_tenant_is_another_account(devcloud_vendors: DevCloud) -> None:
    vendor = Vendor.objects.get(slug="contoso")
    for tid in (FABRIKAM, NORTHWIND):
        CustomerTenant.objects.create(vendor=vendor, tid=tid, status=CustomerTenant.Status.ACTIVE)
    victim = services.tenant_user_sign_in(
        vendor=vendor, claims=claims(FABRIKAM, USERS["bob"][1], "bob@fabrikam.example"), onboarding=False
    )
    # An admin of Northwind gives one of her users Bob's address as UPN/email.
    attacker = services.tenant_user_sign_in(
        vendor=vendor, claims=claims(NORTHWIND, USERS["charlie"][1], "bob@fabrikam.example"), onboarding=False
    )
    assert attacker.pk != victim.pk and attacker.user_id != victim.user_id
    assert attacker.tenant.tid != victim.tenant.tid
    # Bob signing in again lands on his own account, not the look-alike.
    again = services.tenant_user_sign_in(
        vendor=vendor, claims=claims(FABRIKAM, USERS["bob"][1], "bob@fabrikam.example"), onboarding=False
    )
    assert again.pk == victim.pk


def test_the_same_oid_in_another_tenant_is_another_account(devcloud_vendors: DevCloud) -> None:
    vendor = Vendor.objects.get(slug="contoso")
    for tid in (FABRIKAM, NORTHWIND):
        CustomerTenant.objects.create(vendor=vendor, tid=tid, status=CustomerTenant.Status.ACTIVE)
    oid = USERS["bob"][1]
    one = services.tenant_user_sign_in(vendor=vendor, claims=claims(FABRIKAM, oid, "a@x.example"), onboarding=False)
    two = services.tenant_user_sign_in(vendor=vendor, claims=claims(NORTHWIND, oid, "a@x.example"), onboarding=False)
    assert one.pk != two.pk


def test_personal_accounts_are_refused_and_audited(devcloud_vendors: DevCloud) -> None:
    vendor = Vendor.objects.get(slug="contoso")
    personal = claims("9188040d-6c67-4c5b-b112-36a304b66dad", USERS["pat"][1], "pat@outlook.example")
    with pytest.raises(services.SignInRefused, match="personal_account"):
        services.tenant_user_sign_in(vendor=vendor, claims=personal, onboarding=True)
    assert AuditEvent.objects.get(kind=AuditEvent.Kind.SIGN_IN_REFUSED).reason == "personal_account"
    assert not TenantUser.objects.exists()


PUBLIC = {"home", "vendor_page", "sign_in", "connect", "auth_callback", "onboarding_callback"}
# Graph's webhooks: authenticated by each item's clientState (tests/chat/test_webhook.py).
PUBLIC |= {"graph_notifications", "graph_lifecycle"}
# The JavaScript strings' catalog of the active language: the same for everyone.
PUBLIC |= {"javascript_catalog"}


# A member's own pages, refused to others in tests/identity.
MEMBER_PAGES = {"call", "call_people", "acs_token"}


def protected_urls() -> list[tuple[str, str]]:
    patterns = [p for p in get_resolver().url_patterns if isinstance(p, URLPattern)]
    from identity import urls as identity_urls
    from tenants import urls as tenant_urls

    patterns += [p for m in (tenant_urls, identity_urls) for p in m.urlpatterns if isinstance(p, URLPattern)]
    urls = []
    for pattern in patterns:
        if not pattern.name or pattern.name in PUBLIC | MEMBER_PAGES or pattern.name == "healthz":
            continue
        route = str(pattern.pattern).replace("<slug:slug>", "contoso")
        urls.append((pattern.name, "/" + route))
    return urls


def test_every_protected_url_is_404_for_other_tenants_and_vendors(devcloud_vendors: DevCloud) -> None:
    Person(devcloud_vendors, USERS["alice"][0]).connect("contoso")
    bob = Person(devcloud_vendors, USERS["bob"][0])
    bob.sign_in("contoso")  # a member, not an admin, of a Contoso customer
    Person(devcloud_vendors, "nina@northwind.example").connect("litware")
    charlie = Person(devcloud_vendors, USERS["charlie"][0])
    charlie.sign_in("litware")  # a user of another tenant and another vendor
    litware_staff = Person(devcloud_vendors, "admin@litware.example")
    litware_staff.sign_in("litware")
    urls = protected_urls()
    assert {name for name, _ in urls} >= {"tenant_admin", "reconsent", "disconnect", "vendor_dashboard"}
    for outsider in (bob, charlie, litware_staff):
        for name, url in urls:
            for method in ("get", "post"):
                status = getattr(outsider.client, method)(url).status_code
                assert status in (404, 405), (outsider.upn, name, method, status)
    assert fabrikam().status == CustomerTenant.Status.ACTIVE


def test_vendor_staff_see_their_customers_only(devcloud_vendors: DevCloud) -> None:
    Person(devcloud_vendors, USERS["alice"][0]).connect("contoso")
    Person(devcloud_vendors, "nina@northwind.example").connect("litware")
    contoso_staff = Person(devcloud_vendors, "support@contoso.example")
    landed: Any = contoso_staff.sign_in("contoso")
    assert landed["Location"] == "/vendor/contoso/"
    page = contoso_staff.client.get("/vendor/contoso/").content.decode()
    assert "fabrikam.example" in page and "Global Administrator" in page
    assert "northwind" not in page.lower()
    assert contoso_staff.client.get("/vendor/litware/").status_code == 404


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_sign_in_never_returns_to_another_site(devcloud_vendors: DevCloud, next_url: str) -> None:
    bob = Person(devcloud_vendors, USERS["bob"][0])
    Person(devcloud_vendors, USERS["alice"][0]).connect()
    page = bob.client.get("/v/contoso/", {"next": next_url}).content.decode()
    assert 'name="next"' not in page
    start = bob.client.post("/v/contoso/sign-in/", {"next": next_url})
    assert bob.client.session["entra_flow"]["next"] == ""
    assert start.status_code == 302
