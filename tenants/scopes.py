"""The delegated permissions a vendor's app asks each customer tenant to consent to."""

from __future__ import annotations

ACS_RESOURCE = "https://auth.msft.communication.azure.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"

# Both ACS scopes are needed for the Entra → ACS exchange; Graph scopes for chat.
# ChatMember.ReadWrite: removing a chat member (and leaving a chat) has no other delegated
# permission in Graph. Tokens are never requested with it by name: Entra puts every consented
# permission of a resource in the token, so a tenant that consented before it was asked for
# keeps working, and only removing members waits for an admin to grant it again.
MEMBER_MANAGEMENT_SCOPE = f"{GRAPH_RESOURCE}/ChatMember.ReadWrite"
DEFAULT_REQUESTED_SCOPES = [
    f"{ACS_RESOURCE}/Teams.ManageCalls",
    f"{ACS_RESOURCE}/Teams.ManageChats",
    f"{GRAPH_RESOURCE}/User.Read",
    f"{GRAPH_RESOURCE}/Chat.ReadWrite",
    f"{GRAPH_RESOURCE}/ChatMessage.Send",
    MEMBER_MANAGEMENT_SCOPE,
    f"{GRAPH_RESOURCE}/offline_access",
]

# The Entra → ACS exchange: an Entra token for the ACS resource with both Teams scopes.
ACS_SCOPES = [f"{ACS_RESOURCE}/Teams.ManageCalls", f"{ACS_RESOURCE}/Teams.ManageChats"]

# What a user's sign-in asks for: one resource per token request (Graph here).
SIGN_IN_SCOPES = [
    f"{GRAPH_RESOURCE}/User.Read",
    f"{GRAPH_RESOURCE}/Chat.ReadWrite",
    f"{GRAPH_RESOURCE}/ChatMessage.Send",
]


def missing_scopes(*, requested: list[str], granted: list[str]) -> list[str]:
    have = {s.lower() for s in granted}
    return [s for s in requested if s.lower() not in have]
