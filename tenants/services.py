"""Writes: vendors, customer tenants, tenant users, consent records, audit events."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy, ngettext_lazy
from django.views.decorators.debug import sensitive_variables

from core import crypto, rotation
from integrations import entra
from integrations.acs import AcsResource
from integrations.entra import EntraApp, IdTokenClaims
from tenants.models import (
    CONSENT_ROLES,
    PERSONAL_ACCOUNTS_TENANT,
    AuditEvent,
    ConsentRecord,
    CustomerTenant,
    TenantUser,
    Vendor,
    VendorMembership,
)
from tenants.scopes import DEFAULT_REQUESTED_SCOPES
from tenants.signals import Removed, tenant_activated, tenant_disconnected

Status = CustomerTenant.Status
# What members are told, wherever they meet a revoked consent (chats, calls).
CONSENT_REVOKED_MESSAGE = gettext_lazy(
    "Your organization's consent for {vendor} was revoked in Microsoft Entra ID. "
    "An administrator of your organization must grant consent again."
)


# vendors -------------------------------------------------------------------------------------
def _secret_context(vendor_client_id: str, name: str) -> str:
    return f"vendor:{vendor_client_id}:{name}"


@dataclass(frozen=True)
class AppCredential:
    """An Entra app's credential: a client secret (its expiry as Entra shows it) or a certificate."""

    secret: str = field(default="", repr=False)
    certificate: entra.Certificate | None = field(default=None, repr=False)
    secret_expires_at: dt.datetime | None = None

    @property
    def expires_at(self) -> dt.datetime | None:
        return self.certificate.not_after if self.certificate is not None else self.secret_expires_at


def vendor_save(
    *,
    name: str,
    slug: str,
    client_id: str,
    acs_connection_string: str,
    client_secret: str = "",
    credential: AppCredential | None = None,
    home_tenant_id: str | None = None,
    requested_scopes: list[str] | None = None,
) -> Vendor:
    """Create or update a vendor by slug; secrets are sealed with the newest key."""
    vendor, _ = Vendor.objects.update_or_create(
        slug=slug,
        defaults={
            "name": name,
            "entra_client_id": client_id,
            "home_tenant_id": home_tenant_id,
            **credential_fields(client_id, credential or AppCredential(secret=client_secret)),
            "acs_connection_string_sealed": seal_acs(client_id, acs_connection_string),
            "requested_scopes": requested_scopes or list(DEFAULT_REQUESTED_SCOPES),
        },
    )
    return vendor


def seal_acs(client_id: str, connection_string: str) -> str:
    return crypto.seal(connection_string, context=_secret_context(client_id, "acs"))


def credential_fields(client_id: str, credential: AppCredential) -> dict[str, Any]:
    """The Vendor columns that hold `credential`, sealed (and the other kind's emptied)."""
    certificate = credential.certificate
    if certificate is None:
        sealed_secret, sealed_certificate, kind = (
            crypto.seal(credential.secret, context=_secret_context(client_id, "client_secret")),
            "",
            Vendor.Credential.SECRET,
        )
    else:
        pem = json.dumps({"private_key": certificate.private_key, "certificate": certificate.certificate})
        sealed_secret, kind = "", Vendor.Credential.CERTIFICATE
        sealed_certificate = crypto.seal(pem, context=_secret_context(client_id, "certificate"))
    return {
        "entra_credential": kind,
        "entra_client_secret_sealed": sealed_secret,
        "entra_certificate_sealed": sealed_certificate,
        "entra_certificate_thumbprint": certificate.thumbprint if certificate else "",
        "entra_credential_expires_at": credential.expires_at,
    }


def vendor_entra_app(vendor: Vendor) -> EntraApp:
    client_id = str(vendor.entra_client_id)
    if vendor.entra_credential == Vendor.Credential.CERTIFICATE:
        return EntraApp(client_id=client_id, certificate=_certificate(client_id, vendor.entra_certificate_sealed))
    secret = crypto.unseal(vendor.entra_client_secret_sealed, context=_secret_context(client_id, "client_secret"))
    return EntraApp(client_id=client_id, client_secret=secret)


