"""What tenants tells the apps above it. Each signal has one receiver, connected in its app's
AppConfig.ready (chat), and a test checks that there is exactly one."""

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal

# An admin's consent was confirmed and recorded: the tenant is active. Sent with `tenant` and
# `admin` (the TenantUser who consented), inside the transaction that activated it.
tenant_activated = Signal()

# The tenant is being disconnected: sent with `tenant` inside the transaction, before its users
# are removed. The receiver removes what it keeps of the tenant and returns what it removed, a
# list of `Removed`, as the disconnect page says it.
tenant_disconnected = Signal()


@dataclass(frozen=True)
class Removed:
    """Something a disconnection removed: how many, what (`many`, in English: the audit record's
    key) and what the admin reads, `ngettext_lazy("%(count)d chat", "%(count)d chats", "count")`."""

    count: int
    many: str
    text: Any

    def __str__(self) -> str:
        return str(self.text % {"count": self.count})
