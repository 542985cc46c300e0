"""The JWTs and opaque tokens that Entra issues: access, app-only, ID and refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from typing import Any

from devcloud.directory import App, Tenant, User
from devcloud.state import State


def issuer(state: State, tenant_id: str) -> str:
    return f"{state.base_url}/{tenant_id}/v2.0"


def _uti() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes[:16]).rstrip(b"=").decode()


def _pairwise_sub(user: User, app: App) -> str:
    digest = hashlib.sha256(f"{user.id}:{app.client_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:43]


def _common(state: State, tenant_id: str, app: App, lifetime: int, now: int) -> dict[str, Any]:
    return {
        "iss": issuer(state, tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "aio": secrets.token_urlsafe(24),
        "tid": tenant_id,
        "uti": _uti(),
        "ver": "2.0",
        "azp": app.client_id,
    }


def user_claims(user: User, app: App) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "name": user.display_name,
        "oid": user.id,
        "preferred_username": user.upn,
        "sub": _pairwise_sub(user, app),
    }
    if app.directory_role_claims:
        claims["wids"] = user.wids
    return claims


def access_token(state: State, *, user: User, app: App, resource: str, scopes: set[str], now: int) -> tuple[str, int]:
    lifetime = state.access_token_lifetime()
    claims = {
        "aud": resource,
        **_common(state, user.tenant_id, app, lifetime, now),
        "appid": app.client_id,
        "appidacr": "1",
        "azpacr": "1",
        "idtyp": "user",
        "scp": " ".join(sorted(scopes)),
        **user_claims(user, app),
    }
    return state.keys.sign(claims), lifetime


def app_token(state: State, *, app: App, tenant: Tenant, resource: str, now: int) -> tuple[str, int]:
    lifetime = int(state.settings["app_token_lifetime"])
    sp_id = app.service_principal_id(tenant.id)
    claims = {
        "aud": resource,
        **_common(state, tenant.id, app, lifetime, now),
        "appid": app.client_id,
        "appidacr": "1",
        "azpacr": "1",
        "idtyp": "app",
        "oid": sp_id,
        "sub": sp_id,
        "roles": [],
    }
    return state.keys.sign(claims), lifetime


def id_token(state: State, *, user: User, app: App, nonce: str | None, now: int, email: bool) -> str:
    lifetime = int(state.settings["id_token_lifetime"])
    claims = {
        "aud": app.client_id,
        **_common(state, user.tenant_id, app, lifetime, now),
        **user_claims(user, app),
    }
    del claims["azp"]
    if nonce:
        claims["nonce"] = nonce
    if email:
        claims["email"] = user.upn
    return state.keys.sign(claims)


def refresh_token(state: State, *, user: User, app: App, scope: str) -> str:
    payload = {"t": "rt", "cid": app.client_id, "oid": user.id, "tid": user.tenant_id}
    return "1." + state.seal({**payload, "iat": time.time(), "scope": scope, "n": secrets.token_hex(4)})


def read_refresh_token(state: State, value: str) -> dict[str, Any] | None:
    if not value.startswith("1."):
        return None
    data = state.unseal(value[2:])
    return data if data and data.get("t") == "rt" else None


def client_info(user: User) -> str:
    raw = json.dumps({"uid": user.id, "utid": user.tenant_id}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