@functools.lru_cache(maxsize=64)
@sensitive_variables("pem")
def _certificate(client_id: str, sealed: str) -> entra.Certificate:
    # Parsed once per process and sealed value: every Entra request of the vendor's app needs it.
    pem = json.loads(crypto.unseal(sealed, context=_secret_context(client_id, "certificate")))
    return entra.certificate_from_pem(private_key=pem["private_key"], certificate=pem["certificate"])


def vendor_acs_resource(vendor: Vendor) -> AcsResource:
    sealed = vendor.acs_connection_string_sealed
    return AcsResource(crypto.unseal(sealed, context=_secret_context(str(vendor.entra_client_id), "acs")))


def vendor_credentials_replace(
    *, vendor: Vendor, by: VendorMembership, credential: AppCredential | None = None, acs_connection_string: str = ""
) -> Vendor:
    """Swap in credentials already proven live (the old ones stay valid in Entra and ACS until the
    vendor removes them there: no request fails in between). Audited."""
    client_id = str(vendor.entra_client_id)
    fields: dict[str, Any] = credential_fields(client_id, credential) if credential is not None else {}
    if acs_connection_string:
        fields["acs_connection_string_sealed"] = seal_acs(client_id, acs_connection_string)
    fields["credentials_changed_at"] = timezone.now()
    Vendor.objects.filter(pk=vendor.pk).update(**fields)
    audit(
        vendor=vendor,
        kind=AuditEvent.Kind.CREDENTIALS_CHANGED,
        tid=str(by.tid or ""),
        oid=str(by.oid or ""),
        entra=fields.get("entra_credential", ""),
        thumbprint=fields.get("entra_certificate_thumbprint", ""),
        acs=bool(acs_connection_string),
    )
    vendor.refresh_from_db()
    return vendor


# Every sealed column of tenants, for `manage.py rotate_encryption` (registered in TenantsConfig).
SEALED_COLUMNS = (
    rotation.SealedColumn(
        "vendor client secrets",
        Vendor,
        "entra_client_secret_sealed",
        lambda vendor: _secret_context(str(vendor.entra_client_id), "client_secret"),
    ),
    rotation.SealedColumn(
        "vendor certificates",
        Vendor,
        "entra_certificate_sealed",
        lambda vendor: _secret_context(str(vendor.entra_client_id), "certificate"),
    ),
    rotation.SealedColumn(
        "vendor ACS connection strings",
        Vendor,
        "acs_connection_string_sealed",
        lambda vendor: _secret_context(str(vendor.entra_client_id), "acs"),
    ),
)


# audit ---------------------------------------------------------------------------------------
def audit(
    *,
    vendor: Vendor,
    kind: str,
    tenant: CustomerTenant | None = None,
    tid: str = "",
    oid: str = "",
    reason: str = "",
    **details: Any,
) -> AuditEvent:
    return AuditEvent.objects.create(
        vendor=vendor,
        tenant=tenant,
        kind=kind,
        tid=tid or (str(tenant.tid) if tenant else ""),
        oid=oid,
        reason=reason,
        details=details,
    )


# sign-in -------------------------------------------------------------------------------------
def portal_user(*, username: str, name: str) -> Any:
    """A portal account for someone who signs in through Entra only (no usable password)."""
    return get_user_model().objects.create_user(username=username, first_name=name[:150])


def staff_sign_in(*, vendor: Vendor, claims: IdTokenClaims) -> VendorMembership | None:
    """The vendor's staff member for these claims, with a portal user; None if not staff."""
    membership = (
        VendorMembership.objects.filter(vendor=vendor, tid=claims.tid, oid=claims.oid).select_related("user").first()
    )
    if membership is None:
        return None
    if membership.user is None:
        membership.user = portal_user(username=f"{vendor.slug}.staff.{claims.oid}", name=claims.name)
    membership.display_name = claims.name[:200]
    membership.email = claims.preferred_username[:320].lower()  # display only: (tid, oid) identify
    membership.save(update_fields=["user", "display_name", "email"])
    audit(vendor=vendor, kind=AuditEvent.Kind.SIGN_IN, tid=claims.tid, oid=claims.oid, staff=True)
    return membership


