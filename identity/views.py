"""Sign-in with Entra ID, onboarding (an admin's consent for the organization) and a vendor's own
registration: one flow.

1. `sign_in` (a user or vendor staff), `connect` / `reconsent` (a customer's admin), `register` (a
   vendor's admin, through the app being registered) and `join` (invited vendor staff) start msal's
   auth code flow (state, nonce and PKCE kept in the session) and go to Entra.
2. `callback` redeems the code and validates the ID token ourselves; a sign-in opens the session,
   an onboarding checks the admin's directory role and goes on to Entra's admin consent, a
   registration creates the vendor, a join binds the staff invitation.
3. `onboarding_callback` takes Entra's unsigned consent redirect, bound to the session by `state`,
   and has the consent confirmed with Entra (identity.onboarding) before the tenant is active.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from allauth.account.utils import perform_login
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.http import safe_next
from identity import onboarding
from identity import services as identity_services
from identity.backends import BACKEND
from identity.id_tokens import InvalidIdToken, validate_id_token
from identity.signals import member_signed_in
from integrations import entra
from integrations.entra import IdTokenClaims
from tenants import registration, selectors, services, staff
from tenants.forms import RegistrationForm
from tenants.models import CONSENT_ROLES, AuditEvent, TenantUser, Vendor, VendorInvitation, VendorMembership
from tenants.proofs import RegistrationRefused
from tenants.scopes import ACS_RESOURCE, DEFAULT_REQUESTED_SCOPES, GRAPH_RESOURCE, SIGN_IN_SCOPES

FLOW_KEY = "entra_flow"
CONSENT_KEY = "consent_state"
PURPOSES = ("sign_in", "onboard", "register", "join")
# Staff sign in to manage the vendor: their ID token is all it takes.
STAFF_SCOPES = [f"{GRAPH_RESOURCE}/User.Read"]


# starting ------------------------------------------------------------------------------------
def start(request: HttpRequest, *, vendor: Vendor, purpose: str, next_url: str = "", **state: str) -> HttpResponse:
    """Begin an auth code flow with the vendor's app (state, nonce, PKCE kept in the session)."""
    scopes = STAFF_SCOPES if purpose == "join" else SIGN_IN_SCOPES
    context = {"vendor": vendor.pk, "purpose": purpose, "next": next_url, **state}
    return _begin(request, app=services.vendor_entra_app(vendor), scopes=scopes, state=context)


def _begin(request: HttpRequest, *, app: entra.EntraApp, scopes: list[str], state: dict[str, Any]) -> HttpResponse:
    flow = entra.start_sign_in(app, redirect_uri=request.build_absolute_uri(reverse("auth_callback")), scopes=scopes)
    request.session[FLOW_KEY] = {**state, "flow": flow}
    return HttpResponseRedirect(flow["auth_uri"])


@require_POST
def sign_in(request: HttpRequest, slug: str) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next", ""))
    return start(request, vendor=selectors.vendor_for_slug(slug), purpose="sign_in", next_url=next_url)


