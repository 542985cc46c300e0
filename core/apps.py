from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Machinery every app may use and that uses no app: encryption at rest, Redis coordination,
    HTTP and JSON helpers, re-encryption of every sealed value."""

    name = "core"
    verbose_name = "Core"
