from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Teams chats"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat import receivers, removal
        from core import rotation
        from identity.signals import member_signed_in
        from tenants.signals import tenant_activated, tenant_disconnected

        member_signed_in.connect(receivers.member_signed_in, dispatch_uid="chat-member-signed-in")
        tenant_activated.connect(receivers.tenant_activated, dispatch_uid="chat-tenant-activated")
        tenant_disconnected.connect(receivers.tenant_disconnected, dispatch_uid="chat-tenant-disconnected")
        rotation.register(removal.SEALED_CACHES)
