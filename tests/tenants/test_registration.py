"""A vendor registers itself against devcloud: the operator's invitation, every credential proven
live before anything is kept, the admin's sign-in through the app; each wrong input refused with
a clear message and nothing saved; credentials replaced without interruption; the command."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from core import crypto
from integrations import entra
from tenants import registration, services
from tenants.models import AuditEvent, Vendor, VendorInvitation, VendorMembership
from tests.devcloud.certificates import KeyPair, make_key_pair, register, tailspin_generated
from tests.devcloud_server import (
    CONTOSO_APP,
    CONTOSO_SECRET,
    TAILSPIN_ACS_KEY,
    TAILSPIN_APP,
    TAILSPIN_SECRET,
    TAILSPIN_TENANT,
    USERS,
    DevCloud,
    sign_in,
)
from tests.portal_flow import Person

pytestmark = pytest.mark.django_db
TANYA = USERS["tanya"]


def acs(devcloud: DevCloud, key: str = TAILSPIN_ACS_KEY) -> str:
    return f"endpoint={devcloud.base_url}/;accesskey={key}"


@pytest.fixture
def invited(devcloud_settings: DevCloud) -> str:
    """The path of an invitation of Tailspin."""
    operator = get_user_model().objects.create_superuser("operator", password="x")
    _, token = registration.invitation_create(name="Tailspin", contact_email="admin@tailspin.example", by=operator)
    return f"/vendors/register/{token}/"


def certificate_form(devcloud: DevCloud, pair: KeyPair, **overrides: Any) -> dict[str, Any]:
    return {
        "tenant": "tailspin.example",
        "client_id": TAILSPIN_APP,
        "credential_kind": "certificate",
        "certificate": SimpleUploadedFile("tailspin.cert.pem", pair.certificate_pem.encode()),
        "private_key": SimpleUploadedFile("tailspin.key.pem", pair.key_pem.encode()),
        "acs_connection_string": acs(devcloud),
        **overrides,
    }


def secret_form(devcloud: DevCloud, **overrides: Any) -> dict[str, Any]:
    return {
        "tenant": "tailspin.example",
        "client_id": TAILSPIN_APP,
        "credential_kind": "secret",
        "client_secret": TAILSPIN_SECRET,
        "secret_expires": "2030-01-01",
        "acs_connection_string": acs(devcloud),
        **overrides,
    }


def nothing_kept() -> bool:
    return (
        not Vendor.objects.filter(slug__startswith="tailspin").exists()
        and not VendorInvitation.objects.exclude(pending_sealed="").exists()
    )


def through_entra(devcloud: DevCloud, client: Client, response: Any, upn: str) -> Any:
    """Follow the registration's redirect to Entra, sign in, come back to the portal."""
    assert response.status_code == 302, response.content.decode()[:2000]
    back = sign_in(devcloud, response["Location"], upn)
    return client.get(urlsplit(back.redirect).path, back.params)