@require_POST
def connect(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Connect your organization": the admin signs in first, so that we know who and in which role."""
    return start(request, vendor=selectors.vendor_for_slug(slug), purpose="onboard")


@require_POST
def reconsent(request: HttpRequest) -> HttpResponse:
    member = selectors.access_admin_tenant(user=request.user)
    if services.consent_role(member.directory_roles) is None:
        return refused(request, vendor=member.tenant.vendor, reason="not_consent_admin")
    # A fresh sign-in gives the tokens that the consent callback confirms the scopes with.
    return start(request, vendor=member.tenant.vendor, purpose="onboard")


def refused(
    request: HttpRequest,
    *,
    vendor: Vendor | None,
    reason: str,
    status: int = 403,
    detail: str = "",
    retry_url: str = "",
) -> HttpResponse:
    context = {
        "vendor": vendor,
        "reason": reason,
        "detail": detail,
        "retry_url": retry_url,
        "consent_roles": CONSENT_ROLES.values(),
    }
    return render(request, "identity/refused.html", context, status=status)


def needs_admin(request: HttpRequest, *, vendor: Vendor) -> HttpResponse:
    """Names the roles that can consent and gives a link to send to such an admin."""
    connect_url = request.build_absolute_uri(reverse("vendor_page", args=[vendor.slug]))
    context = {"vendor": vendor, "consent_roles": CONSENT_ROLES.values(), "connect_url": connect_url}
    return render(request, "identity/needs_admin.html", context, status=403)


# Entra's redirect after the sign-in ----------------------------------------------------------
@sensitive_variables("result")
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop(FLOW_KEY, None)
    if not pending or pending.get("purpose") not in PURPOSES:
        return refused(request, vendor=None, reason="no_sign_in_in_progress", status=400)
    if pending["purpose"] == "register":
        return _registered(request, pending)
    vendor = Vendor.objects.filter(pk=pending["vendor"]).first()
    if vendor is None:
        return refused(request, vendor=None, reason="no_sign_in_in_progress", status=400)
    if "error" in request.GET:
        error = request.GET.get("error", "")[:64]
        services.audit(vendor=vendor, kind=AuditEvent.Kind.SIGN_IN_REFUSED, reason=f"entra:{error}")
        if pending["purpose"] == "onboard" and error == "access_denied":
            # Entra stops users who may not consent ("Need admin approval") before we learn their role.
            return needs_admin(request, vendor=vendor)
        return refused(request, vendor=vendor, reason="entra_declined")
    try:
        result = entra.finish_sign_in(
            services.vendor_entra_app(vendor), flow=pending["flow"], params=request.GET.dict()
        )
        claims = validate_id_token(result.id_token, client_id=str(vendor.entra_client_id), nonce=result.nonce)
    except entra.EntraError as exc:
        reason = (
            "user_disabled"
            if 50057 in exc.codes
            else ("state_mismatch" if exc.error == "state_mismatch" else "entra_error")
        )
        services.audit(vendor=vendor, kind=AuditEvent.Kind.SIGN_IN_REFUSED, reason=reason, codes=exc.codes)
        return refused(request, vendor=vendor, reason=reason, status=400 if reason == "state_mismatch" else 403)
    except InvalidIdToken as exc:
        services.audit(vendor=vendor, kind=AuditEvent.Kind.SIGN_IN_REFUSED, reason="invalid_id_token", detail=str(exc))
        return refused(request, vendor=vendor, reason="invalid_id_token", status=400)
    if pending["purpose"] == "onboard":
        return _onboard(request, vendor=vendor, claims=claims, token_cache=result.cache)
    if pending["purpose"] == "join":
        return _joined(request, vendor=vendor, claims=claims, token=pending.get("token", ""))
    return _sign_in(request, vendor=vendor, claims=claims, token_cache=result.cache, next_url=pending.get("next") or "")


@sensitive_variables("token_cache")
def _sign_in(
    request: HttpRequest, *, vendor: Vendor, claims: IdTokenClaims, token_cache: str, next_url: str
) -> HttpResponse:
    staff = services.staff_sign_in(vendor=vendor, claims=claims)
    if staff is not None and staff.user is not None:
        return _login(request, staff.user, reverse("vendor_dashboard", args=[vendor.slug]))
    try:
        member = services.tenant_user_sign_in(vendor=vendor, claims=claims, onboarding=False)
    except services.SignInRefused as exc:
        return refused(request, vendor=vendor, reason=exc.reason)
    _member_signed_in(member, token_cache)
    return _login(request, member.user, next_url or reverse("home"))


@sensitive_variables("token_cache")
def _member_signed_in(member: TenantUser, token_cache: str) -> None:
    # The refresh token from this sign-in serves later token requests (ACS, Graph), web and workers.
    identity_services.token_cache_seed(member=member, serialized=token_cache)
    member_signed_in.send(sender=TenantUser, member=member)


def _login(request: HttpRequest, user: User, redirect_url: str) -> HttpResponse:
    """allauth opens the session (and rotates its key), with the backend that loads the member."""
    user.backend = BACKEND
    response: HttpResponse = perform_login(request, user, redirect_url=redirect_url)
    return response


@sensitive_variables("token_cache")
def _onboard(request: HttpRequest, *, vendor: Vendor, claims: IdTokenClaims, token_cache: str) -> HttpResponse:
    if services.consent_role(claims.wids) is None:
        services.audit(
            vendor=vendor,
            kind=AuditEvent.Kind.SIGN_IN_REFUSED,
            tid=claims.tid,
            oid=claims.oid,
            reason="not_consent_admin",
        )
        return needs_admin(request, vendor=vendor)
    try:
        member = services.tenant_user_sign_in(vendor=vendor, claims=claims, onboarding=True)
    except services.SignInRefused as exc:
        return refused(request, vendor=vendor, reason=exc.reason)
    # The admin's tokens also let the consent callback confirm the scopes with Entra.
    identity_services.token_cache_seed(member=member, serialized=token_cache)
    _login(request, member.user, reverse("tenant_admin"))
    return _to_admin_consent(request, vendor=vendor, tid=claims.tid)


def _to_admin_consent(request: HttpRequest, *, vendor: Vendor, tid: str) -> HttpResponse:
    """Entra's admin consent for the vendor's scopes; `state` is bound to this session."""
    state = secrets.token_urlsafe(32)
    request.session[CONSENT_KEY] = {"state": state, "vendor": vendor.pk, "tid": tid}
    url = entra.admin_consent_url(
        services.vendor_entra_app(vendor),
        tenant=tid,
        state=state,
        scopes=list(vendor.requested_scopes),
        redirect_uri=request.build_absolute_uri(reverse("onboarding_callback")),
    )
    return redirect(url)


# Entra's redirect after the admin consent ----------------------------------------------------
@login_required
@require_GET
def onboarding_callback(request: HttpRequest) -> HttpResponse:
    """Entra's admin consent redirect. Its query is unsigned: trust nothing until confirmed."""
    pending = request.session.pop(CONSENT_KEY, None)
    member = selectors.access_member(user=request.user)
    if member is None:
        return refused(request, vendor=None, reason="consent_state_mismatch", status=400)
    tenant, vendor = member.tenant, member.tenant.vendor
    problem = onboarding.consent_callback_problem(pending=pending, member=member, query=request.GET)
    if problem is not None:
        services.audit(vendor=vendor, kind=AuditEvent.Kind.CONSENT_REFUSED, tenant=tenant, reason=problem)
        if problem.startswith("entra:"):
            messages.error(
                request, _("Consent was not granted, so the organization is not connected. You can try again.")
            )
            return redirect("tenant_admin")
        return refused(request, vendor=vendor, reason="consent_state_mismatch", status=400)
    try:
        onboarding.consent_confirm(member=member)
    except onboarding.ConsentNotConfirmed:
        return refused(request, vendor=vendor, reason="consent_not_confirmed", status=400)
    messages.success(
        request,
        _("%(organization)s is connected to %(vendor)s.")
        % {"organization": tenant.display_name or tenant.domain, "vendor": vendor.name},
    )
    return redirect("tenant_admin")


# a vendor registers itself ----------------------------------------------------------------------
@sensitive_variables("proven")
@sensitive_post_parameters("client_secret", "acs_connection_string")
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest, token: str) -> HttpResponse:
    """An invited vendor's admin: what to set up in Azure, then the app's credentials and ACS
    connection string, each proven live; then he signs in through the app itself.

    Answers 200 even to a refused form: Django logs the paths of 4xx answers, and this one holds
    the invitation's token."""
    invitation = selectors.invitation_for_token(token)
    problem = registration.invitation_problem(invitation=invitation)
    if problem is not None:
        return render(request, "identity/invitation_unusable.html", {"problem": problem})
    form = RegistrationForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid() and form.credential is not None:
        try:
            proven = registration.registration_prove(
                tenant=form.cleaned_data["tenant"].strip(),
                client_id=str(form.cleaned_data["client_id"]),
                credential=form.credential,
                acs_connection_string=form.cleaned_data["acs_connection_string"].strip(),
            )
        except RegistrationRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            registration.registration_hold(invitation=invitation, proven=proven)
            state = {"purpose": "register", "invitation": invitation.pk, "token": token}
            return _begin(request, app=proven.app, scopes=STAFF_SCOPES, state=state)
    context = {"invitation": invitation, "form": form, "setup": _entra_setup(request)}
    return render(request, "identity/register.html", context)


