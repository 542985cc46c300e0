from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Vendors and customer tenants"

    def ready(self) -> None:
        from core import rotation
        from tenants import registration, services, triggers

        post_migrate.connect(triggers.sqlite_install, sender=self, dispatch_uid="tenants-sqlite-triggers")
        for column in (*services.SEALED_COLUMNS, registration.SEALED_PENDING):
            rotation.register(column)
