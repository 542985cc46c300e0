"""The seeded directory: tenants with users and roles, app registrations, ACS resources."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SEED = Path(__file__).parent / "seeds" / "demo.json"

# Directory role names → role template ids (the values of the `wids` claim).
ROLE_TEMPLATE_IDS = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Teams Administrator": "69091246-20e8-4a56-aa4d-066075b2a7a8",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
}
# Every member of a tenant carries this template id ("User") in `wids`.
MEMBER_ROLE_TEMPLATE_ID = "b79fbf4d-3ef9-4689-8143-76b194e85509"
# Roles that may grant tenant-wide consent to a multitenant app's delegated permissions.
CONSENT_ROLES = frozenset(
    {
        "Global Administrator",
        "Application Administrator",
        "Cloud Application Administrator",
        "Privileged Role Administrator",
    }
)
PERSONAL_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass(frozen=True)
class User:
    upn: str
    password: str
    display_name: str
    id: str
    tenant_id: str
    roles: tuple[str, ...] = ()
    seed_enabled: bool = True

    @property
    def wids(self) -> list[str]:
        return [ROLE_TEMPLATE_IDS[r] for r in self.roles] + [MEMBER_ROLE_TEMPLATE_ID]

    @property
    def can_consent_for_tenant(self) -> bool:
        return bool(CONSENT_ROLES.intersection(self.roles))


@dataclass(frozen=True)
class Tenant:
    name: str
    display_name: str
    id: str
    domain: str
    user_consent: bool
    users: tuple[User, ...] = ()

    @property
    def is_personal(self) -> bool:
        return self.id == PERSONAL_TENANT_ID


@dataclass(frozen=True)
class App:
    name: str
    client_id: str
    # The seed's credentials; the live ones (rotated through the control API) are in State.credentials.
    client_secret: str | None
    home_tenant_id: str
    multitenant: bool
    redirect_uris: tuple[str, ...]
    required_scopes: tuple[str, ...]
    directory_role_claims: bool = True
    # AzureADMultipleOrgs: work accounts of any tenant; AzureADandPersonalMicrosoftAccount adds personal ones.
    sign_in_audience: str = "AzureADMultipleOrgs"
    # The home tenant's admin granted the app's required scopes for the organization.
    home_tenant_consented: bool = False
    # `certificates: "generate"`: a key and self-signed certificate devcloud creates in its state dir.
    generate_certificate: bool = False

    @property
    def allows_personal_accounts(self) -> bool:
        return self.sign_in_audience == "AzureADandPersonalMicrosoftAccount"

    def service_principal_id(self, tenant_id: str) -> str:
        return str(uuid.uuid5(uuid.UUID(tenant_id), "sp:" + self.client_id))


@dataclass(frozen=True)
class AcsResource:
    name: str
    id: str
    vendor_app: str
    endpoint: str
    access_key: str

    def connection_string(self) -> str:
        return f"endpoint={self.endpoint}/;accesskey={self.access_key}"


@dataclass
class Directory:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    acs_resources: list[AcsResource] = field(default_factory=list)
    # The seed's demo chats, created in a new state dir and on reset.
    seed_chats: list[dict[str, Any]] = field(default_factory=list)
    _index: tuple[tuple[Tenant, ...], dict[str, User]] = ((), {})

    def tenant(self, ref: str) -> Tenant | None:
        """A tenant by id or verified domain (case-insensitive), as Entra resolves them."""
        ref = ref.lower()
        return next((t for t in self.tenants.values() if ref in (t.id, t.domain)), None)

    def tenant_by_name(self, name: str) -> Tenant | None:
        """The seed's short names (`fabrikam`), for the seed and the control API only."""
        return next((t for t in self.tenants.values() if t.name == name.lower()), None)

    def user_by_upn(self, upn: str) -> User | None:
        upn = upn.strip().lower()
        for tenant in self.tenants.values():
            for user in tenant.users:
                if user.upn.lower() == upn:
                    return user
        return None

    def user(self, user_id: str) -> User | None:
        """A user by object id or UPN (case-insensitive)."""
        # Tenants are replaced, never mutated, when users are added: the tenants key the index.
        version = tuple(self.tenants.values())
        if self._index[0] != version:
            users = [u for t in self.tenants.values() for u in t.users]
            index = {u.upn.lower(): u for u in users} | {u.id: u for u in users}
            self._index = (version, index)
        return self._index[1].get(user_id) or self._index[1].get(user_id.lower())

    def add_users(self, tenant: Tenant, *, prefix: str, count: int, password: str) -> list[User]:
        """`count` more members named `{prefix}{n}@{domain}`, ids derived from the tenant and name."""
        start = sum(1 for u in tenant.users if u.upn.startswith(prefix)) + 1
        new = [
            User(
                upn=f"{prefix}{n:04d}@{tenant.domain}",
                password=password,
                display_name=f"{prefix.title()} {n:04d}",
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"devcloud:{tenant.id}:{prefix}{n}")),
                tenant_id=tenant.id,
            )
            for n in range(start, start + count)
        ]
        self.tenants[tenant.id] = dataclasses.replace(tenant, users=tenant.users + tuple(new))
        return new

    def acs_resource_by_key(self, access_key: str) -> AcsResource | None:
        return next((r for r in self.acs_resources if r.access_key == access_key), None)