def test_a_vendor_registers_with_a_certificate_and_becomes_a_working_vendor(
    invited: str, devcloud_settings: DevCloud
) -> None:
    client = Client(SERVER_NAME="localhost")
    page = client.get(invited).content.decode()
    # What to set up in Azure, for this deployment.
    assert "http://localhost/auth/callback/" in page and "http://localhost/onboarding/callback/" in page
    assert "Teams.ManageCalls" in page and "ChatMessage.Send" in page and "wids" in page
    pair = tailspin_generated(devcloud_settings)
    done = through_entra(
        devcloud_settings, client, client.post(invited, certificate_form(devcloud_settings, pair)), TANYA[0]
    )
    vendor = Vendor.objects.get(slug="tailspin")
    assert done.status_code == 302 and done["Location"] == "/vendor/tailspin/"
    assert (str(vendor.home_tenant_id), str(vendor.entra_client_id), vendor.entra_credential) == (
        TAILSPIN_TENANT,
        TAILSPIN_APP,
        Vendor.Credential.CERTIFICATE,
    )
    assert vendor.entra_certificate_thumbprint == pair.sha1 and vendor.entra_credential_expires_at is not None
    assert pair.key_pem not in vendor.entra_certificate_sealed  # sealed at rest
    admin = VendorMembership.objects.get(vendor=vendor)
    assert (str(admin.oid), admin.role) == (TANYA[1], VendorMembership.Role.ADMIN)
    assert VendorInvitation.objects.get().vendor == vendor and nothing_kept() is False
    assert AuditEvent.objects.filter(vendor=vendor, kind=AuditEvent.Kind.VENDOR_REGISTERED).exists()
    # The vendor's app works with the stored certificate; its dashboard gives the onboarding link.
    entra.confirm_app_in_tenant(services.vendor_entra_app(vendor), TAILSPIN_TENANT)
    dashboard = client.get("/vendor/tailspin/").content.decode()
    assert "http://localhost/v/tailspin/" in dashboard
    assert b"It has been used" in client.get(invited).content


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("wrong secret", "client_secret", "refused this client secret"),
        ("wrong certificate", "certificate", "refused the certificate"),
        ("expired certificate", "certificate", "This certificate expired on"),
        ("wrong ACS key", "acs_connection_string", "ACS refused this connection string"),
        ("app of another tenant", "client_id", "No app with this client ID is registered in tailspin.example"),
        ("unknown tenant", "tenant", "knows no tenant"),
    ],
)
def test_each_wrong_input_is_refused_with_a_clear_message_and_nothing_is_kept(
    invited: str, devcloud_settings: DevCloud, case: str, field: str, message: str
) -> None:
    if case == "wrong secret":
        data = secret_form(devcloud_settings, client_secret="not-the-secret")
    elif case == "wrong certificate":
        data = certificate_form(devcloud_settings, make_key_pair())  # never uploaded to the app
    elif case == "expired certificate":
        expired = make_key_pair(valid_from_days=-60, days=-1)
        register(devcloud_settings, TAILSPIN_APP, expired)
        data = certificate_form(devcloud_settings, expired)
    elif case == "wrong ACS key":
        data = secret_form(
            devcloud_settings, acs_connection_string=acs(devcloud_settings, key="d3Jvbmcta2V5LXdyb25nLWtleQ==")
        )
    elif case == "app of another tenant":
        data = secret_form(devcloud_settings, client_id=CONTOSO_APP, client_secret=CONTOSO_SECRET)
    else:
        data = secret_form(devcloud_settings, tenant="nowhere.example")
    response = Client().post(invited, data)
    # 200: Django would log the path (and its token) of a 4xx answer.
    assert response.status_code == 200 and b"never kept after a refusal" in response.content
    errors = response.context["form"].errors
    assert message in " ".join(errors.get(field, [])), errors
    assert nothing_kept()


def test_a_sign_in_from_another_organization_registers_nothing(invited: str, devcloud_settings: DevCloud) -> None:
    client = Client(SERVER_NAME="localhost")
    response = client.post(invited, secret_form(devcloud_settings))
    refused = through_entra(devcloud_settings, client, response, "nina@northwind.example")
    assert refused.status_code == 403 and b"own organization" in refused.content
    assert nothing_kept()  # the secrets it held, too


@pytest.mark.parametrize("problem", ["revoked", "expired", "unknown"])
def test_an_invitation_that_cannot_be_used_says_so(invited: str, problem: str) -> None:
    invitation = VendorInvitation.objects.get()
    if problem == "revoked":
        registration.invitation_revoke(invitation=invitation)
    elif problem == "expired":
        VendorInvitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    if problem == "unknown":
        assert Client().get("/vendors/register/not-a-token/").status_code == 404
        return
    said = {"revoked": b"operator revoked it", "expired": b"It has expired"}[problem]
    assert said in Client().get(invited).content


