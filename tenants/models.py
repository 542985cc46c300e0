"""Vendors, their customer tenants, and the append-only consent and audit records.

The database enforces what matters most (tenants/triggers.py): consent and audit records can't
be changed or deleted, and a tenant's or member's `token_version` moves whenever its status or
role does, whatever wrote it (a bulk update, raw SQL). Cached ACS tokens are keyed by these
versions, so a status change withdraws them at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy

from tenants import triggers

# Directory roles that may grant tenant-wide consent, by role template id (the `wids` claim). Kept in
# English (consent records store them); pages show them translated.
CONSENT_ROLES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": gettext_noop("Global Administrator"),
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": gettext_noop("Application Administrator"),
    "158c047a-c907-4556-b7ef-446551a6b5f7": gettext_noop("Cloud Application Administrator"),
}
PERSONAL_ACCOUNTS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


class AppendOnlyError(Exception):
    """Consent and audit records are never changed or deleted."""


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """Refuses bulk changes before the database does (on SQLite in development, only this refuses)."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only")


class AppendOnly(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class Vendor(models.Model):
    """An ISV with one multitenant Entra app and one ACS resource."""

    class Credential(models.TextChoices):
        SECRET = "secret", _("Client secret")
        CERTIFICATE = "certificate", _("Certificate")

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    # The vendor's own Entra tenant: its app's home, where its staff sign in.
    home_tenant_id = models.UUIDField(null=True, blank=True)
    entra_client_id = models.UUIDField(unique=True)
    # The app's credential, one of the two, sealed with core.crypto; read through
    # tenants.services.vendor_entra_app(). The certificate is sealed JSON: private key and certificate.
    entra_credential = models.CharField(max_length=12, choices=Credential.choices, default=Credential.SECRET)
    entra_client_secret_sealed = models.TextField(blank=True)
    entra_certificate_sealed = models.TextField(blank=True)
    entra_certificate_thumbprint = models.CharField(max_length=40, blank=True, help_text="SHA-1, as Entra shows it.")
    entra_credential_expires_at = models.DateTimeField(null=True, blank=True)
    acs_connection_string_sealed = models.TextField()
    requested_scopes = models.JSONField(default=list, help_text="Delegated permissions customers consent to.")
    created_at = models.DateTimeField(auto_now_add=True)
    credentials_changed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class VendorInvitation(models.Model):
    """A platform operator's invitation to register a vendor. Its link carries a token that only the
    invitee has (the row keeps its SHA-256). Between proving the app's credentials and its admin's
    sign-in, the registration waits here, sealed (`pending_sealed`)."""

    name = models.CharField(max_length=200)
    contact_email = models.EmailField(blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    pending_sealed = models.TextField(blank=True)
    vendor = models.OneToOneField(Vendor, on_delete=models.PROTECT, null=True, blank=True, related_name="invitation")
    registered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class VendorMembership(models.Model):
    """A member of the vendor's staff, by (tid, oid) in the vendor's home tenant: sees the vendor's
    customers only. Invited by address, bound to (tid, oid) at the first sign-in, by that alone after."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Administrator")
        STAFF = "staff", pgettext_lazy("role", "Staff")

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="memberships")
    tid = models.UUIDField(null=True, blank=True)
    oid = models.UUIDField(null=True, blank=True)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.STAFF)
    email = models.CharField(max_length=320, blank=True, help_text="The address invited; display only.")
    display_name = models.CharField(max_length=200, blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="vendor_membership"
    )
    # SHA-256 of the invitation link's token, until the invitee signs in (or it expires).
    invite_token_hash = models.CharField(max_length=64, blank=True)
    invite_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    joined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(fields=["vendor", "tid", "oid"], name="uniq_vendor_member")]

    def __str__(self) -> str:
        return f"{self.display_name or self.email or self.oid} @ {self.vendor}"


class CustomerTenant(models.Model):
    """One Entra tenant as a customer of one vendor."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending consent")
        ACTIVE = "active", _("Active")
        CONSENT_REVOKED = "consent_revoked", _("Consent revoked")
        DISCONNECTED = "disconnected", _("Disconnected")

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="customers")
    tid = models.UUIDField()
    display_name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    scopes_granted = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    last_confirmed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    acs_exchanges = models.PositiveBigIntegerField(default=0, help_text="Entra → ACS token exchanges so far.")
    last_acs_exchange_at = models.DateTimeField(null=True, blank=True)
    # Moved by the database whenever `status` changes (tenants/triggers.py): part of every cached
    # ACS token's key, so that no token outlives the status it was issued under.
    token_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(fields=["vendor", "tid"], name="uniq_vendor_tid")]
        indexes: ClassVar = [models.Index(fields=["vendor", "status"])]
        triggers: ClassVar = [triggers.version_on_change("status")]

    def __str__(self) -> str:
        return self.display_name or str(self.tid)