def _parse_connection_string(value: str, base_url: str) -> tuple[str, str]:
    parts = dict(p.split("=", 1) for p in value.split(";") if p)
    endpoint = parts["endpoint"].replace("{base_url}", base_url)
    return endpoint.rstrip("/"), parts["accesskey"]


def _certificates_option(app: dict[str, Any]) -> bool:
    value = app.get("certificates")
    if value not in (None, "generate"):
        raise ValueError(f'app {app["name"]}: certificates must be "generate" (or absent)')
    if value is None and not app.get("client_secret"):
        raise ValueError(f"app {app['name']}: needs a client_secret or certificates")
    return value == "generate"


def load_directory(seed_path: Path, *, port: int) -> Directory:
    raw = json.loads(seed_path.read_text())
    directory = Directory()
    for t in raw["tenants"]:
        users = tuple(
            User(
                upn=u["upn"],
                password=u["password"],
                display_name=u["display_name"],
                id=u["id"],
                tenant_id=t["id"],
                roles=tuple(u.get("roles", ())),
                seed_enabled=u.get("enabled", True),
            )
            for u in t.get("users", ())
        )
        unknown = {r for u in users for r in u.roles} - ROLE_TEMPLATE_IDS.keys()
        if unknown:
            raise ValueError(f"unknown directory roles in seed: {sorted(unknown)}")
        directory.tenants[t["id"]] = Tenant(
            name=t["name"],
            display_name=t.get("display_name", t["name"]),
            id=t["id"],
            domain=t["domain"],
            user_consent=t.get("user_consent", False),
            users=users,
        )
    for a in raw.get("apps", ()):
        home = directory.tenant_by_name(a["home_tenant"]) or directory.tenant(a["home_tenant"])
        if home is None:
            raise ValueError(f"app {a['name']}: unknown home tenant {a['home_tenant']}")
        directory.apps[a["client_id"]] = App(
            name=a["name"],
            client_id=a["client_id"],
            client_secret=a.get("client_secret"),
            home_tenant_id=home.id,
            multitenant=a.get("multitenant", True),
            redirect_uris=tuple(a.get("redirect_uris", ())),
            required_scopes=tuple(a.get("required_scopes", ())),
            directory_role_claims=a.get("directory_role_claims", True),
            sign_in_audience=a.get("sign_in_audience", "AzureADMultipleOrgs"),
            home_tenant_consented=a.get("home_tenant_consented", False),
            generate_certificate=_certificates_option(a),
        )
    directory.seed_chats = list(raw.get("chats", ()))
    for r in raw.get("acs_resources", ()):
        conn = r["connection_string"].replace("{port}", str(port))
        endpoint, key = _parse_connection_string(conn, f"https://127.0.0.1:{port}")
        directory.acs_resources.append(
            AcsResource(
                name=r["name"],
                id=r["id"],
                vendor_app=r.get("vendor_app", ""),
                endpoint=endpoint,
                access_key=key,
            )
        )
    return directory
