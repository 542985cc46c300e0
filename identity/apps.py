from typing import Any

from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_save


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from tenants.models import CustomerTenant, TenantUser

        post_save.connect(_forget_tokens_of_inactive_tenant, sender=CustomerTenant, dispatch_uid="forget-acs-tokens")
        post_delete.connect(_forget_token_of_removed_member, sender=TenantUser, dispatch_uid="forget-acs-token")


# Cached ACS tokens are served without a database query, on the promise that they exist only
# for members of active tenants: whatever ends that keeps the promise here, once committed (an
# exchange that finishes in between checks the tenant again after caching).
def _forget_tokens_of_inactive_tenant(sender: Any, instance: Any, **kwargs: Any) -> None:
    from identity import services
    from tenants.models import CustomerTenant

    if instance.status != CustomerTenant.Status.ACTIVE:
        transaction.on_commit(lambda: services.acs_tokens_forget(tenant=instance))


def _forget_token_of_removed_member(sender: Any, instance: Any, **kwargs: Any) -> None:
    from identity import services

    user_id = instance.user_id
    transaction.on_commit(lambda: services.acs_token_forget(user_id=user_id))