def test_the_operator_invites_and_revokes_and_nobody_else_sees_the_page(devcloud_settings: DevCloud) -> None:
    operator = get_user_model().objects.create_superuser("operator", password="x")
    client = Client(SERVER_NAME="localhost")
    client.force_login(operator)
    page = client.post("/operator/", {"name": "Tailspin", "contact_email": "admin@tailspin.example"}, follow=True)
    link = re.search(r'id="invitation-link">([^<]+)<', page.content.decode())
    assert link is not None and link.group(1).startswith("http://localhost/vendors/register/")
    invitation = VendorInvitation.objects.get()
    token = urlsplit(link.group(1)).path.rstrip("/").rsplit("/", 1)[1]
    assert invitation.token_hash == crypto.digest(token) != token  # only its hash is kept
    assert 'id="invitation-link"' not in client.get("/operator/").content.decode()  # shown once
    assert client.post(f"/operator/invitations/{invitation.pk}/revoke/").status_code == 302
    assert b"operator revoked it" in Client().get(urlsplit(link.group(1)).path).content
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("someone"))
    assert staff.get("/operator/").status_code == 404 and Client().get("/operator/").status_code == 404


def tailspin_registered(devcloud: DevCloud) -> tuple[Vendor, Client]:
    """Tailspin registered with its seed secret (the command's way), its admin signed in."""
    stdin = io.StringIO(TAILSPIN_SECRET)
    out = io.StringIO()
    acs_file = devcloud.state_dir / "tailspin-acs.txt"
    acs_file.write_text(acs(devcloud))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", stdin)
        call_command(
            "vendor_register",
            name="Tailspin",
            tenant="tailspin.example",
            client_id=TAILSPIN_APP,
            secret_file="-",
            secret_expires="2030-01-01",
            acs_connection_string_file=str(acs_file),
            admin_email="Admin@Tailspin.example",
            stdout=out,
        )
    link = re.search(r"(/v/tailspin/join/\S+)", out.getvalue())
    assert link is not None, out.getvalue()
    tanya = Person(devcloud, TANYA[0])
    joined: Any = tanya._through_entra(link.group(1))
    assert joined.status_code == 302 and joined["Location"] == "/vendor/tailspin/"
    return Vendor.objects.get(slug="tailspin"), tanya.client


def test_the_command_registers_a_vendor_whose_admin_joins_with_the_link(devcloud_settings: DevCloud) -> None:
    vendor, _ = tailspin_registered(devcloud_settings)
    assert vendor.entra_credential == Vendor.Credential.SECRET
    assert TAILSPIN_SECRET not in vendor.entra_client_secret_sealed
    assert VendorMembership.objects.get(vendor=vendor).role == VendorMembership.Role.ADMIN


def test_the_command_refuses_a_wrong_secret_and_keeps_nothing(devcloud_settings: DevCloud, tmp_path: Any) -> None:
    secret, acs_file = tmp_path / "secret", tmp_path / "acs"
    secret.write_text("not-the-secret")
    acs_file.write_text(acs(devcloud_settings))
    with pytest.raises(CommandError, match=r"Not registered: .*refused this client secret"):
        call_command(
            "vendor_register",
            name="Tailspin",
            tenant="tailspin.example",
            client_id=TAILSPIN_APP,
            secret_file=str(secret),
            secret_expires="2030-01-01",
            acs_connection_string_file=str(acs_file),
            admin_email="admin@tailspin.example",
        )
    assert not Vendor.objects.exists()


def test_a_new_secret_replaces_the_old_one_without_interruption(devcloud_settings: DevCloud) -> None:
    vendor, tanya = tailspin_registered(devcloud_settings)
    added = devcloud_settings.control("POST", f"/apps/{TAILSPIN_APP}/secrets", json={"display_name": "2027"})
    form = {"credential_kind": "secret", "client_secret": added["secret_text"], "secret_expires": "2031-06-30"}
    wrong = tanya.post("/vendor/tailspin/credentials/", {**form, "client_secret": "nope"})
    assert wrong.status_code == 400 and b"refused this client secret" in wrong.content
    assert services.vendor_entra_app(Vendor.objects.get(pk=vendor.pk)).client_secret == TAILSPIN_SECRET
    assert tanya.post("/vendor/tailspin/credentials/", form).status_code == 302
    vendor.refresh_from_db()
    assert services.vendor_entra_app(vendor).client_secret == added["secret_text"]
    assert f"{vendor.entra_credential_expires_at:%Y-%m-%d}" == "2031-06-30"
    # The old secret removed in Entra: the vendor's app works on.
    old = next(
        s
        for s in devcloud_settings.control("GET", f"/apps/{TAILSPIN_APP}/credentials")["secrets"]
        if s["display_name"] != "2027"
    )
    devcloud_settings.control("DELETE", f"/apps/{TAILSPIN_APP}/secrets/{old['key_id']}")
    entra.confirm_app_in_tenant(services.vendor_entra_app(vendor), TAILSPIN_TENANT)
    assert AuditEvent.objects.filter(vendor=vendor, kind=AuditEvent.Kind.CREDENTIALS_CHANGED).count() == 1


