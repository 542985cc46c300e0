"""The mirror of Teams chats: chats, members and messages, every row tenant-scoped and keyed by
`(tenant, graph id)`; the per-user sync state.

Message bodies are kept as Graph sends them (Teams HTML) and sanitized when rendered. A deleted
message stays as a tombstone (`deleted_at`). A chat's `watermark` is the newest
`lastModifiedDateTime` mirrored for it: the next sync asks Graph only for changes after it.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from tenants.models import CustomerTenant, TenantUser


class Chat(models.Model):
    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="chats")
    graph_id = models.CharField(max_length=200)
    chat_type = models.CharField(max_length=20)
    topic = models.CharField(max_length=250, blank=True)
    web_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    last_updated_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    watermark = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "graph_id"], name="chat_unique_graph_id")]

    def __str__(self) -> str:
        return self.topic or self.graph_id


class ChatMember(models.Model):
    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="+")
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="members")
    oid = models.UUIDField()
    display_name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=320, blank=True)
    # Graph's membership id (aadUserConversationMember): what removing the member names.
    membership_id = models.CharField(max_length=400, blank=True)
    # The member's own view of the chat (Graph's `viewpoint`, shared with Teams): when he last
    # read it (the unread marker) and whether he hid it.
    last_read_at = models.DateTimeField(null=True, blank=True)
    hidden = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "chat", "oid"], name="chat_member_unique")]
        indexes = [models.Index(fields=["tenant", "oid"], name="chat_member_by_user")]

    def __str__(self) -> str:
        return self.display_name or str(self.oid)


class Message(models.Model):
    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="+")
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    graph_id = models.CharField(max_length=64)
    message_type = models.CharField(max_length=40)
    sender_oid = models.UUIDField(null=True, blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    body_type = models.CharField(max_length=8)
    body = models.TextField(blank=True, help_text="As Graph sent it; sanitized when rendered.")
    event = models.JSONField(null=True, blank=True)
    # As Graph sent them: quoted replies and files (`attachments`), `mentions` and `reactions`.
    attachments = models.JSONField(default=list, db_default=[])
    mentions = models.JSONField(default=list, db_default=[])
    reactions = models.JSONField(default=list, db_default=[])
    created_at = models.DateTimeField()
    last_modified_at = models.DateTimeField()
    last_edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # When this row last changed here (not in Teams): open pages catch up by it after a
    # reconnect, since a change Graph made earlier may reach the mirror later than others.
    mirrored_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "chat", "graph_id"], name="message_unique_graph_id")]
        indexes = [
            models.Index(fields=["tenant", "chat", "-created_at", "-graph_id"], name="message_thread_order"),
            models.Index(fields=["tenant", "chat", "mirrored_at"], name="message_mirrored"),
        ]

    def __str__(self) -> str:
        return self.graph_id


class ChatSyncState(models.Model):
    """One user's sync: what it is doing, how far it got, and why it stopped."""

    class Status(models.TextChoices):
        NEVER = "never", "Not synced yet"
        RUNNING = "running", "Syncing"
        IDLE = "idle", "Up to date"
        RETRYING = "retrying", "Waiting to retry"
        STOPPED = "stopped", "Stopped"

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="+")
    member = models.OneToOneField(TenantUser, on_delete=models.CASCADE, related_name="chat_sync")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEVER)
    chats_total = models.PositiveIntegerField(default=0)
    chats_done = models.PositiveIntegerField(default=0)
    messages_synced = models.PositiveIntegerField(default=0)
    requests_made = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=40, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.member_id}: {self.status}"


class GraphSubscription(models.Model):
    """A Graph change-notification subscription to one chat's messages (Graph allows one per app
    and chat), created with the delegated token of `owner`, a member of the chat.

    `client_state_hash` is the SHA-256 of the secret `clientState` Graph echoes in every
    notification; the secret itself is never stored.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REAUTHORIZE = "reauthorize", "Needs reauthorization"

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="+")
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="subscriptions")
    owner = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="graph_subscriptions")
    graph_id = models.CharField(max_length=100)
    client_state_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "chat"], name="graph_subscription_one_per_chat"),
            models.UniqueConstraint(fields=["tenant", "graph_id"], name="graph_subscription_unique_id"),
        ]
        indexes = [
            # Notifications name the subscription (and the tenant) only.
            models.Index(fields=["graph_id"], name="graph_subscription_by_id"),
            models.Index(fields=["expires_at"], name="graph_subscription_expiry"),
        ]

    def __str__(self) -> str:
        return self.graph_id


class SubscriptionRemoval(models.Model):
    """Graph subscriptions of a disconnected tenant still to delete in Graph, by the member who
    created them (only he may): their ids and his token cache, sealed, kept only until they are
    deleted or given up (Graph expires them within GRAPH_SUBSCRIPTION_MINUTES in any case).

    The tenant's members and mirror are gone by then: the row names the owner by his oid.
    """

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="+")
    owner_oid = models.UUIDField()
    graph_ids = models.JSONField(default=list)
    sealed_cache = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    # What came of the subscriptions tried so far: deleted, gone already (404), refused for good.
    deleted = models.PositiveIntegerField(default=0)
    gone = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{len(self.graph_ids)} subscription(s) of {self.owner_oid}"
