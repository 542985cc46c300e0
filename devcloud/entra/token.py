"""`/token`: authorization code (+ PKCE), refresh token, client credentials."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud import scopes as sc
from devcloud.directory import App, Tenant, User
from devcloud.entra import assertion, errors, tokens
from devcloud.entra.authorize import pkce_matches, resolve_authority
from devcloud.state import State

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            raw = base64.b64decode(header[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise errors.missing_client_secret() from None
        client_id, _, secret = raw.partition(":")
        return unquote(client_id), unquote(secret)
    return form.get("client_id", ""), form.get("client_secret")


def _authenticate(state: State, request: Request, form: dict[str, str], authority: Tenant | str, name: str) -> App:
    """The app, authenticated by one of its secrets or by an assertion signed with one of its certificates."""
    client_id, secret = _client_credentials(request, form)
    if not client_id:
        raise errors.missing_parameter("client_id")
    app = state.directory.apps.get(client_id)
    if app is None:
        raise errors.app_not_found(client_id, name)
    client_assertion = form.get("client_assertion", "")
    if secret and client_assertion:
        raise errors.two_client_credentials()
    if client_assertion:
        _check_assertion(state, request, app, form, authority)
    elif secret:
        _check_secret(state, app, secret)
    else:
        raise errors.missing_client_credentials(form.get("grant_type", ""))
    return app


def _check_secret(state: State, app: App, secret: str) -> None:
    now = dt.datetime.now(dt.UTC)
    matching = [s for s in state.credentials[app.client_id].secrets if secrets.compare_digest(secret, s.value)]
    if not matching:
        raise errors.invalid_client_secret(app.client_id)
    if all(s.expired(now) for s in matching):
        raise errors.client_secret_expired(app.client_id)


def _check_assertion(state: State, request: Request, app: App, form: dict[str, str], authority: Tenant | str) -> None:
    assertion_type = form.get("client_assertion_type", "")
    if not assertion_type:
        raise errors.missing_parameter("client_assertion_type")
    if assertion_type != assertion.JWT_BEARER:
        raise errors.unexpected_assertion_type()
    # `aud` names the token endpoint at the host the client reached (or devcloud's own base URL).
    origins = {str(request.base_url).rstrip("/").lower(), state.base_url.lower()}
    assertion.verify(state, app, form["client_assertion"], authority=authority, origins=origins)


def _one_resource(scope: str) -> tuple[sc.Scopes, str]:
    parsed = sc.parse(scope)
    if parsed.invalid or parsed.mixes_default:
        raise errors.invalid_scope(" ".join(parsed.invalid) or scope)
    resources = parsed.resources
    if len(resources) > 1:
        raise errors.multiple_resources(scope)
    return parsed, resources[0] if resources else sc.GRAPH


def _user_grant_response(
    state: State,
    *,
    app: App,
    user: User,
    scope: str,
    original_scope: str,
    nonce: str | None,
    want_client_info: bool,
) -> JSONResponse:
    parsed, resource = _one_resource(scope)
    if not state.is_enabled(user):
        raise errors.user_disabled()
    tenant = state.directory.tenants[user.tenant_id]
    consented = state.consented_scopes(user, app)
    if not state.has_service_principal(tenant, app) or not parsed.qualified() <= consented:
        raise errors.consent_required(app.client_id, app.name)
    granted = sc.for_resource(consented, resource)
    if resource in parsed.default_for and not granted:
        raise errors.consent_required(app.client_id, app.name)
    now = int(time.time())
    access, lifetime = tokens.access_token(state, user=user, app=app, resource=resource, scopes=granted, now=now)
    all_oidc = parsed.oidc | sc.parse(original_scope).oidc
    shown = sc.display(resource, granted, requested=scope)
    if resource in parsed.default_for:
        shown.append(f"{resource}/.default")
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(shown + sorted(all_oidc - {"offline_access"})),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    }
    if "offline_access" in all_oidc:
        body["refresh_token"] = tokens.refresh_token(state, user=user, app=app, scope=original_scope)
    if "openid" in all_oidc:
        body["id_token"] = tokens.id_token(state, user=user, app=app, nonce=nonce, now=now, email="email" in all_oidc)
    if want_client_info:
        body["client_info"] = tokens.client_info(user)
    return JSONResponse(body, headers=NO_STORE)


def _authorization_code(state: State, app: App, form: dict[str, str], authority: Tenant | str) -> JSONResponse:
    value = form.get("code", "")
    if not value:
        raise errors.missing_parameter("code")
    code = state.codes.get(value)
    if code is None or code.client_id != app.client_id:
        raise errors.code_invalid()
    if isinstance(authority, Tenant) and authority.id != code.tenant_id:
        raise errors.code_other_tenant(authority.display_name)
    if code.redeemed:
        raise errors.code_redeemed()
    code.redeemed = True
    if code.expires < time.time():
        raise errors.code_expired()
    if form.get("redirect_uri", "") != code.redirect_uri:
        raise errors.redirect_uri_mismatch(form.get("redirect_uri", ""), app.client_id)
    if code.code_challenge and not pkce_matches(code, form.get("code_verifier", "")):
        raise errors.pkce_mismatch()
    scope = form.get("scope") or _first_resource_scope(code.scope)
    user = state.directory.user(code.user_id)
    assert user is not None
    return _user_grant_response(
        state,
        app=app,
        user=user,
        scope=scope,
        original_scope=code.scope + " " + scope,
        nonce=code.nonce,
        want_client_info=form.get("client_info") == "1",
    )


def _first_resource_scope(scope: str) -> str:
    """Without `scope`, a code is redeemed for the first resource it was issued for."""
    parsed = sc.parse(scope)
    if not parsed.resources:
        return scope
    first = parsed.resources[0]
    kept = [s for s in scope.split() if sc.parse(s).resources in ([], [first])]
    return " ".join(kept)


def _refresh_token(state: State, app: App, form: dict[str, str], authority: Tenant | str) -> JSONResponse:
    value = form.get("refresh_token", "")
    if not value:
        raise errors.missing_parameter("refresh_token")
    rt = tokens.read_refresh_token(state, value)
    if rt is None:
        raise errors.refresh_token_invalid()
    if rt["cid"] != app.client_id:
        raise errors.refresh_token_other_client()
    if isinstance(authority, Tenant) and authority.id != rt["tid"]:
        raise errors.refresh_token_other_client()
    user = state.directory.user(rt["oid"])
    if user is None:
        raise errors.refresh_token_invalid()
    if not state.is_enabled(user):
        raise errors.user_disabled()
    valid_from = state.tokens_valid_from.get(user.id, 0.0)
    if rt["iat"] < valid_from:
        raise errors.grant_revoked(_iso(rt["iat"]), _iso(valid_from))
    if rt["iat"] + float(state.settings["refresh_token_lifetime"]) < time.time():
        raise errors.refresh_token_expired(_iso(rt["iat"]))
    scope = form.get("scope") or rt["scope"]
    mfa_from = state.mfa_required_from.get(user.id)
    if mfa_from is not None and rt["iat"] < mfa_from:
        raise errors.mfa_required(sc.parse(scope).resources[:1] or [sc.GRAPH])
    return _user_grant_response(
        state,
        app=app,
        user=user,
        scope=scope,
        original_scope=rt["scope"],
        nonce=None,
        want_client_info=form.get("client_info") == "1",
    )


def _client_credentials_grant(state: State, app: App, form: dict[str, str], authority: Tenant | str) -> JSONResponse:
    if not isinstance(authority, Tenant):
        raise errors.tenant_required_for_client_credentials(str(authority))
    scope = form.get("scope", "")
    if not scope:
        raise errors.missing_parameter("scope")
    parsed = sc.parse(scope)
    if len(parsed.resources) > 1:
        raise errors.invalid_scope(scope)
    if parsed.invalid or parsed.permissions or parsed.oidc or not parsed.default_for:
        raise errors.client_credentials_scope(scope)
    if not state.has_service_principal(authority, app):
        raise errors.app_not_found(app.client_id, authority.display_name)
    resource = parsed.resources[0]
    access, lifetime = tokens.app_token(state, app=app, tenant=authority, resource=resource, now=int(time.time()))
    body = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}
    return JSONResponse(body, headers=NO_STORE)


async def token(request: Request) -> Response:
    state: State = request.app.state.devcloud
    form = {k: str(v) for k, v in (await request.form()).items()}
    request.state.log_detail = {"grant_type": form.get("grant_type", ""), "client_id": form.get("client_id", "")}
    correlation = request.headers.get("client-request-id")
    tenant_ref = request.path_params["tenant"]
    try:
        authority = resolve_authority(state, tenant_ref)
        if authority is None:
            raise errors.tenant_not_found(tenant_ref)
        name = authority.display_name if isinstance(authority, Tenant) else tenant_ref
        app = _authenticate(state, request, form, authority, name)
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return _authorization_code(state, app, form, authority)
        if grant_type == "refresh_token":
            return _refresh_token(state, app, form, authority)
        if grant_type == "client_credentials":
            return _client_credentials_grant(state, app, form, authority)
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        raise errors.unsupported_grant_type(grant_type)
    except errors.EntraError as exc:
        request.state.log_detail["error_code"] = exc.code
        return exc.response(correlation)


def routes() -> list[Any]:
    return [Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"])]
