"""Forms of vendor registration and management: they check their input, nothing more; proving
credentials live is tenants.vendors' work."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.debug import sensitive_variables

from integrations import entra
from tenants.models import VendorMembership
from tenants.services import AppCredential

MAX_PEM_BYTES = 64 * 1024


class InviteVendorForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Vendor's name"), max_length=200)
    contact_email = forms.EmailField(label=gettext_lazy("Their admin's address (for your records)"), required=False)


class InviteStaffForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Address (their sign-in name in your organization)"))
    role = forms.ChoiceField(
        label=gettext_lazy("Role"), choices=VendorMembership.Role.choices, initial=VendorMembership.Role.STAFF
    )


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=VendorMembership.Role.choices)


KEEP = "keep"
# integrations.entra's refusals of a certificate (CertificateInvalid), marked for translation here:
# integrations/ knows nothing of Django. The form shows them translated.
CERTIFICATE_REFUSALS = (
    gettext_noop("The certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)."),
    gettext_noop("The private key is protected by a passphrase: export it without one."),
    gettext_noop("The private key is not a PEM private key (-----BEGIN PRIVATE KEY-----)."),
    gettext_noop("Entra signs app assertions with RSA keys: use an RSA certificate and key."),
    gettext_noop("The private key does not belong to this certificate."),
)
CREDENTIAL_CHOICES = [
    ("certificate", gettext_lazy("Certificate (recommended)")),
    ("secret", gettext_lazy("Client secret")),
]


class CredentialForm(forms.Form):
    """The app's credential (a certificate with its private key, or a secret with its expiry) and the
    ACS connection string. Replacing (`replacing`), either may stay as it is. Secrets are never
    shown back."""

    credential_kind = forms.ChoiceField(
        label=gettext_lazy("Credential"),
        choices=CREDENTIAL_CHOICES,
        widget=forms.RadioSelect,
        initial="certificate",
    )
    certificate = forms.FileField(label=gettext_lazy("Certificate (.pem or .cer in PEM form)"), required=False)
    private_key = forms.FileField(label=gettext_lazy("Its private key (.pem, without a passphrase)"), required=False)
    client_secret = forms.CharField(
        label=gettext_lazy("Client secret (its Value)"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    secret_expires = forms.DateField(
        label=gettext_lazy("The secret expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    acs_connection_string = forms.CharField(
        label=gettext_lazy("ACS connection string"),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=gettext_lazy("From the Communication Services resource's Keys page: endpoint=https://…;accesskey=…"),
    )

    def __init__(self, *args: Any, replacing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replacing = replacing
        self.credential: AppCredential | None = None
        if replacing:
            kind = self.fields["credential_kind"]
            kind.choices = [(KEEP, _("Keep the current one")), *CREDENTIAL_CHOICES]  # type: ignore[attr-defined]
            kind.initial = KEEP
            self.fields["acs_connection_string"].required = False
            self.fields["acs_connection_string"].help_text = _(
                "From the Communication Services resource's Keys page: endpoint=https://…;accesskey=… "
                "Leave it empty to keep the current one."
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("credential_kind")
        if kind == "certificate":
            self.credential = self._certificate(data)
        elif kind == "secret":
            self.credential = self._secret(data)
        elif kind == KEEP and not data.get("acs_connection_string") and not self.errors:
            raise forms.ValidationError(_("Enter a new credential, a new ACS connection string, or both."))
        return data

    def _certificate(self, data: dict[str, Any]) -> AppCredential | None:
        certificate, key = data.get("certificate"), data.get("private_key")
        if certificate is None or key is None:
            self.add_error("certificate" if certificate is None else "private_key", _("Choose the file."))
            return None
        try:
            certificate_pem, key_pem = _pem(certificate, "certificate"), _pem(key, "private_key")
            parsed = entra.certificate_from_pem(private_key=key_pem, certificate=certificate_pem)
        except _FileRefused as exc:
            self.add_error(exc.field, exc.message)
            return None
        except entra.CertificateInvalid as exc:
            self.add_error("private_key" if "private key" in str(exc) else "certificate", _(str(exc)))
            return None
        return AppCredential(certificate=parsed)

    def _secret(self, data: dict[str, Any]) -> AppCredential | None:
        secret, expires = (data.get("client_secret") or "").strip(), data.get("secret_expires")
        if not secret:
            self.add_error("client_secret", _("Enter the secret's Value."))
        if expires is None:
            self.add_error("secret_expires", _("Enter its expiry date, as the app's Certificates & secrets shows it."))
        elif expires <= timezone.localdate():
            self.add_error("secret_expires", _("This secret has expired: add a new one to the app in Entra."))
        if not secret or expires is None or expires <= timezone.localdate():
            return None
        moment = dt.datetime.combine(expires, dt.time.min, tzinfo=dt.UTC)
        return AppCredential(secret=secret, secret_expires_at=moment)


class _FileRefused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@sensitive_variables("data")
def _pem(upload: Any, field: str) -> str:
    if upload.size > MAX_PEM_BYTES:
        raise _FileRefused(field, _("This file is too large for a PEM certificate or key."))
    data: bytes = upload.read()
    if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER, as many .cer files are
        tool = "x509" if field == "certificate" else "pkey"
        raise _FileRefused(
            field,
            _("This file is DER-encoded: convert it to PEM (%(command)s).")
            % {"command": f"openssl {tool} -inform der -in FILE -out FILE.pem"},
        )
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise _FileRefused(field, _("This is not a PEM file (-----BEGIN …-----).")) from None


class RegistrationForm(CredentialForm):
    tenant = forms.CharField(
        label=gettext_lazy("Your organization's tenant (its ID or a verified domain)"),
        max_length=253,
        help_text=gettext_lazy("Where the app is registered: the Directory (tenant) ID on the app's Overview page."),
    )
    client_id = forms.UUIDField(label=gettext_lazy("Application (client) ID"))

    field_order = ("tenant", "client_id", "credential_kind")