def test_an_acs_connection_string_alone_is_replaced(devcloud_settings: DevCloud) -> None:
    vendor, tanya = tailspin_registered(devcloud_settings)
    page = tanya.get("/vendor/tailspin/credentials/").content.decode()
    assert 'value="keep"' in page and "checked" in page.split('value="keep"')[1][:80]  # the default
    other_key = devcloud_settings.control("GET", "/directory")["acs_resources"][2].get("secondary_key")
    connection = acs(devcloud_settings, other_key) if other_key else acs(devcloud_settings)
    done = tanya.post("/vendor/tailspin/credentials/", {"credential_kind": "keep", "acs_connection_string": connection})
    assert done.status_code == 302
    vendor.refresh_from_db()
    assert services.vendor_acs_resource(vendor).connection_string == connection
    assert vendor.entra_credential == Vendor.Credential.SECRET  # kept
    empty = tanya.post("/vendor/tailspin/credentials/", {"credential_kind": "keep", "acs_connection_string": ""})
    assert empty.status_code == 400 and b"a new ACS connection string, or both" in empty.content


def test_a_secret_is_replaced_by_a_certificate(devcloud_settings: DevCloud) -> None:
    vendor, tanya = tailspin_registered(devcloud_settings)
    pair = make_key_pair()
    register(devcloud_settings, TAILSPIN_APP, pair)
    files = {
        "credential_kind": "certificate",
        "certificate": SimpleUploadedFile("c.pem", pair.certificate_pem.encode()),
        "private_key": SimpleUploadedFile("k.pem", pair.key_pem.encode()),
    }
    assert tanya.post("/vendor/tailspin/credentials/", files).status_code == 302
    vendor.refresh_from_db()
    assert (vendor.entra_credential, vendor.entra_certificate_thumbprint, vendor.entra_client_secret_sealed) == (
        Vendor.Credential.CERTIFICATE,
        pair.sha1,
        "",
    )
    entra.confirm_app_in_tenant(services.vendor_entra_app(vendor), TAILSPIN_TENANT)


def test_an_app_registered_already_is_refused_before_microsoft_is_asked(
    invited: str, devcloud_settings: DevCloud
) -> None:
    tailspin_registered(devcloud_settings)
    devcloud_settings.control("DELETE", "/requests")
    response = Client().post(invited, secret_form(devcloud_settings))
    assert response.status_code == 200 and "registered in the portal already" in str(response.context["form"].errors)
    assert devcloud_settings.control("GET", "/requests")["requests"] == []


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("https://10.0.0.5:5432/", "is not an Azure Communication Services endpoint"),
        ("http://127.0.0.1/", "not an ACS connection string"),
    ],
)
def test_an_acs_endpoint_outside_acs_is_never_called(
    invited: str, devcloud_settings: DevCloud, endpoint: str, message: str
) -> None:
    devcloud_settings.control("DELETE", "/requests")
    data = secret_form(devcloud_settings, acs_connection_string=f"endpoint={endpoint};accesskey={TAILSPIN_ACS_KEY}")
    response = Client().post(invited, data)
    assert message in " ".join(response.context["form"].errors["acs_connection_string"])
    assert nothing_kept()


def test_a_registration_nobody_came_back_for_is_forgotten(invited: str, devcloud_settings: DevCloud) -> None:
    client = Client(SERVER_NAME="localhost")
    assert client.post(invited, secret_form(devcloud_settings)).status_code == 302  # off to Entra, never back
    assert not nothing_kept()
    with pytest.MonkeyPatch.context() as patch:
        later = timezone.now() + dt.timedelta(minutes=registration.PENDING_MINUTES + 1)
        patch.setattr(timezone, "now", lambda: later)
        assert registration.registrations_purge() == 1
    assert nothing_kept()