class SignInRefused(Exception):
    """Why a sign-in is refused: a reason code the refusal page explains."""

    def __init__(self, reason: str, tenant: CustomerTenant | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tenant = tenant


def consent_role(wids: tuple[str, ...] | list[str]) -> tuple[str, str] | None:
    """The first consent-capable directory role in `wids`: (template id, name)."""
    return next(((w, CONSENT_ROLES[w]) for w in wids if w in CONSENT_ROLES), None)


def _refusal(tenant: CustomerTenant | None, *, onboarding: bool) -> str | None:
    if onboarding:
        return None
    if tenant is None or tenant.status == Status.PENDING:
        return "not_onboarded"
    if tenant.status == Status.CONSENT_REVOKED:
        return "consent_revoked"
    if tenant.status == Status.DISCONNECTED:
        return "disconnected"
    return None


def tenant_user_sign_in(*, vendor: Vendor, claims: IdTokenClaims, onboarding: bool) -> TenantUser:
    """The tenant user for validated claims, created or updated; raises SignInRefused (audited)."""
    try:
        return _tenant_user_sign_in(vendor=vendor, claims=claims, onboarding=onboarding)
    except SignInRefused as exc:
        # Audited after the rollback, so that the record stays.
        audit(
            vendor=vendor,
            kind=AuditEvent.Kind.SIGN_IN_REFUSED,
            tenant=exc.tenant,
            tid=claims.tid,
            oid=claims.oid,
            reason=exc.reason,
        )
        raise


@transaction.atomic
def _tenant_user_sign_in(*, vendor: Vendor, claims: IdTokenClaims, onboarding: bool) -> TenantUser:
    if claims.tid == PERSONAL_ACCOUNTS_TENANT:
        raise SignInRefused("personal_account")
    tenant = CustomerTenant.objects.select_for_update().filter(vendor=vendor, tid=claims.tid).first()
    reason = _refusal(tenant, onboarding=onboarding)
    if reason:
        raise SignInRefused(reason, tenant)
    if tenant is None:
        tenant = CustomerTenant.objects.create(vendor=vendor, tid=claims.tid, domain=_domain(claims))
    member = _tenant_user_upsert(tenant=tenant, claims=claims)
    now = timezone.now()
    tenant.last_activity_at = now
    tenant.save(update_fields=["last_activity_at"])
    audit(vendor=vendor, kind=AuditEvent.Kind.SIGN_IN, tenant=tenant, oid=claims.oid)
    return member


def _domain(claims: IdTokenClaims) -> str:
    return claims.preferred_username.rpartition("@")[2].lower()


def _tenant_user_upsert(*, tenant: CustomerTenant, claims: IdTokenClaims) -> TenantUser:
    roles = sorted(claims.wids)
    portal_role = TenantUser.Role.ADMIN if consent_role(roles) else TenantUser.Role.MEMBER
    member = TenantUser.objects.filter(tenant=tenant, oid=claims.oid).select_related("user").first()
    if member is None:
        user = portal_user(username=f"{tenant.vendor.slug}.{tenant.tid}.{claims.oid}", name=claims.name)
        member = TenantUser(tenant=tenant, oid=claims.oid, user=user)
    elif member.directory_roles != roles or member.portal_role != portal_role:
        audit(
            vendor=tenant.vendor,
            kind=AuditEvent.Kind.ROLE_CHANGED,
            tenant=tenant,
            oid=claims.oid,
            before={"roles": member.directory_roles, "portal_role": member.portal_role},
            after={"roles": roles, "portal_role": portal_role},
        )
    member.display_name = claims.name[:200]
    member.upn = claims.preferred_username[:320]
    member.directory_roles = roles
    member.portal_role = portal_role
    member.last_sign_in_at = timezone.now()
    member.save()
    return member


# consent -------------------------------------------------------------------------------------
@transaction.atomic
def consent_record_grant(
    *, tenant: CustomerTenant, admin: TenantUser, scopes: list[str], confirmed_by: str
) -> ConsentRecord:
    """The tenant is active from now on; the grant is recorded with the admin's role at this moment."""
    role = consent_role(admin.directory_roles)
    if role is None:
        raise ValueError("the admin has no consent-capable role")
    tenant = CustomerTenant.objects.select_for_update().get(pk=tenant.pk)
    now = timezone.now()
    tenant.status = Status.ACTIVE
    tenant.scopes_granted = scopes
    tenant.activated_at = tenant.activated_at or now
    tenant.status_changed_at = now
    tenant.last_confirmed_at = now
    tenant.save(update_fields=["status", "scopes_granted", "activated_at", "status_changed_at", "last_confirmed_at"])
    record = ConsentRecord.objects.create(
        tenant=tenant,
        kind=ConsentRecord.Kind.GRANTED,
        admin_oid=admin.oid,
        admin_name=admin.display_name,
        admin_role_id=role[0],
        admin_role=role[1],
        scopes=scopes,
        confirmed_by=confirmed_by,
    )
    audit(
        vendor=tenant.vendor,
        kind=AuditEvent.Kind.CONSENT_GRANTED,
        tenant=tenant,
        oid=str(admin.oid),
        role=role[1],
        scopes=scopes,
    )
    tenant_activated.send(sender=CustomerTenant, tenant=tenant, admin=admin)
    return record


@transaction.atomic
def tenant_mark_consent_revoked(*, tenant: CustomerTenant, detected_by: str, codes: list[int]) -> bool:
    """Mark an active tenant as consent revoked (once); True when this call changed it."""
    tenant = CustomerTenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status != Status.ACTIVE:
        return False
    tenant.status = Status.CONSENT_REVOKED
    tenant.scopes_granted = []
    tenant.status_changed_at = timezone.now()
    tenant.save(update_fields=["status", "scopes_granted", "status_changed_at"])
    errors = ", ".join(f"AADSTS{code}" for code in codes)
    ConsentRecord.objects.create(
        tenant=tenant, kind=ConsentRecord.Kind.REVOKED, scopes=[], confirmed_by=f"{detected_by}: {errors}"
    )
    audit(
        vendor=tenant.vendor, kind=AuditEvent.Kind.CONSENT_REVOKED, tenant=tenant, detected_by=detected_by, codes=codes
    )
    return True


def tenant_record_exchange(*, tenant: CustomerTenant) -> None:
    """Count an Entra → ACS token exchange (in one UPDATE, whatever runs at the same time)."""
    now = timezone.now()
    CustomerTenant.objects.filter(pk=tenant.pk).update(
        acs_exchanges=F("acs_exchanges") + 1, last_acs_exchange_at=now, last_activity_at=now
    )


class TransientEntraError(Exception):
    """Entra could not answer now (network, 5xx, throttling): try again later."""


def tenant_confirm_consent(*, tenant: CustomerTenant) -> str:
    """Ask Entra for a client-credentials token in the tenant: consent still there, or revoked."""
    try:
        entra.confirm_app_in_tenant(vendor_entra_app(tenant.vendor), str(tenant.tid))
    except entra.EntraError as exc:
        if exc.consent_revoked:
            tenant_mark_consent_revoked(
                tenant=tenant, detected_by="consent check (client credentials)", codes=exc.codes
            )
            return "revoked"
        raise TransientEntraError(f"{exc.error} {exc.codes}") from None
    except OSError as exc:
        raise TransientEntraError(type(exc).__name__) from None
    tenant.last_confirmed_at = timezone.now()
    tenant.save(update_fields=["last_confirmed_at"])
    return "confirmed"


@transaction.atomic
def tenant_disconnect(*, tenant: CustomerTenant, by: TenantUser) -> list[Removed]:
    """Sign-in is refused from now on, and everything the portal keeps of the tenant is removed but
    its consent and audit records; what was removed, counted."""
    # First: writers of the tenant's data hold it active (FOR KEY SHARE) while they write, so this
    # waits for them, and those that come later find it disconnected.
    tenant = CustomerTenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status == Status.DISCONNECTED:
        return []
    tenant.status = Status.DISCONNECTED
    tenant.scopes_granted = []
    tenant.status_changed_at = timezone.now()
    tenant.save(update_fields=["status", "scopes_granted", "status_changed_at"])
    users = get_user_model().objects.filter(tenant_user__tenant=tenant)
    removed = [Removed(users.count(), "people", ngettext_lazy("%(count)d person", "%(count)d people", "count"))]
    # Before the users go: the receiver may need their tokens for work it leaves to a worker.
    for _, items in tenant_disconnected.send(sender=CustomerTenant, tenant=tenant):
        removed += cast(list[Removed], items)
    users.delete()  # their memberships and token caches with them
    audit(
        vendor=tenant.vendor,
        kind=AuditEvent.Kind.TENANT_DISCONNECTED,
        tenant=tenant,
        oid=str(by.oid),
        removed={item.many: item.count for item in removed},
    )
    return removed
