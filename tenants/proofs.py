"""A vendor's credentials proven live before the portal keeps them, each refusal saying precisely
what is wrong and where: the tenant (Entra's metadata), the app's credential (a client-credentials
token in the vendor's home tenant), the ACS connection string (an identity created and deleted)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from integrations import acs, entra
from integrations.entra import EntraApp
from tenants.models import Vendor
from tenants.services import AppCredential

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class RegistrationRefused(Exception):
    """What is wrong, for the form `field` it concerns ("" for the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def app_with(*, client_id: str, credential: AppCredential) -> EntraApp:
    if credential.certificate is not None:
        return EntraApp(client_id=client_id, certificate=credential.certificate)
    return EntraApp(client_id=client_id, client_secret=credential.secret)


def app_not_registered(*, client_id: str) -> None:
    """Before anything is asked of Microsoft: an app serves one vendor."""
    if Vendor.objects.filter(entra_client_id=client_id).exists():
        raise RegistrationRefused("client_id", _("This app is registered in the portal already."))


def home_tenant_id(*, tenant: str) -> str:
    """The tenant id of a tenant named by id or verified domain."""
    try:
        tid = entra.tenant_id(tenant)
        uuid.UUID(tid)
    except entra.EntraError as exc:
        if exc.transient:
            raise RegistrationRefused("", _("Microsoft Entra ID did not answer. Try again in a moment.")) from None
        raise RegistrationRefused(
            "tenant",
            _("Microsoft Entra ID knows no tenant “%(tenant)s”: enter your tenant ID or a verified domain.")
            % {"tenant": tenant},
        ) from None
    except ValueError:
        raise RegistrationRefused(
            "tenant", _("“%(tenant)s” does not name a Microsoft Entra tenant.") % {"tenant": tenant}
        ) from None
    return tid


# AADSTS codes, and what they mean for the person registering.
ENTRA_REFUSALS: dict[int, tuple[str, StrOrPromise]] = {
    700016: (
        "client_id",
        gettext_lazy(
            "No app with this client ID is registered in {tenant}. Register the app in your own "
            "organization's tenant, and copy its Application (client) ID."
        ),
    ),
    7000215: (
        "client_secret",
        gettext_lazy(
            "Microsoft Entra ID refused this client secret for the app. Copy the secret's Value (not its "
            "Secret ID) from the app's Certificates & secrets."
        ),
    ),
    7000222: (
        "client_secret",
        gettext_lazy("This client secret has expired in Microsoft Entra ID. Add a new one to the app."),
    ),
    700027: (
        "certificate",
        gettext_lazy(
            "Microsoft Entra ID refused the certificate: upload it (the .cer or .pem, without the key) to the "
            "app's Certificates & secrets, and check that it is still valid."
        ),
    ),
}


def credential_prove(*, app: EntraApp, credential: AppCredential, tenant_id: str, tenant: str) -> None:
    """A client-credentials token for the app in its home tenant, or RegistrationRefused."""
    _certificate_in_date(credential)
    try:
        entra.confirm_app_in_tenant(app, tenant_id)
    except entra.EntraError as exc:
        raise _entra_refusal(exc, tenant) from None


def _certificate_in_date(credential: AppCredential) -> None:
    certificate, now = credential.certificate, timezone.now()
    if certificate is None or certificate.not_before <= now < certificate.not_after:
        return
    if now >= certificate.not_after:
        message = _("This certificate expired on %(date)s: create a new one, upload it to the app, and use it here.")
        date = f"{certificate.not_after:%Y-%m-%d}"
    else:
        message = _(
            "This certificate is valid only from %(date)s: create a new one, upload it to the app, and use it here."
        )
        date = f"{certificate.not_before:%Y-%m-%d}"
    raise RegistrationRefused("certificate", message % {"date": date})


def _entra_refusal(exc: entra.EntraError, tenant: str) -> RegistrationRefused:
    if exc.transient:
        return RegistrationRefused("", _("Microsoft Entra ID did not answer. Try again in a moment."))
    for code in exc.codes:
        if code in ENTRA_REFUSALS:
            field, message = ENTRA_REFUSALS[code]
            return RegistrationRefused(field, f"{message.format(tenant=tenant)} (AADSTS{code})")
    codes = ", ".join(f"AADSTS{code}" for code in exc.codes) or exc.error
    return RegistrationRefused("", _("Microsoft Entra ID refused the app's credential (%(codes)s).") % {"codes": codes})


ACS_KEY_REFUSED = gettext_lazy(
    "ACS refused this connection string's access key. Copy a current connection string from the resource's Keys page."
)
ACS_REFUSALS = {
    401: ACS_KEY_REFUSED,
    403: ACS_KEY_REFUSED,
    404: gettext_lazy("There is no ACS resource at this endpoint."),
}
NOT_A_CONNECTION_STRING = gettext_lazy(
    "This is not an ACS connection string: copy it from the resource's Keys page (endpoint=https://…;accesskey=…)."
)


@sensitive_variables("acs_connection_string")
def acs_prove(*, acs_connection_string: str) -> None:
    """An ACS identity created and deleted with the connection string, or RegistrationRefused."""
    _acs_endpoint_allowed(acs_connection_string)
    try:
        acs.prove_resource(acs.AcsResource(acs_connection_string))
    except acs.AcsError as exc:
        if exc.code == "BadConnectionString":
            message = str(NOT_A_CONNECTION_STRING)
        elif exc.status == 0:
            message = _("The ACS endpoint of this connection string did not answer. Check the endpoint, or try again.")
        else:
            refusal = ACS_REFUSALS.get(exc.status)
            message = (
                str(refusal)
                if refusal
                else _("ACS refused it: %(status)s %(code)s.")
                % {
                    "status": exc.status,
                    "code": exc.code,
                }
            )
        raise RegistrationRefused("acs_connection_string", str(message)) from None


@sensitive_variables("acs_connection_string")
def _acs_endpoint_allowed(acs_connection_string: str) -> None:
    """Only an https endpoint of ACS's own domains (ACS_ENDPOINT_DOMAINS) is asked: anything else
    would let whoever registers make the portal call hosts of its own network."""
    parts = dict(p.split("=", 1) for p in acs_connection_string.split(";") if "=" in p)
    endpoint = urlsplit(parts.get("endpoint", "").strip())
    host = (endpoint.hostname or "").lower()
    if endpoint.scheme != "https" or not host:
        raise RegistrationRefused("acs_connection_string", str(NOT_A_CONNECTION_STRING))
    if not any(host == domain or host.endswith("." + domain) for domain in settings.ACS_ENDPOINT_DOMAINS):
        raise RegistrationRefused(
            "acs_connection_string", _("“%(host)s” is not an Azure Communication Services endpoint.") % {"host": host}
        )