def _entra_setup(request: HttpRequest) -> dict[str, Any]:
    """What the vendor configures in Azure for this deployment of the portal."""
    apis = {ACS_RESOURCE: "Azure Communication Services", GRAPH_RESOURCE: "Microsoft Graph"}
    return {
        "redirect_uris": [
            request.build_absolute_uri(reverse(name)) for name in ("auth_callback", "onboarding_callback")
        ],
        "permissions": [
            (apis[scope.rpartition("/")[0]], scope.rpartition("/")[2]) for scope in DEFAULT_REQUESTED_SCOPES
        ],
    }


@sensitive_variables("pending", "proven")
def _registered(request: HttpRequest, pending: dict[str, Any]) -> HttpResponse:
    invitation = VendorInvitation.objects.filter(pk=int(pending.get("invitation") or 0)).first()
    retry = reverse("vendor_register", args=[str(pending.get("token", "-"))])
    proven = registration.registration_pending(invitation=invitation) if invitation is not None else None
    if invitation is None or proven is None:
        return refused(request, vendor=None, reason="registration_expired", status=400, retry_url=retry)
    try:
        admin, claims = _register_signed_in(request, invitation=invitation, proven=proven, flow=pending["flow"])
    except RegistrationRefused as exc:
        # Nothing of a refused registration is kept: its secrets go now.
        registration.registration_forget(invitation=invitation)
        return refused(request, vendor=None, reason="registration_refused", detail=exc.message, retry_url=retry)
    if not claims.wids:
        messages.warning(request, WIDS_MISSING)
    messages.success(
        request,
        _("%(vendor)s is registered. Send your customers the onboarding link below.") % {"vendor": admin.vendor.name},
    )
    return _login(request, cast(User, admin.user), reverse("vendor_dashboard", args=[admin.vendor.slug]))


