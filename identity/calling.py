"""Calling in the browser: the page, the ACS token endpoint its credential refreshes from, people."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import coordination
from core.http import json_error, json_methods
from identity import services
from tenants import selectors
from tenants.api import member_or_error
from tenants.models import CustomerTenant, TenantUser

PEOPLE_LIMIT = 20
UNAVAILABLE = {"heading": gettext_lazy("Calling isn't available"), "verb": "call"}


def _sign_in_url(member: TenantUser) -> str:
    """The vendor's sign-in page, coming back to the calling page."""
    return f"{reverse('vendor_page', args=[member.tenant.vendor.slug])}?{urlencode({'next': reverse('call')})}"


@never_cache
@json_methods("POST")
def acs_token(request: HttpRequest) -> JsonResponse:
    """The signed-in user's ACS token (for AzureCommunicationTokenCredential's refresher)."""
    # The member and his tenant come with the session's user: the warm path makes no query, and
    # no Redis round trip once this process keeps the token (identity.services).
    known = selectors.access_member(user=request.user)
    try:
        cached = services.cached_acs_token(member=known) if known is not None else None
    except coordination.RedisError:
        cached = None  # the slow path says what is unavailable
    if cached is not None:
        return _token_response(cached)
    member = member_or_error(request, verb="call")
    if isinstance(member, JsonResponse):
        return member
    try:
        token = services.acs_token_for_user(member=member)
    except services.TokenUnavailable as exc:
        return json_error(
            exc.status,
            exc.reason,
            exc.message.format(vendor=member.tenant.vendor.name),
            retry_after=None if exc.retry_after is None else max(1, round(exc.retry_after)),
            action_url=_sign_in_url(member) if exc.status == 401 else None,
        )
    return _token_response(token)


def _token_response(token: services.TeamsUserToken) -> JsonResponse:
    return JsonResponse(
        {
            "token": token.token,
            "expires_on": token.expires_at.isoformat(),
            "teams_user": {"id": token.oid, "raw_id": f"8:orgid:{token.oid}", "cloud": "public"},
        }
    )


@never_cache
@json_methods("GET")
def people(request: HttpRequest) -> JsonResponse:
    """People of the caller's tenant to call, by name or UPN."""
    member = member_or_error(request, verb="call")
    if isinstance(member, JsonResponse):
        return member
    query = request.GET.get("q", "").strip()[:100]
    found = list(selectors.tenant_people(member=member, query=query)[: PEOPLE_LIMIT + 1])
    return JsonResponse(
        {
            "people": [{"id": str(p.oid), "name": p.display_name, "upn": p.upn} for p in found[:PEOPLE_LIMIT]],
            "has_more": len(found) > PEOPLE_LIMIT,
        }
    )


@login_required
@require_GET
def call_page(request: HttpRequest) -> HttpResponse:
    member = selectors.access_member(user=request.user)
    if member is None:
        return render(request, "portal/unavailable.html", {**UNAVAILABLE, "reason": "not_a_tenant_user"}, status=403)
    if member.tenant.status != CustomerTenant.Status.ACTIVE:
        return render(
            request,
            "portal/unavailable.html",
            {**UNAVAILABLE, "reason": member.tenant.status, "member": member},
            status=403,
        )
    config = {
        "tokenUrl": reverse("acs_token"),
        "peopleUrl": reverse("call_people"),
        "displayName": member.display_name,
        "teamsUserId": str(member.oid),
        "connectTimeoutMs": settings.CALL_CONNECT_TIMEOUT_MS,
    }
    return render(request, "identity/call.html", {"member": member, "call_config": config})
