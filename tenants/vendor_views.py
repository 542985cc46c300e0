"""The platform operator's page (vendors and invitations), and a vendor administrator's pages: the
app's and ACS's credentials (replaced without downtime), the staff (invited, their role changed,
removed)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from tenants import proofs, registration, selectors, staff
from tenants.forms import CredentialForm, InviteStaffForm, InviteVendorForm, StaffRoleForm
from tenants.models import Vendor, VendorInvitation, VendorMembership
from tenants.services import vendor_credentials_replace

# An invitation's link is shown once, on the page the POST redirects to (so that a reload does
# not invite again); meanwhile it waits in the session.
LINK_KEY = "invitation_link"


def _show_once(request: HttpRequest, link: str, redirect_to: str) -> HttpResponse:
    request.session[LINK_KEY] = link
    return redirect(redirect_to)


# the operator --------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def operator(request: HttpRequest) -> HttpResponse:
    # The operator signs in at the Django admin first (/admin/); to anyone else this is a 404.
    user = selectors.access_operator(user=request.user)
    form = InviteVendorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invitation, token = registration.invitation_create(
            name=form.cleaned_data["name"], contact_email=form.cleaned_data["contact_email"], by=user
        )
        messages.success(
            request,
            _("%(name)s is invited. Send them the link below; it is shown only now.") % {"name": invitation.name},
        )
        return _show_once(request, request.build_absolute_uri(reverse("vendor_register", args=[token])), "operator")
    rows = [(vendor, registration.credential_warning(vendor=vendor)) for vendor in selectors.operator_vendors()]
    context = {
        "form": form,
        "link": request.session.pop(LINK_KEY, "") if request.method == "GET" else "",
        "rows": rows,
        "invitations": selectors.operator_invitations()[:100],
        "now": timezone.now(),
        "days": registration.INVITATION_DAYS,
    }
    return render(request, "tenants/operator.html", context, status=400 if form.errors else 200)


@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    selectors.access_operator(user=request.user)
    invitation = get_object_or_404(VendorInvitation, pk=invitation_id)
    registration.invitation_revoke(invitation=invitation)
    messages.success(
        request, _("The invitation of %(name)s is revoked: its link no longer works.") % {"name": invitation.name}
    )
    return redirect("operator")


# a vendor's administrators -------------------------------------------------------------------
@sensitive_post_parameters("client_secret", "acs_connection_string")
@require_http_methods(["GET", "POST"])
def vendor_credentials(request: HttpRequest, slug: str) -> HttpResponse:
    admin = selectors.access_vendor_admin(user=request.user, slug=slug)
    vendor = admin.vendor
    form = CredentialForm(request.POST or None, request.FILES or None, replacing=True)
    if request.method == "POST" and form.is_valid():
        try:
            _prove(vendor, form)
        except proofs.RegistrationRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            vendor_credentials_replace(
                vendor=vendor,
                by=admin,
                credential=form.credential,
                acs_connection_string=form.cleaned_data.get("acs_connection_string") or "",
            )
            messages.success(request, _("The new credentials work and are in use now. Remove the old ones in Azure."))
            return redirect("vendor_credentials", vendor.slug)
    context = {"vendor": vendor, "form": form, "warning": registration.credential_warning(vendor=vendor)}
    return render(request, "tenants/vendor_credentials.html", context, status=400 if form.errors else 200)


def _prove(vendor: Vendor, form: CredentialForm) -> None:
    """Each new credential live before it replaces the old one (RegistrationRefused says what fails)."""
    if form.credential is not None:
        if vendor.home_tenant_id is None:
            raise proofs.RegistrationRefused("", _("The app's home tenant is not known: the operator can set it."))
        tenant = str(vendor.home_tenant_id)
        app = proofs.app_with(client_id=str(vendor.entra_client_id), credential=form.credential)
        proofs.credential_prove(app=app, credential=form.credential, tenant_id=tenant, tenant=tenant)
    if form.cleaned_data.get("acs_connection_string"):
        proofs.acs_prove(acs_connection_string=form.cleaned_data["acs_connection_string"])


@require_http_methods(["GET", "POST"])
def vendor_staff(request: HttpRequest, slug: str) -> HttpResponse:
    admin = selectors.access_vendor_admin(user=request.user, slug=slug)
    vendor = admin.vendor
    form = InviteStaffForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invited, token = staff.staff_invite(
                vendor=vendor, email=form.cleaned_data["email"], role=form.cleaned_data["role"], by=admin
            )
        except staff.AlreadyStaff:
            form.add_error("email", _("This address is on the staff already."))
        else:
            messages.success(
                request,
                _("%(name)s is invited. Send them the link below; it is shown only now.") % {"name": invited.email},
            )
            link = request.build_absolute_uri(reverse("vendor_join", args=[vendor.slug, token]))
            return _show_once(request, link, reverse("vendor_staff", args=[vendor.slug]))
    context = {
        "vendor": vendor,
        "me": admin,
        "form": form,
        "link": request.session.pop(LINK_KEY, "") if request.method == "GET" else "",
        "staff": selectors.vendor_staff(vendor=vendor),
        "roles": VendorMembership.Role.choices,
        "now": timezone.now(),
    }
    return render(request, "tenants/vendor_staff.html", context, status=400 if form.errors else 200)


@require_POST
def staff_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    admin = selectors.access_vendor_admin(user=request.user, slug=slug)
    member = get_object_or_404(VendorMembership, pk=membership_id, vendor=admin.vendor)
    form = StaffRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("vendor_staff", slug)
    try:
        staff.staff_role_set(membership=member, role=form.cleaned_data["role"], by=admin)
    except staff.LastAdmin:
        messages.error(request, _("The last administrator stays one: make someone else an administrator first."))
        return redirect("vendor_staff", slug)
    name = member.display_name or member.email
    if form.cleaned_data["role"] == VendorMembership.Role.ADMIN:
        messages.success(request, _("%(name)s is now an administrator.") % {"name": name})
    else:
        messages.success(request, _("%(name)s is now staff.") % {"name": name})
    return redirect("vendor_staff", slug)


@require_http_methods(["GET", "POST"])
def staff_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    """Asks first (GET), removes on the confirmation (POST)."""
    admin = selectors.access_vendor_admin(user=request.user, slug=slug)
    member = get_object_or_404(VendorMembership, pk=membership_id, vendor=admin.vendor)
    if request.method == "POST":
        try:
            staff.staff_remove(membership=member, by=admin)
        except staff.LastAdmin:
            messages.error(
                request, _("The last administrator can't be removed: make someone else an administrator first.")
            )
            return redirect("vendor_staff", slug)
        messages.success(
            request,
            _("%(name)s is removed from %(vendor)s's staff.")
            % {"name": member.display_name or member.email, "vendor": admin.vendor.name},
        )
        if member.pk == admin.pk:
            return redirect("home")
        return redirect("vendor_staff", slug)
    return render(request, "tenants/staff_remove.html", {"vendor": admin.vendor, "member": member})
