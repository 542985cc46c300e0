"""What the JSON endpoints of tenant members share: the signed-in member of an active tenant, or
the JSON error saying why there is none (and where an admin fixes it)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

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
        message = _("Sign in to chat.") if verb == "chat" else _("Sign in to call.")
        return json_error(401, "not_signed_in", message, action_url=reverse("home"))
    member = selectors.access_member(user=request.user)
    if member is None:
        if verb == "chat":
            message = _("Only users of a connected organization can chat.")
        else:
            message = _("Only users of a connected organization can call.")
        return json_error(403, "not_a_tenant_user", message)
    tenant = member.tenant
    if tenant.status == CustomerTenant.Status.ACTIVE:
        return member
    if tenant.status == CustomerTenant.Status.CONSENT_REVOKED:
        message = CONSENT_REVOKED_MESSAGE.format(vendor=tenant.vendor.name)
        return json_error(403, tenant.status, message, action_url=admin_url(member))
    return json_error(
        403,
        "tenant_not_active",
        _("Your organization is not connected to %(vendor)s. An administrator can connect it.")
        % {"vendor": tenant.vendor.name},
        action_url=admin_url(member),
    )
