"""A vendor's staff: invited by address, bound to `(tid, oid)` of the vendor's home tenant at the
first sign-in through the invitation's link, by `(tid, oid)` alone after that; their role changed
or removed by an administrator. Every step audited."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.crypto import digest
from integrations.entra import IdTokenClaims
from tenants.models import AuditEvent, Vendor, VendorMembership
from tenants.services import audit, portal_user

INVITATION_DAYS = 14
ADMIN = VendorMembership.Role.ADMIN


class AlreadyStaff(Exception):
    """Someone with this address is on the vendor's staff already."""


class JoinRefused(Exception):
    """Why a staff invitation was not accepted by this sign-in (a reason the refusal page explains)."""


class LastAdmin(Exception):
    """The vendor's last administrator can't be removed or made staff."""


@transaction.atomic
def staff_invite(*, vendor: Vendor, email: str, role: str, by: VendorMembership) -> tuple[VendorMembership, str]:
    """An invitation to the vendor's staff, and its link's token (shown once); inviting an address
    again replaces its open invitation's link. Audited."""
    Vendor.objects.select_for_update().get(pk=vendor.pk)  # one invitation of the vendor at a time
    email = email.strip().lower()
    if VendorMembership.objects.filter(vendor=vendor, email=email).exclude(tid=None).exists():
        raise AlreadyStaff(email)
    token = secrets.token_urlsafe(32)
    expires = timezone.now() + dt.timedelta(days=INVITATION_DAYS)
    membership, _ = VendorMembership.objects.update_or_create(
        vendor=vendor,
        email=email,
        tid=None,
        defaults={"role": role, "invite_token_hash": digest(token), "invite_expires_at": expires},
    )
    audit(vendor=vendor, kind=AuditEvent.Kind.STAFF_INVITED, oid=str(by.oid or ""), email=email, role=role)
    return membership, token


def staff_invitation_open(membership: VendorMembership) -> bool:
    expires = membership.invite_expires_at
    return membership.tid is None and expires is not None and expires > timezone.now()


@transaction.atomic
def staff_join(*, vendor: Vendor, token: str, claims: IdTokenClaims) -> VendorMembership:
    """Bind the invitation to whoever signed in with its link: a person of the vendor's home tenant
    with the invited address. From now on he is `(tid, oid)`; the address no longer counts."""
    membership = (
        VendorMembership.objects.select_for_update()
        .filter(vendor=vendor, invite_token_hash=digest(token), tid=None)
        .first()
    )
    if membership is None or not staff_invitation_open(membership):
        raise JoinRefused("invitation_used")
    if vendor.home_tenant_id is None or claims.tid != str(vendor.home_tenant_id):
        raise JoinRefused("other_tenant")
    if claims.preferred_username.strip().lower() != membership.email:
        raise JoinRefused("other_address")
    if VendorMembership.objects.filter(vendor=vendor, tid=claims.tid, oid=claims.oid).exists():
        raise JoinRefused("already_staff")
    membership.tid, membership.oid, membership.invite_token_hash = claims.tid, claims.oid, ""
    membership.display_name, membership.joined_at = claims.name[:200], timezone.now()
    membership.user = staff_user(vendor=vendor, claims=claims)
    membership.save()
    audit(vendor=vendor, kind=AuditEvent.Kind.STAFF_JOINED, tid=claims.tid, oid=claims.oid, email=membership.email)
    return membership


def staff_user(*, vendor: Vendor, claims: IdTokenClaims) -> Any:
    return portal_user(username=f"{vendor.slug}.staff.{claims.oid}", name=claims.name)


def _other_admins(membership: VendorMembership) -> int:
    """The vendor's other signed-up administrators, locked until the caller's transaction ends (two
    administrators removing each other at once leave one)."""
    admins = VendorMembership.objects.select_for_update().filter(vendor_id=membership.vendor_id, role=ADMIN)
    return len([pk for pk in admins.exclude(tid=None).values_list("pk", flat=True) if pk != membership.pk])


@transaction.atomic
def staff_role_set(*, membership: VendorMembership, role: str, by: VendorMembership) -> None:
    """Make a staff member an administrator, or an administrator staff (never the last one). Audited."""
    if membership.role == ADMIN and role != ADMIN and membership.tid and not _other_admins(membership):
        raise LastAdmin
    VendorMembership.objects.filter(pk=membership.pk, vendor_id=membership.vendor_id).update(role=role)
    audit(
        vendor=membership.vendor,
        kind=AuditEvent.Kind.STAFF_ROLE_CHANGED,
        oid=str(membership.oid or ""),
        email=membership.email,
        role=role,
        by=str(by.oid or ""),
    )


@transaction.atomic
def staff_remove(*, membership: VendorMembership, by: VendorMembership) -> None:
    """Remove a staff member (or an invitation): his portal account goes, and with it his sessions."""
    if membership.role == ADMIN and membership.tid and not _other_admins(membership):
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