@sensitive_variables("proven", "result")
def _register_signed_in(
    request: HttpRequest, *, invitation: VendorInvitation, proven: registration.Proven, flow: dict[str, Any]
) -> tuple[VendorMembership, IdTokenClaims]:
    """The admin back from signing in through the app: the vendor registered, or RegistrationRefused."""
    if "error" in request.GET:
        raise RegistrationRefused("", _("Microsoft Entra ID did not complete your sign-in through the app."))
    try:
        result = entra.finish_sign_in(proven.app, flow=flow, params=request.GET.dict())
        claims = validate_id_token(result.id_token, client_id=proven.client_id, nonce=result.nonce)
    except (entra.EntraError, InvalidIdToken):
        raise RegistrationRefused("", _("Your sign-in through the app could not be verified.")) from None
    return registration.registration_complete(invitation=invitation, proven=proven, claims=claims), claims


WIDS_MISSING = gettext_lazy(
    "Your sign-in carried no directory roles. Unless your account has none, add the optional claim "
    "for directory roles to the app (Token configuration → Add groups claim → Directory roles): "
    "without it, customers' administrators can't connect their organizations."
)


# vendor staff join ------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """An invited staff member signs in through the vendor's app to take his place."""
    vendor = selectors.vendor_for_slug(slug)
    invited = selectors.staff_invitation(vendor=vendor, token=token)
    if request.method == "POST":
        return start(request, vendor=vendor, purpose="join", token=token)
    return render(request, "identity/join.html", {"vendor": vendor, "invited": invited})


def _joined(request: HttpRequest, *, vendor: Vendor, claims: IdTokenClaims, token: str) -> HttpResponse:
    try:
        member = staff.staff_join(vendor=vendor, token=token, claims=claims)
    except staff.JoinRefused as exc:
        services.audit(
            vendor=vendor, kind=AuditEvent.Kind.SIGN_IN_REFUSED, tid=claims.tid, oid=claims.oid, reason=f"join:{exc}"
        )
        return refused(request, vendor=vendor, reason=f"join_{exc}")
    messages.success(request, _("Welcome to %(vendor)s's staff.") % {"vendor": vendor.name})
    return _login(request, cast(User, member.user), reverse("vendor_dashboard", args=[vendor.slug]))
