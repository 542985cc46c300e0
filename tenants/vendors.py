"""Vendors register themselves and manage their staff.

A platform operator invites a vendor; its admin opens the invitation's link and enters the app's
client id and credential (a client secret or a certificate) and the ACS connection string. Each is
proven live before anything is kept (a client-credentials token in the vendor's home tenant; an
ACS identity created and deleted), then the admin signs in through the app itself, which proves
the app's sign-in works and makes the admin the vendor's first staff member. The registration waits
for that sign-in sealed in the invitation, at most PENDING_MINUTES.

Staff are invited by address and bound to `(tid, oid)` of the vendor's home tenant at their first
sign-in through the invitation's link; by `(tid, oid)` alone after that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.debug import sensitive_variables

from core import crypto, rotation
from integrations import acs, entra
from integrations.entra import EntraApp, IdTokenClaims
from tenants.models import AuditEvent, Vendor, VendorInvitation, VendorMembership
from tenants.services import AppCredential, audit, vendor_save

INVITATION_DAYS = 14
PENDING_MINUTES = 30
# The days ahead of a credential's expiry at which the vendor is warned, and how strongly.
EXPIRY_WARNINGS = ((7, "danger"), (14, "warning"), (30, "notice"))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# invitations ----------------------------------------------------------------------------------
def invitation_create(*, name: str, contact_email: str, by: User) -> tuple[VendorInvitation, str]:
    """A new invitation, and the token of its link (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    invitation = VendorInvitation.objects.create(
        name=name,
        contact_email=contact_email,
        token_hash=token_hash(token),
        created_by=by,
        expires_at=timezone.now() + dt.timedelta(days=INVITATION_DAYS),
    )
    return invitation, token


def invitation_revoke(*, invitation: VendorInvitation) -> None:
    VendorInvitation.objects.filter(pk=invitation.pk, vendor=None).update(revoked_at=timezone.now(), pending_sealed="")


def invitation_problem(invitation: VendorInvitation) -> str | None:
    """Why the invitation can no longer be used (`registered`, `revoked`, `expired`), or None."""
    if invitation.vendor_id is not None:
        return "registered"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= timezone.now():
        return "expired"
    return None


# proving credentials ----------------------------------------------------------------------------
class RegistrationRefused(Exception):
    """What is wrong with the registration, for the form `field` it concerns ("" for the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Proven:
    """A registration whose credentials answered: the home tenant, the app, its credential, ACS."""

    tenant_id: str
    client_id: str
    credential: AppCredential = field(repr=False)
    acs_connection_string: str = field(repr=False)

    @property
    def app(self) -> EntraApp:
        return app_with(client_id=self.client_id, credential=self.credential)


def app_with(*, client_id: str, credential: AppCredential) -> EntraApp:
    if credential.certificate is not None:
        return EntraApp(client_id=client_id, certificate=credential.certificate)
    return EntraApp(client_id=client_id, client_secret=credential.secret)


def registration_prove(*, tenant: str, client_id: str, credential: AppCredential, acs_connection_string: str) -> Proven:
    """Prove each credential live, or RegistrationRefused saying precisely what is wrong."""
    tenant_id = home_tenant_id(tenant)
    app = app_with(client_id=client_id, credential=credential)
    credential_prove(app=app, credential=credential, tenant_id=tenant_id, tenant=tenant)
    acs_prove(acs_connection_string=acs_connection_string)
    return Proven(tenant_id, client_id, credential, acs_connection_string)


def home_tenant_id(tenant: str) -> str:
    try:
        tid = entra.tenant_id(tenant)
        uuid.UUID(tid)
    except entra.EntraError as exc:
        if exc.transient:
            raise RegistrationRefused("", "Microsoft Entra ID did not answer. Try again in a moment.") from None
        raise RegistrationRefused(
            "tenant", f"Microsoft Entra ID knows no tenant “{tenant}”: enter your tenant ID or a verified domain."
        ) from None
    except ValueError:
        raise RegistrationRefused("tenant", f"“{tenant}” does not name a Microsoft Entra tenant.") from None
    return tid


# AADSTS codes, and what they mean for the person registering.
ENTRA_REFUSALS: dict[int, tuple[str, str]] = {
    700016: (
        "client_id",
        "No app with this client ID is registered in {tenant}. Register the app in your own "
        "organization's tenant, and copy its Application (client) ID.",
    ),
    7000215: (
        "client_secret",
        "Microsoft Entra ID refused this client secret for the app. Copy the secret's "
        "Value (not its Secret ID) from the app's Certificates & secrets.",
    ),
    7000222: ("client_secret", "This client secret has expired in Microsoft Entra ID. Add a new one to the app."),
    700027: (
        "certificate",
        "Microsoft Entra ID refused the certificate: upload it (the .cer or .pem, without the "
        "key) to the app's Certificates & secrets, and check that it is still valid.",
    ),
}


def credential_prove(*, app: EntraApp, credential: AppCredential, tenant_id: str, tenant: str) -> None:
    """A client-credentials token for the app in its home tenant, or RegistrationRefused."""
    certificate = credential.certificate
    now = timezone.now()
    if certificate is not None and not certificate.not_before <= now < certificate.not_after:
        when = (
            f"{certificate.not_after:%Y-%m-%d}"
            if now >= certificate.not_after
            else f"{certificate.not_before:%Y-%m-%d}"
        )
        state = "expired on" if now >= certificate.not_after else "is valid only from"
        raise RegistrationRefused(
            "certificate", f"This certificate {state} {when}: create a new one, upload it to the app, and use it here."
        )
    try:
        entra.confirm_app_in_tenant(app, tenant_id)
    except entra.EntraError as exc:
        raise _entra_refusal(exc, tenant) from None


def _entra_refusal(exc: entra.EntraError, tenant: str) -> RegistrationRefused:
    if exc.transient:
        return RegistrationRefused("", "Microsoft Entra ID did not answer. Try again in a moment.")
    for code in exc.codes:
        if code in ENTRA_REFUSALS:
            field_name, message = ENTRA_REFUSALS[code]
            return RegistrationRefused(field_name, f"{message.format(tenant=tenant)} (AADSTS{code})")
    codes = ", ".join(f"AADSTS{code}" for code in exc.codes) or exc.error
    return RegistrationRefused("", f"Microsoft Entra ID refused the app's credential ({codes}).")


ACS_REFUSALS = {
    401: "ACS refused this connection string's access key. Copy a current connection string from the resource's Keys page.",
    403: "ACS refused this connection string's access key. Copy a current connection string from the resource's Keys page.",
    404: "There is no ACS resource at this connection string's endpoint.",
}


def acs_prove(*, acs_connection_string: str) -> None:
    """An ACS identity created and deleted with the connection string, or RegistrationRefused."""
    try:
        acs.prove_resource(acs.AcsResource(acs_connection_string))
    except acs.AcsError as exc:
        if exc.code == "BadConnectionString":
            message = "This is not an ACS connection string: copy it from the resource's Keys page (endpoint=https://…;accesskey=…)."
        elif exc.status == 0:
            message = "The ACS endpoint of this connection string did not answer. Check the endpoint, or try again."
        else:
            message = ACS_REFUSALS.get(exc.status, f"ACS refused it: {exc.status} {exc.code}.")
        raise RegistrationRefused("acs_connection_string", message) from None


# the registration, between proof and sign-in -------------------------------------------------
def _pending_context(invitation: VendorInvitation) -> str:
    return f"vendor-invitation:{invitation.pk}"


SEALED_PENDING = rotation.SealedColumn(
    "registrations waiting for their admin's sign-in", VendorInvitation, "pending_sealed", _pending_context
)


@sensitive_variables("payload")
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
def registration_pending(invitation: VendorInvitation) -> Proven | None:
    """The registration waiting for its admin's sign-in, if it has not waited too long."""
    if not invitation.pending_sealed:
        return None
    payload: dict[str, Any] = json.loads(crypto.unseal(invitation.pending_sealed, context=_pending_context(invitation)))
    if dt.datetime.fromisoformat(payload["until"]) < timezone.now():
        return None
    certificate = (
        entra.certificate_from_pem(private_key=payload["private_key"], certificate=payload["certificate"])
        if payload["certificate"]
        else None
    )
    expires = dt.datetime.fromisoformat(payload["secret_expires_at"]) if payload["secret_expires_at"] else None
    credential = AppCredential(secret=payload["secret"], certificate=certificate, secret_expires_at=expires)
    return Proven(payload["tenant_id"], payload["client_id"], credential, payload["acs_connection_string"])


@transaction.atomic
def registration_complete(*, invitation: VendorInvitation, proven: Proven, claims: IdTokenClaims) -> VendorMembership:
    """The admin signed in through the app: the vendor exists, with him as its first admin."""
    invitation = VendorInvitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation_problem(invitation) is not None:
        raise RegistrationRefused("", "This invitation has been used or revoked meanwhile.")
    if claims.tid != proven.tenant_id:
        raise RegistrationRefused(
            "", "Sign in with an account of your own organization: the tenant where the app is registered."
        )
    if Vendor.objects.filter(entra_client_id=proven.client_id).exists():
        raise RegistrationRefused("client_id", "This app is registered in the portal already.")
    vendor = vendor_save(
        name=invitation.name,
        slug=_free_slug(invitation.name),
        client_id=proven.client_id,
        credential=proven.credential,
        acs_connection_string=proven.acs_connection_string,
        home_tenant_id=proven.tenant_id,
    )
    admin = VendorMembership.objects.create(
        vendor=vendor,
        tid=claims.tid,
        oid=claims.oid,
        role=VendorMembership.Role.ADMIN,
        email=claims.preferred_username[:320],
        display_name=claims.name[:200],
        user=_new_user(vendor, claims),
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
    if Vendor.objects.filter(entra_client_id=proven.client_id).exists():
        raise RegistrationRefused("client_id", "This app is registered in the portal already.")
    vendor = vendor_save(
        name=name,
        slug=_free_slug(name),
        client_id=proven.client_id,
        credential=proven.credential,
        acs_connection_string=proven.acs_connection_string,
        home_tenant_id=proven.tenant_id,
    )
    token = secrets.token_urlsafe(32)
    VendorMembership.objects.create(
        vendor=vendor,
        email=admin_email.strip().lower(),
        role=VendorMembership.Role.ADMIN,
        invite_token_hash=token_hash(token),
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


def _free_slug(name: str) -> str:
    base = slugify(name)[:40] or "vendor"
    taken = set(Vendor.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    return next(slug for n in range(1, len(taken) + 2) if (slug := base if n == 1 else f"{base}-{n}") not in taken)


def _new_user(vendor: Vendor, claims: IdTokenClaims) -> Any:
    user = get_user_model().objects.create_user(
        username=f"{vendor.slug}.staff.{claims.oid}", first_name=claims.name[:150]
    )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


# credentials ---------------------------------------------------------------------------------
def credential_warning(vendor: Vendor) -> tuple[str, int] | None:
    """(level, days left) when the app's credential expires within 30 days, or has expired."""
    expires = vendor.entra_credential_expires_at
    if expires is None:
        return None
    days = (expires - timezone.now()).days
    if expires <= timezone.now():
        return "expired", 0
    return next(((level, days) for limit, level in EXPIRY_WARNINGS if days < limit), None)


# staff ---------------------------------------------------------------------------------------
class JoinRefused(Exception):
    """Why a staff invitation was not accepted by this sign-in (a reason the refusal page explains)."""


class AlreadyStaff(Exception):
    """Someone with this address is on the vendor's staff already."""


def staff_invite(*, vendor: Vendor, email: str, role: str, by: VendorMembership) -> tuple[VendorMembership, str]:
    """An invitation to the vendor's staff, and its link's token (shown once); inviting an address
    again replaces its open invitation's link. Audited."""
    email = email.strip().lower()
    if VendorMembership.objects.filter(vendor=vendor, email=email).exclude(tid=None).exists():
        raise AlreadyStaff(email)
    token = secrets.token_urlsafe(32)
    membership, _ = VendorMembership.objects.update_or_create(
        vendor=vendor, email=email, tid=None, defaults={"role": role, "invite_token_hash": token_hash(token)}
    )
    audit(vendor=vendor, kind=AuditEvent.Kind.STAFF_INVITED, oid=str(by.oid or ""), email=membership.email, role=role)
    return membership, token


@transaction.atomic
def staff_join(*, vendor: Vendor, token: str, claims: IdTokenClaims) -> VendorMembership:
    """Bind the invitation to whoever signed in with its link: a person of the vendor's home tenant
    with the invited address. From now on he is `(tid, oid)`; the address no longer counts."""
    membership = (
        VendorMembership.objects.select_for_update()
        .filter(vendor=vendor, invite_token_hash=token_hash(token), tid=None)
        .first()
    )
    if membership is None:
        raise JoinRefused("invitation_used")
    if vendor.home_tenant_id is None or claims.tid != str(vendor.home_tenant_id):
        raise JoinRefused("other_tenant")
    if claims.preferred_username.strip().lower() != membership.email:
        raise JoinRefused("other_address")
    if VendorMembership.objects.filter(vendor=vendor, tid=claims.tid, oid=claims.oid).exists():
        raise JoinRefused("already_staff")
    membership.tid, membership.oid, membership.invite_token_hash = claims.tid, claims.oid, ""
    membership.display_name, membership.joined_at = claims.name[:200], timezone.now()
    membership.user = _new_user(vendor, claims)
    membership.save()
    audit(vendor=vendor, kind=AuditEvent.Kind.STAFF_JOINED, tid=claims.tid, oid=claims.oid, email=membership.email)
    return membership


class LastAdmin(Exception):
    """The vendor's last administrator can't be removed."""


@transaction.atomic
def staff_remove(*, membership: VendorMembership, by: VendorMembership) -> None:
    """Remove a staff member (or an invitation): his portal account goes, and with it his sessions."""
    admins = VendorMembership.objects.filter(vendor_id=membership.vendor_id, role=VendorMembership.Role.ADMIN)
    if membership.role == VendorMembership.Role.ADMIN and admins.exclude(tid=None).count() <= 1 and membership.tid:
        raise LastAdmin
    audit(
        vendor=membership.vendor,
        kind=AuditEvent.Kind.STAFF_REMOVED,
        tid=str(membership.tid or ""),
        oid=str(membership.oid or ""),
        email=membership.email,
        by=str(by.oid or ""),
    )
    user = membership.user
    membership.delete()
    if user is not None:
        user.delete()
