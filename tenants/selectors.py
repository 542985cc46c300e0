"""Reads, always scoped: a vendor's customers, a tenant's users and records."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from core.crypto import digest
from tenants.models import ConsentRecord, CustomerTenant, TenantUser, Vendor, VendorInvitation, VendorMembership


def vendor_for_slug(slug: str) -> Vendor:
    vendor = Vendor.objects.filter(slug=slug).first()
    if vendor is None:
        raise Http404("No such vendor")
    return vendor


def access_vendor_staff(*, user: User | AnonymousUser, slug: str) -> VendorMembership:
    """The user's membership of the vendor's staff (with the vendor); the same 404 for missing and not-yours."""
    membership = (
        VendorMembership.objects.select_related("vendor").filter(vendor__slug=slug, user=user).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404("No such vendor")
    return membership


def access_vendor_admin(*, user: User | AnonymousUser, slug: str) -> VendorMembership:
    """The user's membership of the vendor's staff as an administrator (with the vendor); 404 otherwise."""
    membership = (
        VendorMembership.objects.select_related("vendor")
        .filter(vendor__slug=slug, user=user, role=VendorMembership.Role.ADMIN)
        .first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404("No such vendor")
    return membership


def access_operator(*, user: User | AnonymousUser) -> User:
    """The platform operator (a superuser); 404 for anyone else, as for a page that does not exist."""
    if not (user.is_authenticated and user.is_superuser):
        raise Http404("No such page")
    return user


def invitation_for_token(token: str) -> VendorInvitation:
    """The vendor invitation whose link carries `token`; 404 for any other token."""
    invitation = VendorInvitation.objects.filter(token_hash=digest(token)).first()
    if invitation is None:
        raise Http404("No such invitation")
    return invitation


def staff_invitation(*, vendor: Vendor, token: str) -> VendorMembership:
    invited = (
        VendorMembership.objects.filter(vendor=vendor, invite_token_hash=digest(token), tid=None)
        .filter(invite_expires_at__gt=timezone.now())
        .first()
    )
    if invited is None:
        raise Http404("No such invitation")
    return invited


def vendor_staff(*, vendor: Vendor) -> QuerySet[VendorMembership]:
    return VendorMembership.objects.filter(vendor=vendor).order_by("-role", "display_name", "email", "pk")


def operator_vendors() -> QuerySet[Vendor]:
    return Vendor.objects.annotate(customer_count=Count("customers", distinct=True)).order_by("name")


def operator_invitations() -> QuerySet[VendorInvitation]:
    return VendorInvitation.objects.select_related("vendor").order_by("-created_at")


def access_admin_tenant(*, user: User | AnonymousUser) -> TenantUser:
    """The signed-in tenant admin, with the tenant; 404 for anyone else."""
    member = (
        TenantUser.objects.select_related("tenant__vendor").filter(user=user, portal_role=TenantUser.Role.ADMIN).first()
        if user.is_authenticated
        else None
    )
    if member is None:
        raise Http404("No such tenant")
    return member


def access_member(*, user: User | AnonymousUser) -> TenantUser | None:
    """The signed-in user's own tenant membership (with tenant and vendor), or None.

    The session's user comes with it (identity.backends): no query of its own then.
    """
    if not user.is_authenticated:
        return None
    try:
        return user.tenant_user
    except TenantUser.DoesNotExist:
        return None


def vendor_customers(*, vendor: Vendor, query: str = "", status: str = "") -> QuerySet[CustomerTenant]:
    customers = CustomerTenant.objects.filter(vendor=vendor)
    if status:
        customers = customers.filter(status=status)
    if query:
        match = Q(display_name__icontains=query) | Q(domain__icontains=query)
        if _is_guid(query):
            match |= Q(tid=query)
        customers = customers.filter(match)
    return customers.annotate(user_count=Count("users")).order_by("display_name", "domain", "id")


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def tenant_consent_history(*, tenant: CustomerTenant) -> QuerySet[ConsentRecord]:
    return ConsentRecord.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def last_grants(*, tenant_ids: list[int]) -> dict[int, ConsentRecord]:
    """The newest grant of each tenant (whatever the length of its history), in one query."""
    newest = (
        ConsentRecord.objects.filter(tenant=OuterRef("tenant"), kind=ConsentRecord.Kind.GRANTED)
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    grants = ConsentRecord.objects.filter(tenant_id__in=tenant_ids, pk=Subquery(newest))
    return {grant.tenant_id: grant for grant in grants}


def vendor_revoked_count(*, vendor: Vendor) -> int:
    return CustomerTenant.objects.filter(vendor=vendor, status=CustomerTenant.Status.CONSENT_REVOKED).count()


def tenant_users(*, tenant: CustomerTenant) -> QuerySet[TenantUser]:
    return TenantUser.objects.filter(tenant=tenant).order_by("display_name", "id")


def tenant_people(*, member: TenantUser, query: str = "") -> QuerySet[TenantUser]:
    """Other people of the member's tenant, by name or UPN."""
    people = TenantUser.objects.filter(tenant=member.tenant).exclude(pk=member.pk)
    if query:
        people = people.filter(Q(display_name__icontains=query) | Q(upn__icontains=query))
    return people.order_by("display_name", "id")
