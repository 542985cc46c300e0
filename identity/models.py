"""The per-user MSAL token cache, sealed at rest."""

from __future__ import annotations

from django.db import models

from tenants.models import CustomerTenant, TenantUser


class EntraTokenCache(models.Model):
    """One user's MSAL token cache (refresh and access tokens), sealed with core.crypto.

    The associated data names the user's (tid, oid): a value copied to another row does not
    decrypt. Read and written only through identity.services; never shown in the admin.
    """

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="+")
    member = models.OneToOneField(TenantUser, on_delete=models.CASCADE, related_name="token_cache")
    sealed = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"token cache of {self.member_id}"
