"""devcloud's mutable state: consents, sessions, revocations, settings; persisted in the state dir."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from devcloud import credentials
from devcloud.credentials import AppCredentials
from devcloud.directory import App, Directory, Tenant, User
from devcloud.graph.store import ChatStore
from devcloud.graph.throttle import Throttle
from devcloud.keys import KeyRing
from devcloud.scopes import qualify

# Changes made in the event loop reach state.json within this many seconds (see State.save).
SAVE_DELAY = 0.5

DEFAULT_SETTINGS: dict[str, Any] = {
    # Entra gives user access tokens a random lifetime of 60 to 90 minutes; a number fixes it.
    "access_token_lifetime": None,
    "app_token_lifetime": 86399,
    "id_token_lifetime": 3600,
    "refresh_token_lifetime": 90 * 86400,
    "code_lifetime": 600,
    "acs_exchange_limit": 500,
    "acs_exchange_window": 30.0,
    "acs_identity_limit": 1000,
    # Graph's limits for chat message requests, per app (0: no limit).
    "graph_chat_messages_per_tenant_rps": 20,
    "graph_chat_messages_per_app_rps": 200,
    "graph_chat_messages_per_chat_rps": 1,
    # How often a 429 from Teams comes without Retry-After (0 to 1).
    "graph_retry_after_omitted": 0.1,
    # Change notifications: delivery timeout, attempts, and the first retry's delay (doubling).
    "graph_notification_timeout": 3.0,
    "graph_notification_attempts": 6,
    "graph_notification_backoff": 2.0,
}


@dataclass
class Grant:
    """Consent of one app in one tenant: tenant-wide (admin) and per user."""

    service_principal: bool = False
    admin_scopes: set[str] = field(default_factory=set)
    user_scopes: dict[str, set[str]] = field(default_factory=dict)

    def scopes_for(self, user_id: str) -> set[str]:
        return self.admin_scopes | self.user_scopes.get(user_id, set())

    def to_json(self) -> dict[str, Any]:
        return {
            "service_principal": self.service_principal,
            "admin_scopes": sorted(self.admin_scopes),
            "user_scopes": {u: sorted(s) for u, s in self.user_scopes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grant:
        return cls(
            service_principal=data["service_principal"],
            admin_scopes=set(data["admin_scopes"]),
            user_scopes={u: set(s) for u, s in data["user_scopes"].items()},
        )


@dataclass
class AuthCode:
    client_id: str
    tenant_id: str
    redirect_uri: str
    scope: str
    user_id: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    expires: float
    auth_time: int
    redeemed: bool = False


class State:
    def __init__(self, *, directory: Directory, state_dir: Path, base_url: str) -> None:
        self.directory = directory
        self.seed_tenants = dict(directory.tenants)
        self.state_dir = state_dir
        self.base_url = base_url
        self.path = state_dir / "state.json"
        self.keys = KeyRing(state_dir / "signing-keys.json")
        self.seed_credentials = {app.client_id: self._seed_credentials(app) for app in directory.apps.values()}
        self.acs_keys = KeyRing(state_dir / "acs-signing-keys.json")
        self._fernet = Fernet(self._secret())
        self.codes: dict[str, AuthCode] = {}
        self.transactions: dict[str, dict[str, str]] = {}
        self.acs_calls: dict[str, deque[float]] = {}
        self.faults: list[dict[str, Any]] = []
        self.request_log: deque[dict[str, Any]] = deque(maxlen=20000)
        self.counters: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._save_timer: asyncio.TimerHandle | None = None
        # Bumped by every reset: work that awaited across one (a handshake) must not land.
        self.generation = 0
        self.chats = ChatStore(directory=directory, journal=state_dir / "chats.jsonl")
        self.throttle = Throttle()
        self._reset_mutable()
        if self.path.exists():
            self._load(json.loads(self.path.read_text()))
        if not self.chats.load():
            self.chats.seed(directory.seed_chats)

    # persistence ---------------------------------------------------------------------
    def _secret(self) -> bytes:
        path = self.state_dir / "state-key"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(Fernet.generate_key())
        return path.read_bytes()

    def _seed_credentials(self, app: App) -> AppCredentials:
        seeded = AppCredentials()
        if app.client_secret:
            seeded.secrets.append(credentials.seed_secret(app.client_id, app.client_secret))
        if app.generate_certificate:
            seeded.certificates.append(credentials.generated_certificate(self.state_dir, app.name, app.client_id))
        return seeded

    def _reset_mutable(self) -> None:
        self.grants: dict[str, Grant] = {
            f"{app.home_tenant_id}:{app.client_id}": Grant(True, qualify(app.required_scopes))
            for app in self.directory.apps.values()
            if app.home_tenant_consented
        }
        self.disabled: set[str] = {u.id for t in self.directory.tenants.values() for u in t.users if not u.seed_enabled}
        self.tokens_valid_from: dict[str, float] = {}
        self.mfa_required_from: dict[str, float] = {}
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self.acs_identities: dict[str, dict[str, Any]] = {}
        self.directory.tenants = dict(self.seed_tenants)
        self.generated_users: list[dict[str, Any]] = []
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.credentials: dict[str, AppCredentials] = {k: c.copy() for k, c in self.seed_credentials.items()}

    def _load(self, data: dict[str, Any]) -> None:
        self.grants = {k: Grant.from_json(v) for k, v in data.get("grants", {}).items()}
        self.disabled = set(data.get("disabled", self.disabled))
        self.tokens_valid_from = data.get("tokens_valid_from", {})
        self.mfa_required_from = data.get("mfa_required_from", {})
        self.settings.update(data.get("settings", {}))
        self.acs_identities = data.get("acs_identities", {})
        for request in data.get("generated_users", []):
            self.add_users(**request)
        self.subscriptions = data.get("subscriptions", {})
        # Apps the seed gained since the state was saved keep their seeded credentials.
        for client_id, saved in data.get("credentials", {}).items():
            if client_id in self.credentials:
                self.credentials[client_id] = self._loaded_credentials(client_id, AppCredentials.from_json(saved))

    def _loaded_credentials(self, client_id: str, loaded: AppCredentials) -> AppCredentials:
        # A generated certificate renewed on start (it had expired) takes the place of the one it renews.
        for generated in self.seed_credentials[client_id].certificates:
            loaded.certificates = [generated if c.files == generated.files else c for c in loaded.certificates]
        return loaded

    def save(self) -> None:
        """Persist the state: at once outside the event loop; in it, within SAVE_DELAY seconds, the
        changes made meanwhile written together (a bulk of subscriptions would otherwise rewrite the
        whole file once per subscription). The app's shutdown writes what is pending."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._save_timer is None:
            self._save_timer = loop.call_later(SAVE_DELAY, self.flush)

    def flush(self, *, pending_only: bool = False) -> None:
        """Write the state now (a pending delayed write is then done); with `pending_only`, only
        if a delayed write is pending."""
        if pending_only and self._save_timer is None:
            return
        if self._save_timer is not None:
            self._save_timer.cancel()
            self._save_timer = None
        data = {
            "grants": {k: g.to_json() for k, g in self.grants.items()},
            "disabled": sorted(self.disabled),
            "tokens_valid_from": self.tokens_valid_from,
            "mfa_required_from": self.mfa_required_from,
            "settings": self.settings,
            "acs_identities": self.acs_identities,
            "generated_users": self.generated_users,
            "subscriptions": self.subscriptions,
            "credentials": {k: c.to_json() for k, c in self.credentials.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)

    def reset(self) -> None:
        self.generation += 1
        self._reset_mutable()
        self.codes.clear()
        self.transactions.clear()
        self.acs_calls.clear()
        self.faults.clear()
        self.request_log.clear()
        self.counters.clear()
        self.throttle.clear()
        self.chats.clear()
        self.chats.seed(self.directory.seed_chats)
        self.save()

    # consent -------------------------------------------------------------------------
    def grant(self, tenant_id: str, client_id: str) -> Grant:
        return self.grants.setdefault(f"{tenant_id}:{client_id}", Grant())

    def has_service_principal(self, tenant: Tenant, app: App) -> bool:
        if tenant.id == app.home_tenant_id:
            return True
        existing = self.grants.get(f"{tenant.id}:{app.client_id}")
        return bool(existing and existing.service_principal)

    def consented_scopes(self, user: User, app: App) -> set[str]:
        existing = self.grants.get(f"{user.tenant_id}:{app.client_id}")
        return existing.scopes_for(user.id) if existing else set()

    def record_consent(self, *, user: User, app: App, scopes: set[str], tenant_wide: bool) -> None:
        grant = self.grant(user.tenant_id, app.client_id)
        grant.service_principal = True
        if tenant_wide:
            grant.admin_scopes |= scopes
        else:
            grant.user_scopes.setdefault(user.id, set()).update(scopes)
        self.save()

    def revoke_consent(self, *, tenant: Tenant, app: App, remove_app: bool) -> None:
        """Remove the tenant's permission grants; with `remove_app`, its enterprise app too."""
        key = f"{tenant.id}:{app.client_id}"
        if remove_app:
            self.grants.pop(key, None)
        elif key in self.grants:
            self.grants[key].admin_scopes.clear()
            self.grants[key].user_scopes.clear()
        self.save()

    # app credentials (Certificates & secrets) ----------------------------------------
    def add_certificate(self, app: App, certificate: credentials.Certificate) -> None:
        self.credentials[app.client_id].certificates.append(certificate)
        self.save()

    def remove_certificate(self, app: App, thumbprint: str) -> credentials.Certificate | None:
        held = self.credentials[app.client_id]
        found = held.certificate(sha1=thumbprint) or held.certificate(sha256=thumbprint)
        if found is not None:
            held.certificates.remove(found)
            self.save()
        return found

    def add_secret(self, app: App, secret: credentials.Secret) -> None:
        self.credentials[app.client_id].secrets.append(secret)
        self.save()

    def remove_secret(self, app: App, key_id: str) -> credentials.Secret | None:
        held = self.credentials[app.client_id]
        found = next((s for s in held.secrets if s.key_id == key_id.lower()), None)
        if found is not None:
            held.secrets.remove(found)
            self.save()
        return found

    # users ---------------------------------------------------------------------------
    def is_enabled(self, user: User) -> bool:
        return user.id not in self.disabled

    def set_enabled(self, user: User, enabled: bool) -> None:
        (self.disabled.discard if enabled else self.disabled.add)(user.id)
        self.save()

    def revoke_sessions(self, user: User) -> None:
        # Entra's revokeSignInSessions: refresh tokens issued before now stop working.
        self.tokens_valid_from[user.id] = time.time()
        self.save()

    def add_users(self, *, tenant_id: str, prefix: str, count: int, password: str) -> list[User]:
        tenant = self.directory.tenants[tenant_id]
        users = self.directory.add_users(tenant, prefix=prefix, count=count, password=password)
        self.generated_users.append({"tenant_id": tenant_id, "prefix": prefix, "count": count, "password": password})
        return users

    def require_mfa(self, user: User) -> None:
        # A Conditional Access policy starts asking this user for MFA: a new interactive sign-in
        # satisfies it (devcloud's sign-in page counts as one); older refresh tokens do not.
        self.mfa_required_from[user.id] = time.time()
        self.save()

    # sealed values (refresh tokens, SSO cookie) --------------------------------------
    def seal(self, payload: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(payload).encode()).decode()

    def unseal(self, value: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(value.encode()))
        except (InvalidToken, ValueError):
            return None
        return data

    # misc ----------------------------------------------------------------------------
    def record_request(self, entry: dict[str, Any]) -> None:
        """The request log (never bodies or tokens) and per-endpoint counters."""
        self.request_log.append({"id": next(self._ids), "time": time.time(), **entry})
        self.counters[entry["endpoint"]] = self.counters.get(entry["endpoint"], 0) + 1

    def access_token_lifetime(self) -> int:
        fixed = self.settings["access_token_lifetime"]
        return int(fixed) if fixed else random.randint(3600, 5400)

    def new_code(self, code: AuthCode) -> str:
        now = time.time()
        for key in [k for k, c in self.codes.items() if c.expires < now - 3600]:
            del self.codes[key]
        value = secrets.token_urlsafe(48)
        self.codes[value] = code
        return value
