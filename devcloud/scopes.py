"""Delegated permission names of the resources devcloud knows, and parsing of `scope` values."""

from __future__ import annotations

from dataclasses import dataclass, field

GRAPH = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ACS = "https://auth.msft.communication.azure.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")

PERMISSIONS: dict[str, tuple[str, ...]] = {
    GRAPH: (
        "User.Read",
        "User.ReadBasic.All",
        "User.Read.All",
        "Chat.Read",
        "Chat.ReadBasic",
        "Chat.ReadWrite",
        "Chat.Create",
        "ChatMessage.Read",
        "ChatMessage.Send",
        "ChatMember.Read",
        "ChatMember.ReadWrite",
        "People.Read",
        "Presence.Read",
    ),
    ACS: ("Teams.ManageCalls", "Teams.ManageChats"),
}
# Delegated permissions that only an admin may consent to, whatever the tenant's user consent policy.
ADMIN_ONLY = frozenset({f"{GRAPH}/User.Read.All", f"{GRAPH}/ChatMember.ReadWrite"})
RESOURCE_ALIASES = {GRAPH_APP_ID: GRAPH, GRAPH: GRAPH, ACS: ACS}


@dataclass
class Scopes:
    """A `scope` parameter split into OIDC scopes and permissions per resource."""

    oidc: set[str] = field(default_factory=set)
    permissions: dict[str, set[str]] = field(default_factory=dict)
    default_for: set[str] = field(default_factory=set)
    invalid: list[str] = field(default_factory=list)

    @property
    def mixes_default(self) -> bool:
        """`.default` with a named permission of the same resource: Entra refuses it (AADSTS70011)."""
        return bool(self.default_for & self.permissions.keys())

    @property
    def resources(self) -> list[str]:
        seen = [*self.permissions, *self.default_for]
        return list(dict.fromkeys(seen))

    def qualified(self) -> set[str]:
        return {f"{res}/{perm}" for res, perms in self.permissions.items() for perm in perms}


def _canonical(resource: str, name: str) -> str | None:
    for perm in PERMISSIONS[resource]:
        if perm.lower() == name.lower():
            return perm
    return None


def parse(value: str) -> Scopes:
    scopes = Scopes()
    for raw in value.split():
        if raw.lower() in OIDC_SCOPES:
            scopes.oidc.add(raw.lower())
            continue
        resource, _, name = raw.rpartition("/")
        resource = RESOURCE_ALIASES.get(resource.rstrip("/").lower(), "") if resource else GRAPH
        if not resource:
            scopes.invalid.append(raw)
        elif name == ".default":
            scopes.default_for.add(resource)
        elif name.lower() in OIDC_SCOPES and resource == GRAPH:
            scopes.oidc.add(name.lower())
        elif (perm := _canonical(resource, name)) is not None:
            scopes.permissions.setdefault(resource, set()).add(perm)
        else:
            scopes.invalid.append(raw)
    return scopes


def qualify(names: set[str] | list[str] | tuple[str, ...]) -> set[str]:
    """Fully qualified permission names (`https://graph.microsoft.com/User.Read`)."""
    return parse(" ".join(names)).qualified()


def for_resource(qualified: set[str], resource: str) -> set[str]:
    prefix = resource + "/"
    return {q[len(prefix) :] for q in qualified if q.startswith(prefix)}


def display(resource: str, perms: set[str], *, requested: str) -> list[str]:
    """How the token endpoint names granted scopes: Graph's as the client named them."""
    if resource == GRAPH and GRAPH not in requested and GRAPH_APP_ID not in requested:
        return sorted(perms)
    return sorted(f"{resource}/{p}" for p in perms)
