from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Teams chats"
    default_auto_field = "django.db.models.BigAutoField"
