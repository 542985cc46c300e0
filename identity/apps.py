from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from tenants.models import CustomerTenant

        post_save.connect(_forget_tokens_of_inactive_tenant, sender=CustomerTenant, dispatch_uid="forget-acs-tokens")


def _forget_tokens_of_inactive_tenant(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Cached ACS tokens are served without a database query, on the promise that they exist
    # only for active tenants: whatever saves a tenant as not active keeps the promise here.
    from identity import services
    from tenants.models import CustomerTenant

    if instance.status != CustomerTenant.Status.ACTIVE:
        services.acs_tokens_forget(tenant=instance)
