"""A vendor's administrator invites staff by address; an invitation binds to (tid, oid) of the
vendor's home tenant at the first sign-in through its link; removal ends access. All audited."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from tenants.models import AuditEvent, VendorMembership
from tests.devcloud_server import DevCloud
from tests.portal_flow import Person, load_vendors

pytestmark = pytest.mark.django_db
CONRAD = "0be8f893-cc27-44f3-8b14-777ddceedfe3"  # admin@contoso.example


@pytest.fixture
def cora(devcloud_settings: DevCloud) -> Person:
    """Contoso's administrator (the demo data makes her one), signed in."""
    load_vendors(devcloud_settings)
    cora = Person(devcloud_settings, "support@contoso.example")
    assert cora.sign_in().status_code == 302  # type: ignore[attr-defined]
    return cora


def invite(admin: Person, email: str, role: str = "staff") -> str:
    page = admin.client.post("/vendor/contoso/staff/", {"email": email, "role": role}, follow=True)
    assert page.status_code == 200, page.content[:500]
    link = re.search(r'id="invitation-link">([^<]+)<', page.content.decode())
    assert link is not None
    return link.group(1).replace("http://localhost", "")


def test_an_invited_address_joins_at_its_first_sign_in_and_is_bound_to_its_oid(
    cora: Person, devcloud_settings: DevCloud
) -> None:
    path = invite(cora, "Admin@Contoso.example")
    conrad = Person(devcloud_settings, "admin@contoso.example")
    assert conrad.client.get(path).status_code == 200
    joined: Any = conrad._through_entra(path)
    assert joined.status_code == 302 and joined["Location"] == "/vendor/contoso/"
    member = VendorMembership.objects.get(vendor__slug="contoso", email="admin@contoso.example")
    assert (str(member.oid), member.invite_token_hash, member.role) == (CONRAD, "", "staff")
    assert conrad.client.get("/vendor/contoso/").status_code == 200
    assert conrad.client.get("/vendor/contoso/staff/").status_code == 404  # staff, not an administrator
    # The link is used up; from now on he signs in as (tid, oid), like any staff member.
    assert conrad.client.get(path).status_code == 404
    again = Person(devcloud_settings, "admin@contoso.example").sign_in()
    assert again["Location"] == "/vendor/contoso/"  # type: ignore[index]
    kinds = list(AuditEvent.objects.filter(vendor__slug="contoso").values_list("kind", flat=True))
    assert {AuditEvent.Kind.STAFF_INVITED, AuditEvent.Kind.STAFF_JOINED} <= set(kinds)


def test_an_invitation_does_not_bind_another_address_or_another_tenant(
    cora: Person, devcloud_settings: DevCloud
) -> None:
    path = invite(cora, "someone.else@contoso.example")
    conrad: Any = Person(devcloud_settings, "admin@contoso.example")._through_entra(path)
    assert conrad.status_code == 403 and b"another account than the one invited" in conrad.content
    path = invite(cora, "alice@fabrikam.example")
    alice: Any = Person(devcloud_settings, "alice@fabrikam.example")._through_entra(path)
    assert alice.status_code == 403 and b"own organization" in alice.content
    assert not VendorMembership.objects.filter(vendor__slug="contoso", email__in=["alice@fabrikam.example"]).exclude(
        tid=None
    )


def test_removal_asks_first_and_ends_the_members_access(cora: Person, devcloud_settings: DevCloud) -> None:
    path = invite(cora, "admin@contoso.example", role="admin")
    conrad = Person(devcloud_settings, "admin@contoso.example")
    conrad._through_entra(path)
    member = VendorMembership.objects.get(vendor__slug="contoso", email="admin@contoso.example")
    url = f"/vendor/contoso/staff/{member.pk}/remove/"
    assert b"Remove Conrad Admin?" in cora.client.get(url).content
    assert VendorMembership.objects.filter(pk=member.pk).exists()  # asking changed nothing
    assert cora.client.post(url).status_code == 302
    assert not VendorMembership.objects.filter(pk=member.pk).exists()
    assert conrad.client.get("/vendor/contoso/").status_code == 404  # his session ended with his account
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.STAFF_REMOVED, oid=CONRAD).exists()


def test_the_last_administrator_cannot_be_removed(cora: Person) -> None:
    me = VendorMembership.objects.get(vendor__slug="contoso", role="admin")
    response = cora.client.post(f"/vendor/contoso/staff/{me.pk}/remove/", follow=True)
    assert b"last administrator" in response.content
    assert VendorMembership.objects.filter(pk=me.pk).exists()


def test_staff_pages_are_404_for_other_vendors_and_their_customers(cora: Person, devcloud_settings: DevCloud) -> None:
    lena = Person(devcloud_settings, "admin@litware.example")
    lena.sign_in("litware")
    alice = Person(devcloud_settings, "alice@fabrikam.example")
    alice.connect()
    for outsider in (lena, alice):
        for url in ("/vendor/contoso/staff/", "/vendor/contoso/credentials/", "/operator/"):
            assert outsider.client.get(url).status_code == 404, (outsider.upn, url)
            assert outsider.client.post(url).status_code == 404, (outsider.upn, url)


def test_an_invitation_link_is_shown_once_and_an_address_is_invited_once(
    cora: Person, devcloud_settings: DevCloud
) -> None:
    first = invite(cora, "sam@contoso.example")
    again = cora.client.get("/vendor/contoso/staff/").content.decode()
    assert 'id="invitation-link"' not in again  # a reload shows it no more, and invites nobody
    second = invite(cora, "sam@contoso.example")
    assert first != second and cora.client.get(first).status_code == 404  # the new link replaces the old
    assert VendorMembership.objects.filter(vendor__slug="contoso", email="sam@contoso.example").count() == 1
    staff = cora.client.post("/vendor/contoso/staff/", {"email": "support@contoso.example", "role": "staff"})
    assert staff.status_code == 400 and b"on the staff already" in staff.content


def test_an_administrator_changes_roles_but_never_demotes_the_last_one(
    cora: Person, devcloud_settings: DevCloud
) -> None:
    conrad = Person(devcloud_settings, "admin@contoso.example")
    conrad._through_entra(invite(cora, "admin@contoso.example"))
    member = VendorMembership.objects.get(vendor__slug="contoso", oid=CONRAD)
    me = VendorMembership.objects.get(vendor__slug="contoso", role="admin")
    cora.client.post(f"/vendor/contoso/staff/{me.pk}/role/", {"role": "staff"})
    assert VendorMembership.objects.get(pk=me.pk).role == "admin"  # the last administrator stays one
    cora.client.post(f"/vendor/contoso/staff/{member.pk}/role/", {"role": "admin"})
    assert conrad.client.get("/vendor/contoso/staff/").status_code == 200  # an administrator now
    assert cora.client.post(f"/vendor/contoso/staff/{me.pk}/role/", {"role": "staff"}).status_code == 302
    assert cora.client.get("/vendor/contoso/staff/").status_code == 404
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.STAFF_ROLE_CHANGED).count() == 2


def test_a_staff_invitation_expires(cora: Person, devcloud_settings: DevCloud) -> None:
    path = invite(cora, "admin@contoso.example")
    VendorMembership.objects.filter(email="admin@contoso.example").update(invite_expires_at=timezone.now())
    assert Person(devcloud_settings, "admin@contoso.example").client.get(path).status_code == 404
    assert b"Invitation expired: invite again" in cora.client.get("/vendor/contoso/staff/").content
