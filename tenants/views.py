"""The vendor's public page, onboarding (admin consent), the tenant admin page, the vendor dashboard."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat.tasks import sync_member_chats
from identity import crypto
from identity import services as identity_services
from identity.views import CONSENT_KEY, refused, safe_next, start
from integrations import entra
from tenants import selectors, services
from tenants.models import CONSENT_ROLES, AuditEvent, CustomerTenant, TenantUser, Vendor
from tenants.scopes import missing_scopes

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


@require_POST
def connect(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Connect your organization": the admin signs in first, so that we know who and in which role."""
    return start(request, vendor=selectors.vendor_for_slug(slug), purpose="onboard")


def _callback_problem(pending: dict[str, Any] | None, member: TenantUser, query: QueryDict) -> str | None:
    """Why this consent callback is not the one we started, or None."""
    tenant = member.tenant
    if not pending or not secrets.compare_digest(query.get("state", ""), pending["state"]):
        return "state_mismatch"
    if pending["vendor"] != tenant.vendor_id or pending["tid"] != str(tenant.tid):
        return "callback_mismatch"
    if query.get("error"):
        return f"entra:{query.get('error', '')[:40]}"
    if query.get("admin_consent") != "True" or query.get("tenant", "").lower() != str(tenant.tid):
        return "callback_mismatch"
    return None


@login_required
@require_GET
def onboarding_callback(request: HttpRequest) -> HttpResponse:
    """Entra's admin consent redirect. Its query is unsigned: trust nothing until confirmed."""
    pending = request.session.pop(CONSENT_KEY, None)
    member = selectors.access_member(user=request.user)
    if member is None:
        return refused(request, vendor=None, reason="consent_state_mismatch", status=400)
    tenant = member.tenant
    vendor = tenant.vendor
    problem = _callback_problem(pending, member, request.GET)
    if problem is not None:
        services.audit(vendor=vendor, kind=AuditEvent.Kind.CONSENT_REFUSED, tenant=tenant, reason=problem)
        if problem.startswith("entra:"):
            messages.error(request, "Consent was not granted, so the organization is not connected. You can try again.")
            return redirect("tenant_admin")
        return refused(request, vendor=vendor, reason="consent_state_mismatch", status=400)
    app = services.vendor_entra_app(vendor)
    try:
        entra.confirm_app_in_tenant(app, str(tenant.tid))
        # The admin's own tokens, kept at the onboarding sign-in.
        cache = identity_services.token_cache_load(member=member)
        entra.confirm_scopes_consented(app, cache=cache, scopes=list(vendor.requested_scopes))
    except crypto.DecryptionError:
        services.audit(vendor=vendor, kind=AuditEvent.Kind.CONSENT_REFUSED, tenant=tenant, reason="not_confirmed")
        return refused(request, vendor=vendor, reason="consent_not_confirmed", status=400)
    except entra.EntraError as exc:
        services.audit(
            vendor=vendor, kind=AuditEvent.Kind.CONSENT_REFUSED, tenant=tenant, reason="not_confirmed", codes=exc.codes
        )
        return refused(request, vendor=vendor, reason="consent_not_confirmed", status=400)
    services.consent_record_grant(
        tenant=tenant,
        admin=member,
        scopes=list(vendor.requested_scopes),
        confirmed_by="client-credentials token for the tenant; the admin's tokens for every requested scope",
    )
    messages.success(request, f"{tenant.display_name or tenant.domain} is connected to {vendor.name}.")
    # The admin is a Teams user too: his chats, now that the tenant is active.
    transaction.on_commit(lambda: sync_member_chats.delay(member.pk))
    return redirect("tenant_admin")


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


@require_POST
def reconsent(request: HttpRequest) -> HttpResponse:
    member = selectors.access_admin_tenant(user=request.user)
    if services.consent_role(member.directory_roles) is None:
        return refused(request, vendor=member.tenant.vendor, reason="not_consent_admin")
    # A fresh sign-in gives the tokens that the consent callback confirms the scopes with.
    return start(request, vendor=member.tenant.vendor, purpose="onboard")


@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest) -> HttpResponse:
    member = selectors.access_admin_tenant(user=request.user)
    tenant = member.tenant
    if request.method == "POST":
        if request.POST.get("confirm_domain", "").strip().lower() != tenant.domain.lower():
            messages.error(request, "Type your organization's domain exactly to confirm.")
            return render(request, "tenants/disconnect.html", {"tenant": tenant}, status=400)
        vendor = tenant.vendor
        services.tenant_disconnect(tenant=tenant, by=member)
        logout(request)
        messages.success(request, f"Your organization is disconnected from {vendor.name}; its data was removed.")
        return redirect("vendor_page", vendor.slug)
    return render(request, "tenants/disconnect.html", {"tenant": tenant})


@require_GET
def vendor_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    vendor = selectors.access_vendor(user=request.user, slug=slug)
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
        },
    )
