"""What every JSON endpoint of tenant members shares: the error body, JSON 405s, and the
signed-in member (or the JSON error saying why there is none)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from identity.services import ConsentRevoked
from tenants import selectors
from tenants.models import CustomerTenant, TenantUser

JsonView = Callable[..., JsonResponse]


def json_error(status: int, error: str, message: str, **extra: Any) -> JsonResponse:
    """`{"error", "message", …}`; a `retry_after` (seconds) is also sent as `Retry-After`."""
    response = JsonResponse(
        {"error": error, "message": message, **{k: v for k, v in extra.items() if v is not None}}, status=status
    )
    if extra.get("retry_after") is not None:
        response["Retry-After"] = str(extra["retry_after"])
    return response


def json_methods(*methods: str) -> Callable[[JsonView], JsonView]:
    """Like require_http_methods, answering other methods with a JSON 405."""

    def decorator(view: JsonView) -> JsonView:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                response = json_error(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return checked

    return decorator


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
        message = ConsentRevoked.message.format(vendor=tenant.vendor.name)
        return json_error(403, ConsentRevoked.reason, message, action_url=admin_url(member))
    return json_error(
        403,
        "tenant_not_active",
        f"Your organization is not connected to {tenant.vendor.name}. An administrator can connect it.",
        action_url=admin_url(member),
    )
