"""What identity tells the apps above it. Each signal has one receiver, connected in its app's
AppConfig.ready (chat), and a test checks that there is exactly one."""

from django.dispatch import Signal

# A member of an active tenant signed in; his token cache holds the new sign-in's tokens.
# Sent with `member` (a TenantUser); a receiver queues work with transaction.on_commit.
member_signed_in = Signal()
