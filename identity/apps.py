from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from core import rotation
        from identity import services

        rotation.register(services.SEALED_TOKEN_CACHES)
