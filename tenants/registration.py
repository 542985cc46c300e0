"""Vendors register themselves.

A platform operator invites a vendor; its admin opens the invitation's link and enters the app's
client id and credential (a client secret or a certificate) and the ACS connection string. Each is
proven live before anything is kept (tenants.proofs), then the admin signs in through the app
itself, which proves the app's sign-in works and makes the admin the vendor's first
administrator. Between the two the registration waits sealed in the invitation, PENDING_MINUTES at
most; a refused or abandoned one is forgotten (beat purges those nobody came back for).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from core import crypto, rotation
from integrations import entra
from integrations.entra import EntraApp, IdTokenClaims
from tenants import proofs, staff
from tenants.models import AuditEvent, Vendor, VendorInvitation, VendorMembership
from tenants.proofs import RegistrationRefused
from tenants.scopes import DEFAULT_REQUESTED_SCOPES
from tenants.services import AppCredential, audit, credential_fields, seal_acs

INVITATION_DAYS = 14
PENDING_MINUTES = 30
# The days ahead of a credential's expiry at which the vendor is warned, and how strongly.
EXPIRY_WARNINGS = ((7, "danger"), (14, "warning"), (30, "notice"))


# invitations ----------------------------------------------------------------------------------
def invitation_create(*, name: str, contact_email: str, by: User) -> tuple[VendorInvitation, str]:
    """A new invitation, and the token of its link (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    invitation = VendorInvitation.objects.create(
        name=name,
        contact_email=contact_email,
        token_hash=crypto.digest(token),
        created_by=by,
        expires_at=timezone.now() + dt.timedelta(days=INVITATION_DAYS),
    )
    return invitation, token


def invitation_revoke(*, invitation: VendorInvitation) -> None:
    VendorInvitation.objects.filter(pk=invitation.pk, vendor=None).update(revoked_at=timezone.now(), pending_sealed="")


def invitation_problem(*, invitation: VendorInvitation) -> str | None:
    """Why the invitation can no longer be used (`registered`, `revoked`, `expired`), or None."""
    if invitation.vendor_id is not None:
        return "registered"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= timezone.now():
        return "expired"
    return None


# proving ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Proven:
    """A registration whose credentials answered: the home tenant, the app, its credential, ACS."""

    tenant_id: str
    client_id: str
    credential: AppCredential = field(repr=False)
    acs_connection_string: str = field(repr=False)

    @property
    def app(self) -> EntraApp:
        return proofs.app_with(client_id=self.client_id, credential=self.credential)


@sensitive_variables("credential", "acs_connection_string")
def registration_prove(*, tenant: str, client_id: str, credential: AppCredential, acs_connection_string: str) -> Proven:
    """Prove each credential live, or RegistrationRefused saying precisely what is wrong."""
    proofs.app_not_registered(client_id=client_id)
    tenant_id = proofs.home_tenant_id(tenant=tenant)
    app = proofs.app_with(client_id=client_id, credential=credential)
    proofs.credential_prove(app=app, credential=credential, tenant_id=tenant_id, tenant=tenant)
    proofs.acs_prove(acs_connection_string=acs_connection_string)
    return Proven(tenant_id, client_id, credential, acs_connection_string)


# between proof and sign-in -----------------------------------------------------------------------
def _pending_context(invitation: VendorInvitation) -> str:
    return f"vendor-invitation:{invitation.pk}"


SEALED_PENDING = rotation.SealedColumn(
    "registrations waiting for their admin's sign-in", VendorInvitation, "pending_sealed", _pending_context
)


@sensitive_variables("payload", "proven")
def registration_hold(*, invitation: VendorInvitation, proven: Proven) -> None:
    """Keep the proven registration, sealed, until the admin signs in through the app."""
    certificate = proven.credential.certificate
    payload = {
        "tenant_id": proven.tenant_id,
        "client_id": proven.client_id,
        "secret": proven.credential.secret,
        "secret_expires_at": _iso(proven.credential.secret_expires_at),
        "private_key": certificate.private_key if certificate else "",
        "certificate": certificate.certificate if certificate else "",
        "acs_connection_string": proven.acs_connection_string,
        "until": _iso(timezone.now() + dt.timedelta(minutes=PENDING_MINUTES)),
    }
    invitation.pending_sealed = crypto.seal(json.dumps(payload), context=_pending_context(invitation))
    invitation.save(update_fields=["pending_sealed"])


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


@sensitive_variables("payload")
def registration_pending(*, invitation: VendorInvitation) -> Proven | None:
    """The registration waiting for its admin's sign-in; None (and forgotten) once it waited too long."""
    if not invitation.pending_sealed:
        return None
    payload: dict[str, Any] = json.loads(crypto.unseal(invitation.pending_sealed, context=_pending_context(invitation)))
    if dt.datetime.fromisoformat(payload["until"]) < timezone.now():
        registration_forget(invitation=invitation)
        return None
    certificate = (
        entra.certificate_from_pem(private_key=payload["private_key"], certificate=payload["certificate"])
        if payload["certificate"]
        else None
    )
    expires = dt.datetime.fromisoformat(payload["secret_expires_at"]) if payload["secret_expires_at"] else None
    credential = AppCredential(secret=payload["secret"], certificate=certificate, secret_expires_at=expires)
    return Proven(payload["tenant_id"], payload["client_id"], credential, payload["acs_connection_string"])


def registration_forget(*, invitation: VendorInvitation) -> None:
    """The registration is refused or abandoned: its secrets go at once."""
    VendorInvitation.objects.filter(pk=invitation.pk).update(pending_sealed="")


def registrations_purge() -> int:
    """Beat: forget the registrations whose admin never came back from signing in."""
    waiting = VendorInvitation.objects.exclude(pending_sealed="").filter(vendor=None)
    return sum(registration_pending(invitation=invitation) is None for invitation in waiting)


# registered ----------------------------------------------------------------------------------------
@transaction.atomic
def registration_complete(*, invitation: VendorInvitation, proven: Proven, claims: IdTokenClaims) -> VendorMembership:
    """The admin signed in through the app: the vendor exists, with him as its first administrator."""
    invitation = VendorInvitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation_problem(invitation=invitation) is not None:
        raise RegistrationRefused("", _("This invitation has been used or revoked meanwhile."))
    if claims.tid != proven.tenant_id:
        raise RegistrationRefused(
            "", _("Sign in with an account of your own organization: the tenant where the app is registered.")
        )
    vendor = _vendor_create(name=invitation.name, proven=proven)
    admin = VendorMembership.objects.create(
        vendor=vendor,
        tid=claims.tid,
        oid=claims.oid,
        role=VendorMembership.Role.ADMIN,
        email=claims.preferred_username[:320].lower(),
        display_name=claims.name[:200],
        user=staff.staff_user(vendor=vendor, claims=claims),
        joined_at=timezone.now(),
    )
    invitation.vendor, invitation.registered_at, invitation.pending_sealed = vendor, timezone.now(), ""
    invitation.save(update_fields=["vendor", "registered_at", "pending_sealed"])
    audit(
        vendor=vendor,
        kind=AuditEvent.Kind.VENDOR_REGISTERED,
        tid=claims.tid,
        oid=claims.oid,
        client_id=proven.client_id,
        credential=vendor.entra_credential,
    )
    return admin


@transaction.atomic
def vendor_register(*, name: str, proven: Proven, admin_email: str) -> tuple[Vendor, str]:
    """A scripted registration (`manage.py vendor_register`): the vendor, and the token of its first
    administrator's invitation, who binds at his first sign-in as any invited staff member."""
    vendor = _vendor_create(name=name, proven=proven)
    token = secrets.token_urlsafe(32)
    VendorMembership.objects.create(
        vendor=vendor,
        email=admin_email.strip().lower(),
        role=VendorMembership.Role.ADMIN,
        invite_token_hash=crypto.digest(token),
        invite_expires_at=timezone.now() + dt.timedelta(days=staff.INVITATION_DAYS),
    )
    audit(
        vendor=vendor,
        kind=AuditEvent.Kind.VENDOR_REGISTERED,
        tid=proven.tenant_id,
        client_id=proven.client_id,
        credential=vendor.entra_credential,
        by="manage.py vendor_register",
    )
    return vendor, token


def _vendor_create(*, name: str, proven: Proven) -> Vendor:
    """A new vendor, never an existing one: a slug taken meanwhile takes the next number; an app
    registered meanwhile is refused."""
    for attempt in range(5):
        try:
            with transaction.atomic():
                return Vendor.objects.create(
                    name=name,
                    slug=_free_slug(name, skip=attempt),
                    entra_client_id=proven.client_id,
                    home_tenant_id=proven.tenant_id,
                    **credential_fields(proven.client_id, proven.credential),
                    acs_connection_string_sealed=seal_acs(proven.client_id, proven.acs_connection_string),
                    requested_scopes=list(DEFAULT_REQUESTED_SCOPES),
                )
        except IntegrityError:
            proofs.app_not_registered(client_id=proven.client_id)
    raise RegistrationRefused("", _("The portal is busy registering vendors of this name: try again."))


def _free_slug(name: str, *, skip: int = 0) -> str:
    base = slugify(name)[:40] or "vendor"
    taken = set(Vendor.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    free = (slug for n in range(1, len(taken) + skip + 2) if (slug := base if n == 1 else f"{base}-{n}") not in taken)
    return [next(free) for _ in range(skip + 1)][-1]


# credentials ---------------------------------------------------------------------------------
def credential_warning(*, vendor: Vendor) -> tuple[str, int] | None:
    """(level, days left) when the app's credential expires within 30 days, or has expired."""
    expires = vendor.entra_credential_expires_at
    if expires is None:
        return None
    if expires <= timezone.now():
        return "expired", 0
    days = (expires - timezone.now()).days
    return next(((level, days) for limit, level in EXPIRY_WARNINGS if days < limit), None)
