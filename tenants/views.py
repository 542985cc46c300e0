"""The vendor's public page, the tenant admin page (and disconnecting), the vendor dashboard.

Sign-in and onboarding (admin consent) are identity's: identity.views."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from core.http import safe_next
from tenants import registration, selectors, services
from tenants.models import CONSENT_ROLES, CustomerTenant, Vendor, VendorMembership
from tenants.scopes import missing_scopes
from tenants.signals import Removed

PAGE_SIZE = 25


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    member = selectors.access_member(user=request.user)
    vendors = Vendor.objects.order_by("name")
    # Sent here to sign in (a chat link, say): the provider's sign-in comes back to that page.
    next_url = "" if request.user.is_authenticated else safe_next(request, request.GET.get("next", ""))
    return render(request, "portal/home.html", {"member": member, "vendors": vendors, "next": next_url})


@require_GET
def vendor_page(request: HttpRequest, slug: str) -> HttpResponse:
    vendor = selectors.vendor_for_slug(slug)
    next_url = safe_next(request, request.GET.get("next", ""))
    context = {"vendor": vendor, "consent_roles": CONSENT_ROLES.values(), "next": next_url}
    return render(request, "tenants/vendor.html", context)


@require_GET
def tenant_admin(request: HttpRequest) -> HttpResponse:
    member = selectors.access_admin_tenant(user=request.user)
    tenant = member.tenant
    missing = missing_scopes(requested=list(tenant.vendor.requested_scopes), granted=list(tenant.scopes_granted))
    users = Paginator(selectors.tenant_users(tenant=tenant), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "tenants/tenant_admin.html",
        {
            "member": member,
            "tenant": tenant,
            "vendor": tenant.vendor,
            "missing_scopes": missing,
            "history": selectors.tenant_consent_history(tenant=tenant)[:50],
            "users": users,
            "Status": CustomerTenant.Status,
        },
    )


@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest) -> HttpResponse:
    member = selectors.access_admin_tenant(user=request.user)
    tenant = member.tenant
    if request.method == "POST":
        if request.POST.get("confirm_domain", "").strip().lower() != tenant.domain.lower():
            messages.error(request, _("Type your organization's domain exactly to confirm."))
            return render(request, "tenants/disconnect.html", {"tenant": tenant}, status=400)
        vendor = tenant.vendor
        removed = services.tenant_disconnect(tenant=tenant, by=member)
        logout(request)
        disconnected = _("Your organization is disconnected from %(vendor)s.") % {"vendor": vendor.name}
        messages.success(request, f"{disconnected} {_removed_text(removed)}")
        return redirect("vendor_page", vendor.slug)
    return render(request, "tenants/disconnect.html", {"tenant": tenant})


def _removed_text(removed: list[Removed]) -> str:
    """What disconnecting removed, as the admin reads it."""
    return _("Removed from the portal: %(items)s.") % {"items": ", ".join(str(item) for item in removed if item.count)}


@require_GET
def vendor_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    staff = selectors.access_vendor_staff(user=request.user, slug=slug)
    vendor = staff.vendor
    query = request.GET.get("q", "").strip()[:100]
    status = request.GET.get("status", "")
    status = status if status in CustomerTenant.Status.values else ""
    page = Paginator(selectors.vendor_customers(vendor=vendor, query=query, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    grants = selectors.last_grants(tenant_ids=[t.pk for t in page])
    rows = [(tenant, grants.get(tenant.pk)) for tenant in page]
    revoked = selectors.vendor_revoked_count(vendor=vendor)
    return render(
        request,
        "tenants/vendor_dashboard.html",
        {
            "vendor": vendor,
            "page": page,
            "rows": rows,
            "query": query,
            "status": status,
            "statuses": CustomerTenant.Status.choices,
            "revoked_count": revoked,
            "is_admin": staff.role == VendorMembership.Role.ADMIN,
            "warning": registration.credential_warning(vendor=vendor),
            "onboarding_url": request.build_absolute_uri(reverse("vendor_page", args=[vendor.slug])),
        },
    )
