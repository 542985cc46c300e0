"""Django admin for superusers; secrets never shown; consent and audit records read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tenants.models import AuditEvent, ConsentRecord, CustomerTenant, TenantUser, Vendor, VendorMembership


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "slug", "entra_client_id", "home_tenant_id", "entra_credential_expires_at")
    # Credentials are the vendor's to enter, proven live (its credentials page); never shown here.
    exclude = ("entra_client_secret_sealed", "entra_certificate_sealed", "acs_connection_string_sealed")
    readonly_fields = (
        "entra_client_id",
        "entra_credential",
        "entra_certificate_thumbprint",
        "entra_credential_expires_at",
        "credentials_changed_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Its records (consent, audit) outlive it; the database refuses too (PROTECT).
        return False


@admin.register(VendorMembership)
class VendorMembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("vendor", "display_name", "email", "role", "tid", "oid", "user")
    list_filter = ("vendor", "role")
    exclude = ("invite_token_hash",)
    readonly_fields = ("user", "joined_at", "invite_expires_at")


@admin.register(CustomerTenant)
class CustomerTenantAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("display_name", "domain", "vendor", "status", "activated_at", "last_activity_at")
    list_filter = ("vendor", "status")
    search_fields = ("display_name", "domain", "tid")
    readonly_fields = (
        "vendor",
        "tid",
        "status",
        "scopes_granted",
        "activated_at",
        "status_changed_at",
        "last_confirmed_at",
        "last_activity_at",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A tenant leaves by disconnecting (its data removed, its records kept), never by deletion.
        return False


@admin.register(TenantUser)
class TenantUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("display_name", "upn", "tenant", "portal_role", "last_sign_in_at")
    list_filter = ("tenant__vendor", "portal_role")
    search_fields = ("display_name", "upn", "oid")
    readonly_fields = ("tenant", "oid", "user", "directory_roles", "last_sign_in_at")


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "tenant", "kind", "admin_name", "admin_role", "confirmed_by")
    list_filter = ("kind", "tenant__vendor")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "vendor", "tenant", "kind", "reason", "tid", "oid")
    list_filter = ("vendor", "kind")
    search_fields = ("tid", "oid", "reason")
