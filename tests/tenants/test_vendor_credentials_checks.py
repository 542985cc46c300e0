"""What the portal checks of a credential before it asks Microsoft, and when it warns of expiry."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from integrations import entra
from tenants import proofs, registration, services
from tenants.forms import CredentialForm
from tenants.models import Vendor
from tests.devcloud.certificates import make_key_pair


def upload(text: str, name: str = "x.pem") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode())


def certificate_form(key: str, certificate: str) -> CredentialForm:
    files = {"certificate": upload(certificate), "private_key": upload(key)}
    data = {"credential_kind": "certificate", "acs_connection_string": "endpoint=https://a/;accesskey=b"}
    return CredentialForm(data, files)


def test_a_certificate_and_its_key_make_a_credential_with_thumbprint_and_expiry() -> None:
    made = make_key_pair(days=90)
    form = certificate_form(made.key_pem, made.certificate_pem)
    assert form.is_valid(), form.errors
    assert form.credential is not None and form.credential.certificate is not None
    certificate = form.credential.certificate
    assert len(certificate.thumbprint) == 40 and certificate.thumbprint == certificate.thumbprint.upper()
    assert form.credential.expires_at == certificate.not_after
    assert abs((certificate.not_after - timezone.now()).days - 90) <= 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("key_of_another_certificate", "does not belong to this certificate"),
        ("not_a_certificate", "not a PEM certificate"),
        ("not_a_key", "not a PEM private key"),
        ("key_with_a_passphrase", "passphrase"),
    ],
)
def test_a_certificate_that_cannot_work_is_refused_before_anything_is_sent(case: str, message: str) -> None:
    made, other = make_key_pair(), make_key_pair()
    key, certificate = made.key_pem, made.certificate_pem
    if case == "key_of_another_certificate":
        key = other.key_pem
    elif case == "not_a_certificate":
        certificate = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    elif case == "not_a_key":
        key = "hello"
    else:
        loaded = serialization.load_pem_private_key(key.encode(), password=None)
        key = loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ).decode()
    form = certificate_form(key, certificate)
    assert not form.is_valid()
    assert message in str(form.errors.get("certificate", "")) + str(form.errors.get("private_key", ""))


def test_a_secret_needs_its_expiry_and_an_expired_one_is_refused() -> None:
    acs = {"acs_connection_string": "endpoint=https://a/;accesskey=b"}
    without = CredentialForm({"credential_kind": "secret", "client_secret": "s", **acs})
    assert not without.is_valid() and "expiry date" in str(without.errors["secret_expires"])
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    expired = CredentialForm({"credential_kind": "secret", "client_secret": "s", "secret_expires": yesterday, **acs})
    assert not expired.is_valid() and "has expired" in str(expired.errors["secret_expires"])


def test_an_expired_certificate_is_refused_before_entra_is_asked() -> None:
    made = make_key_pair(days=-1, valid_from_days=-30)
    certificate = entra.certificate_from_pem(private_key=made.key_pem, certificate=made.certificate_pem)
    credential = services.AppCredential(certificate=certificate)
    app = proofs.app_with(client_id=str(uuid.uuid4()), credential=credential)
    with pytest.raises(proofs.RegistrationRefused, match="expired on") as refused:
        proofs.credential_prove(app=app, credential=credential, tenant_id="no-such-tenant", tenant="x")
    assert refused.value.field == "certificate"


@pytest.mark.parametrize(
    ("days", "warning"),
    [(45, None), (29, "notice"), (13, "warning"), (6, "danger"), (-1, "expired")],
)
def test_the_expiry_warning_grows_at_30_14_and_7_days(days: int, warning: str | None) -> None:
    vendor = Vendor(entra_credential_expires_at=timezone.now() + dt.timedelta(days=days, hours=1))
    found = registration.credential_warning(vendor=vendor)
    assert (found[0] if found else None) == warning
