"""What the JSON endpoints of tenant members share: the signed-in member of an active tenant, or
the JSON error saying why there is none (and where an admin fixes it)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from core.http import json_error
from tenants import selectors
from tenants.models import CustomerTenant, TenantUser
from tenants.services import CONSENT_REVOKED_MESSAGE


def admin_url(member: TenantUser) -> str | None:
    """Where a tenant admin fixes the connection; nothing for members."""
    return reverse("tenant_admin") if member.portal_role == TenantUser.Role.ADMIN else None


def member_or_error(request: HttpRequest, *, verb: str) -> TenantUser | JsonResponse:
    """The signed-in member of an active tenant, or why he can't `verb` ("call", "chat")."""
    if not request.user.is_authenticated:
        return json_error(401, "not_signed_in", f"Sign in to {verb}.", action_url=reverse("home"))
    member = selectors.access_member(user=request.user)
    if member is None:
        return json_error(403, "not_a_tenant_user", f"Only users of a connected organization can {verb}.")
    tenant = member.tenant
    if tenant.status == CustomerTenant.Status.ACTIVE:
        return member
    if tenant.status == CustomerTenant.Status.CONSENT_REVOKED:
        message = CONSENT_REVOKED_MESSAGE.format(vendor=tenant.vendor.name)
        return json_error(403, tenant.status, message, action_url=admin_url(member))
    return json_error(
        403,
        "tenant_not_active",
        f"Your organization is not connected to {tenant.vendor.name}. An administrator can connect it.",
        action_url=admin_url(member),
    )
