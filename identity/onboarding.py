"""Onboarding: an admin's consent for the whole organization, confirmed with Entra before the
tenant becomes active.

Entra's consent callback is unsigned (`admin_consent=True&tenant=…&scope=…`): `state` is bound to
the session, and Entra itself confirms the rest: a client-credentials token for the tenant (the
app is there) and, with the admin's own refresh token from the onboarding sign-in, a silent token
for each requested resource (the scopes are consented). A client-credentials token alone is no
proof: a user's own consent already creates the app's service principal in the tenant.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from core import crypto
from identity.services import token_cache_load
from integrations import entra
from tenants import services as tenant_services
from tenants.models import AuditEvent, ConsentRecord, TenantUser

CONFIRMED_BY = "client-credentials token for the tenant; the admin's tokens for every requested scope"


class ConsentNotConfirmed(Exception):
    """Entra did not confirm the consent: nothing was activated (the refusal is audited)."""


def consent_callback_problem(
    *, pending: dict[str, Any] | None, member: TenantUser, query: Mapping[str, str]
) -> str | None:
    """Why this consent callback is not the one started in this session for this tenant, or None."""
    tenant = member.tenant
    # Bytes: compare_digest refuses str with characters beyond ASCII, which a forged state may have.
    if not pending or not secrets.compare_digest(query.get("state", "").encode(), pending["state"].encode()):
        return "state_mismatch"
    if pending["vendor"] != tenant.vendor_id or pending["tid"] != str(tenant.tid):
        return "callback_mismatch"
    if query.get("error"):
        return f"entra:{query.get('error', '')[:40]}"
    if query.get("admin_consent") != "True" or query.get("tenant", "").lower() != str(tenant.tid):
        return "callback_mismatch"
    return None


def consent_confirm(*, member: TenantUser) -> ConsentRecord:
    """Confirm the admin's consent with Entra, then record the grant: the tenant is active."""
    tenant, vendor = member.tenant, member.tenant.vendor
    app = tenant_services.vendor_entra_app(vendor)
    try:
        entra.confirm_app_in_tenant(app, str(tenant.tid))
        entra.confirm_scopes_consented(app, cache=token_cache_load(member=member), scopes=list(vendor.requested_scopes))
    except crypto.DecryptionError:
        tenant_services.audit(
            vendor=vendor, kind=AuditEvent.Kind.CONSENT_REFUSED, tenant=tenant, reason="not_confirmed"
        )
        raise ConsentNotConfirmed from None
    except entra.EntraError as exc:
        tenant_services.audit(
            vendor=vendor, kind=AuditEvent.Kind.CONSENT_REFUSED, tenant=tenant, reason="not_confirmed", codes=exc.codes
        )
        raise ConsentNotConfirmed from None
    return tenant_services.consent_record_grant(
        tenant=tenant, admin=member, scopes=list(vendor.requested_scopes), confirmed_by=CONFIRMED_BY
    )