class TenantUser(models.Model):
    """A Teams user of a customer tenant, identified by (tid, oid) from a validated token."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Tenant admin")
        MEMBER = "member", _("Member")

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="users")
    oid = models.UUIDField()
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_user")
    display_name = models.CharField(max_length=200, blank=True)
    upn = models.CharField(max_length=320, blank=True, help_text="Display only; never used to identify.")
    directory_roles = models.JSONField(default=list, help_text="Role template ids (wids) at the last sign-in.")
    portal_role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    # Moved by the database whenever `portal_role` changes, like the tenant's.
    token_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(fields=["tenant", "oid"], name="uniq_tenant_oid")]
        triggers: ClassVar = [triggers.version_on_change("portal_role")]

    def __str__(self) -> str:
        return self.display_name or str(self.oid)


class ConsentRecord(AppendOnly):
    """A tenant-wide consent granted by an admin, or its revocation as detected."""

    class Kind(models.TextChoices):
        GRANTED = "granted", _("Granted")
        REVOKED = "revoked", _("Revocation detected")

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.PROTECT, related_name="consent_records")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The admin by (tenant, oid), not by row: the record outlives the admin's account.
    admin_oid = models.UUIDField(null=True, blank=True)
    admin_name = models.CharField(max_length=200, blank=True)
    admin_role_id = models.CharField(max_length=36, blank=True)
    admin_role = models.CharField(max_length=64, blank=True)
    scopes = models.JSONField(default=list)
    confirmed_by = models.CharField(max_length=200, help_text="How the server confirmed it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        triggers: ClassVar = [triggers.append_only()]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.tenant} at {self.created_at:%Y-%m-%d %H:%M}"


class AuditEvent(AppendOnly):
    """Security events, per vendor; tid/oid kept as text for sign-ins refused before any row exists."""

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", "Signed in"
        SIGN_IN_REFUSED = "sign_in_refused", "Sign-in refused"
        CONSENT_GRANTED = "consent_granted", "Consent granted"
        CONSENT_REVOKED = "consent_revoked", "Consent revocation detected"
        CONSENT_REFUSED = "consent_refused", "Consent callback refused"
        TENANT_DISCONNECTED = "tenant_disconnected", "Tenant disconnected"
        ROLE_CHANGED = "role_changed", "Role changed"
        TOKEN_REFUSED = "token_refused", "ACS token not issued"
        GRAPH_CLEANUP = "graph_cleanup", "Graph subscriptions deleted after disconnecting"
        VENDOR_REGISTERED = "vendor_registered", "Vendor registered"
        CREDENTIALS_CHANGED = "credentials_changed", "App or ACS credentials changed"
        STAFF_INVITED = "staff_invited", "Staff member invited"
        STAFF_JOINED = "staff_joined", "Staff member joined"
        STAFF_REMOVED = "staff_removed", "Staff member removed"
        STAFF_ROLE_CHANGED = "staff_role_changed", "Staff member's role changed"

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="audit_events")
    tenant = models.ForeignKey(
        CustomerTenant, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    tid = models.CharField(max_length=36, blank=True)
    oid = models.CharField(max_length=36, blank=True)
    reason = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [models.Index(fields=["vendor", "-created_at"])]
        triggers: ClassVar = [triggers.append_only()]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reason}".strip()
