"""The control API under `/_devcloud/` for tests, benchmarks and people: state, faults, request log."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud import faults
from devcloud.control_http import GENERATED_PASSWORD, bad, json_object, state_of
from devcloud.directory import Tenant, User
from devcloud.entra import control as entra_control
from devcloud.entra import tokens
from devcloud.graph import control as graph_control
from devcloud.graph import subscriptions
from devcloud.scopes import GRAPH, parse, qualify
from devcloud.state import DEFAULT_SETTINGS, State


def _user(state: State, ref: str) -> User | None:
    return state.directory.user(ref)


def _tenant(state: State, ref: str) -> Tenant | None:
    return state.directory.tenant(ref) or state.directory.tenant_by_name(ref)


async def directory(request: Request) -> Response:
    state = state_of(request)
    now = dt.datetime.now(dt.UTC)
    tenants = [
        {
            "name": t.name,
            "id": t.id,
            "domain": t.domain,
            "display_name": t.display_name,
            "users": [
                {
                    "upn": u.upn,
                    "id": u.id,
                    "display_name": u.display_name,
                    "roles": list(u.roles),
                    "wids": u.wids,
                    "enabled": state.is_enabled(u),
                }
                for u in t.users
            ],
        }
        for t in state.directory.tenants.values()
    ]
    apps = [
        {
            "name": a.name,
            "client_id": a.client_id,
            "home_tenant": a.home_tenant_id,
            "redirect_uris": list(a.redirect_uris),
            "required_scopes": list(a.required_scopes),
            # Thumbprints, secret hints and expiry; never a secret.
            "credentials": state.credentials[a.client_id].summary(now),
        }
        for a in state.directory.apps.values()
    ]
    acs = [
        {"name": r.name, "id": r.id, "vendor_app": r.vendor_app, "connection_string": r.connection_string()}
        for r in state.directory.acs_resources
    ]
    grants = {k: g.to_json() for k, g in state.grants.items()}
    return JSONResponse(
        {"base_url": state.base_url, "tenants": tenants, "apps": apps, "acs_resources": acs, "grants": grants}
    )


async def reset(request: Request) -> Response:
    state_of(request).reset()
    subscriptions.cancel_deliveries()
    return JSONResponse({"reset": True})


async def revoke_consent(request: Request) -> Response:
    state = state_of(request)
    tenant = _tenant(state, request.path_params["tenant"])
    app = state.directory.apps.get(request.path_params["client_id"])
    if tenant is None or app is None:
        return bad("unknown tenant or app", 404)
    body = await json_object(request)
    state.revoke_consent(tenant=tenant, app=app, remove_app=bool(body.get("remove_app", True)))
    return JSONResponse({"revoked": True, "tenant": tenant.id, "client_id": app.client_id})


async def grant_consent(request: Request) -> Response:
    """Record a tenant-wide grant as an admin would, without the browser (test set-up)."""
    state = state_of(request)
    tenant = _tenant(state, request.path_params["tenant"])
    app = state.directory.apps.get(request.path_params["client_id"])
    if tenant is None or app is None:
        return bad("unknown tenant or app", 404)
    admin = next((u for u in tenant.users if u.can_consent_for_tenant), None)
    if admin is None:
        return bad("the tenant has no admin who may consent", 409)
    body = await json_object(request)
    wanted = qualify(body.get("scopes") or list(app.required_scopes))
    state.record_consent(user=admin, app=app, scopes=wanted, tenant_wide=True)
    return JSONResponse({"granted": sorted(wanted), "tenant": tenant.id, "client_id": app.client_id})


async def add_users(request: Request) -> Response:
    """Generated members of a tenant (for benchmarks): `{"count", "prefix", "password"}`."""
    state = state_of(request)
    tenant = _tenant(state, request.path_params["tenant"])
    if tenant is None:
        return bad("unknown tenant", 404)
    body = await json_object(request)
    count, prefix = body.get("count", 1), str(body.get("prefix", "user"))
    if not isinstance(count, int) or not 1 <= count <= 10000 or not prefix.isalnum():
        return bad("count must be 1..10000 and prefix letters and digits")
    users = state.add_users(
        tenant_id=tenant.id, prefix=prefix.lower(), count=count, password=str(body.get("password", GENERATED_PASSWORD))
    )
    state.save()
    return JSONResponse({"users": [{"upn": u.upn, "id": u.id, "display_name": u.display_name} for u in users]})


async def revoke_sessions(request: Request) -> Response:
    state = state_of(request)
    user = _user(state, request.path_params["user"])
    if user is None:
        return bad("unknown user", 404)
    state.revoke_sessions(user)
    return JSONResponse({"revoked": True, "user": user.id})


async def set_enabled(request: Request) -> Response:
    state = state_of(request)
    user = _user(state, request.path_params["user"])
    if user is None:
        return bad("unknown user", 404)
    action = request.path_params["action"]
    if action == "require-mfa":
        state.require_mfa(user)
        return JSONResponse({"user": user.id, "mfa_required": True})
    if action not in ("enable", "disable"):
        return bad("unknown action", 404)
    enabled = request.path_params["action"] == "enable"
    state.set_enabled(user, enabled)
    return JSONResponse({"user": user.id, "enabled": enabled})


async def rotate_keys(request: Request) -> Response:
    state = state_of(request)
    body = await json_object(request)
    key = state.keys.rotate(retire_old=bool(body.get("retire_old", False)))
    return JSONResponse({"kid": key.kid, "published": [k.kid for k in state.keys.keys]})


async def fault_list(request: Request) -> Response:
    state = state_of(request)
    if request.method == "DELETE":
        state.faults.clear()
        return JSONResponse({"faults": []})
    if request.method == "POST":
        try:
            state.faults.append(faults.validate(await json_object(request)))
        except ValueError as exc:
            return bad(str(exc))
    return JSONResponse({"faults": state.faults})


async def settings(request: Request) -> Response:
    state = state_of(request)
    if request.method == "PUT":
        try:
            body = await json_object(request)
        except ValueError as exc:
            return bad(str(exc))
        unknown = set(body) - DEFAULT_SETTINGS.keys()
        if unknown:
            return bad(f"unknown settings: {sorted(unknown)}")
        state.settings.update(body)
        state.save()
    return JSONResponse(state.settings)


async def requests_log(request: Request) -> Response:
    state = state_of(request)
    if request.method == "DELETE":
        state.request_log.clear()
        state.counters.clear()
        return JSONResponse({"requests": []})
    service = request.query_params.get("service")
    endpoint = request.query_params.get("endpoint")
    since = int(request.query_params.get("since", "0"))
    entries = [
        e
        for e in state.request_log
        if e["id"] > since and (not service or e["service"] == service) and (not endpoint or e["endpoint"] == endpoint)
    ]
    return JSONResponse({"requests": entries})


async def counters(request: Request) -> Response:
    return JSONResponse(state_of(request).counters)


async def mint_token(request: Request) -> Response:
    """An access token as Entra would issue it, with its times shifted (expired tokens for tests)."""
    state = state_of(request)
    body = await json_object(request)
    user = _user(state, str(body.get("user", "")))
    app = state.directory.apps.get(str(body.get("client_id", "")))
    if user is None or app is None:
        return bad("user and client_id must name a seeded user and app", 404)
    parsed = parse(" ".join(body.get("scopes", [])))
    resource = parsed.resources[0] if parsed.resources else GRAPH
    perms = parsed.permissions.get(resource, set())
    now = int(time.time()) + int(body.get("shift_seconds", 0))
    token, lifetime = tokens.access_token(state, user=user, app=app, resource=resource, scopes=perms, now=now)
    return JSONResponse({"access_token": token, "expires_on": now + lifetime})


def routes() -> list[Any]:
    return [
        Route("/directory", directory),
        Route("/reset", reset, methods=["POST"]),
        Route("/tenants/{tenant}/apps/{client_id}/revoke-consent", revoke_consent, methods=["POST"]),
        Route("/tenants/{tenant}/apps/{client_id}/grant-consent", grant_consent, methods=["POST"]),
        Route("/tenants/{tenant}/users", add_users, methods=["POST"]),
        Route("/users/{user}/revoke-sessions", revoke_sessions, methods=["POST"]),
        Route("/users/{user}/{action:str}", set_enabled, methods=["POST"]),
        Route("/keys/rotate", rotate_keys, methods=["POST"]),
        Route("/faults", fault_list, methods=["GET", "POST", "DELETE"]),
        Route("/settings", settings, methods=["GET", "PUT"]),
        Route("/requests", requests_log, methods=["GET", "DELETE"]),
        Route("/counters", counters),
        Route("/tokens", mint_token, methods=["POST"]),
        *entra_control.routes(),
        *graph_control.routes(),
    ]
