"""Forms of vendor registration and management: they check their input, nothing more; proving
credentials live is tenants.vendors' work."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from integrations import entra
from tenants.models import VendorMembership
from tenants.services import AppCredential

MAX_PEM_BYTES = 64 * 1024


class InviteVendorForm(forms.Form):
    name = forms.CharField(label="Vendor's name", max_length=200)
    contact_email = forms.EmailField(label="Their admin's address (for your records)", required=False)


class InviteStaffForm(forms.Form):
    email = forms.EmailField(label="Address (their sign-in name in your organization)")
    role = forms.ChoiceField(label="Role", choices=VendorMembership.Role.choices, initial=VendorMembership.Role.STAFF)


class CredentialForm(forms.Form):
    """The app's credential (a secret with its expiry, or a certificate with its private key) and,
    optionally or not, the ACS connection string. Secrets are never shown back."""

    credential_kind = forms.ChoiceField(
        label="Credential",
        choices=[("certificate", "Certificate (recommended)"), ("secret", "Client secret")],
        widget=forms.RadioSelect,
        initial="certificate",
    )
    certificate = forms.FileField(label="Certificate (.pem or .cer in PEM form)", required=False)
    private_key = forms.FileField(label="Its private key (.pem, without a passphrase)", required=False)
    client_secret = forms.CharField(
        label="Client secret (its Value)", required=False, widget=forms.PasswordInput(render_value=False)
    )
    secret_expires = forms.DateField(
        label="The secret expires on", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    acs_connection_string = forms.CharField(
        label="ACS connection string",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="From the Communication Services resource's Keys page: endpoint=https://…;accesskey=…",
    )

    def __init__(self, *args: Any, acs_required: bool = True, entra_required: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acs_required, self.entra_required = acs_required, entra_required
        self.fields["acs_connection_string"].required = acs_required
        self.fields["credential_kind"].required = entra_required
        self.credential: AppCredential | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("credential_kind")
        if kind == "certificate":
            self.credential = self._certificate(data)
        elif kind == "secret":
            self.credential = self._secret(data)
        if not self.acs_required and not self.entra_required and not (kind or data.get("acs_connection_string")):
            raise forms.ValidationError("Enter a new credential, a new ACS connection string, or both.")
        return data

    def _certificate(self, data: dict[str, Any]) -> AppCredential | None:
        certificate, key = data.get("certificate"), data.get("private_key")
        if certificate is None or key is None:
            self.add_error("certificate" if certificate is None else "private_key", "Choose the file.")
            return None
        try:
            parsed = entra.certificate_from_pem(private_key=_pem(key), certificate=_pem(certificate))
        except (entra.CertificateInvalid, UnicodeDecodeError) as exc:
            self.add_error("certificate", str(exc) if isinstance(exc, entra.CertificateInvalid) else "Not a PEM file.")
            return None
        return AppCredential(certificate=parsed)

    def _secret(self, data: dict[str, Any]) -> AppCredential | None:
        secret, expires = (data.get("client_secret") or "").strip(), data.get("secret_expires")
        if not secret:
            self.add_error("client_secret", "Enter the secret's Value.")
        if expires is None:
            self.add_error("secret_expires", "Enter its expiry date, as the app's Certificates & secrets shows it.")
        elif expires <= timezone.localdate():
            self.add_error("secret_expires", "This secret has expired: add a new one to the app in Entra.")
        if not secret or expires is None or expires <= timezone.localdate():
            return None
        moment = dt.datetime.combine(expires, dt.time.min, tzinfo=dt.UTC)
        return AppCredential(secret=secret, secret_expires_at=moment)


def _pem(upload: Any) -> str:
    if upload.size > MAX_PEM_BYTES:
        raise entra.CertificateInvalid("This file is too large for a PEM certificate or key.")
    data: bytes = upload.read()
    return data.decode("ascii")


class RegistrationForm(CredentialForm):
    tenant = forms.CharField(
        label="Your organization's tenant (its ID or a verified domain)",
        max_length=253,
        help_text="Where the app is registered: the Directory (tenant) ID on the app's Overview page.",
    )
    client_id = forms.UUIDField(label="Application (client) ID")

    field_order = ("tenant", "client_id", "credential_kind")
