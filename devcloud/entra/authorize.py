"""`/authorize`, sign-in, consent and `/adminconsent`: the browser half of Entra ID."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from devcloud import scopes as sc
from devcloud.directory import App, Tenant, User
from devcloud.entra import errors, pages
from devcloud.state import AuthCode, State

SSO_COOKIE = "devcloud_sso"
AUTHORITY_ALIASES = ("common", "organizations", "consumers")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _state(request: Request) -> State:
    state: State = request.app.state.devcloud
    return state


def resolve_authority(state: State, ref: str) -> Tenant | str | None:
    """A specific tenant, or one of the aliases common / organizations / consumers."""
    if ref.lower() in AUTHORITY_ALIASES:
        if ref.lower() == "consumers":
            return state.directory.tenant("9188040d-6c67-4c5b-b112-36a304b66dad") or ref.lower()
        return ref.lower()
    return state.directory.tenant(ref)


def redirect_uri_registered(app: App, redirect_uri: str) -> bool:
    """Exact match; for http loopback addresses the port is ignored, as Entra does."""
    if redirect_uri in app.redirect_uris:
        return True
    asked = urlsplit(redirect_uri)
    if asked.scheme != "http" or asked.hostname not in ("localhost", "127.0.0.1", "::1"):
        return False
    for registered in map(urlsplit, app.redirect_uris):
        if (registered.scheme, registered.hostname, registered.path, registered.query) == (
            asked.scheme,
            asked.hostname,
            asked.path,
            asked.query,
        ):
            return True
    return False


def _sso_user(state: State, request: Request) -> User | None:
    raw = request.cookies.get(SSO_COOKIE)
    data = state.unseal(raw) if raw else None
    if not data or data.get("t") != "sso":
        return None
    user = state.directory.user(data["oid"])
    if user is None or not state.is_enabled(user):
        return None
    # revokeSignInSessions ends browser sessions too, not only refresh tokens.
    return user if data["at"] >= state.tokens_valid_from.get(user.id, 0.0) else None


def _new_transaction(state: State, txn: dict[str, str]) -> str:
    if len(state.transactions) > 10000:
        for key in list(state.transactions)[:1000]:
            del state.transactions[key]
    ctx = secrets.token_urlsafe(24)
    state.transactions[ctx] = txn
    return ctx


def _finish(txn: dict[str, str], params: dict[str, str]) -> Response:
    """Send the browser back to the app with `params`, as the response mode asks."""
    if txn.get("response_mode") == "form_post":
        return pages.form_post(txn["redirect_uri"], params)
    sep = "#" if txn.get("response_mode") == "fragment" else ("&" if "?" in txn["redirect_uri"] else "?")
    return RedirectResponse(txn["redirect_uri"] + sep + urlencode(params), status_code=302)


def _error_redirect(txn: dict[str, str], err: errors.EntraError, **extra: str) -> Response:
    body = err.body()
    params = {"error": body["error"], "error_description": body["error_description"], "error_uri": body["error_uri"]}
    params.update(extra)
    if "state" in txn:
        params["state"] = txn["state"]
    return _finish(txn, params)


def needed_scopes(txn: dict[str, str], app: App, consented: set[str] | None = None) -> set[str]:
    """The permissions to consent to. `.default` is static consent: every permission the app's
    registration requires, for all its APIs (not only the resource named), whenever consent is
    needed. At /authorize it is not needed while the user holds a permission of each `.default`
    resource already, unless `prompt=consent`; at /adminconsent (`consented` None) it always is."""
    parsed = sc.parse(txn["scope"])
    needed = parsed.qualified()
    if not parsed.default_for:
        return needed
    if (
        consented is not None
        and txn.get("prompt") != "consent"
        and all(sc.for_resource(consented, resource) for resource in parsed.default_for)
    ):
        return needed
    return needed | sc.qualify(app.required_scopes)


# /authorize ---------------------------------------------------------------------------
async def authorize(request: Request) -> Response:
    state = _state(request)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.form()).items()})
    tenant_ref = request.path_params["tenant"]
    authority = resolve_authority(state, tenant_ref)
    if authority is None:
        return pages.error(str(errors.tenant_not_found(tenant_ref)))
    client_id = params.get("client_id", "")
    if not client_id:
        return pages.error(str(errors.missing_parameter("client_id")))
    app = state.directory.apps.get(client_id)
    if app is None:
        name = authority.display_name if isinstance(authority, Tenant) else tenant_ref
        return pages.error(str(errors.app_not_found(client_id, name)))
    redirect_uri = params.get("redirect_uri") or app.redirect_uris[0]
    if not redirect_uri_registered(app, redirect_uri):
        return pages.error(str(errors.redirect_uri_mismatch(redirect_uri, client_id)))
    txn: dict[str, str] = {
        "kind": "authorize",
        "tenant": tenant_ref,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        **{
            k: params[k]
            for k in (
                "state",
                "nonce",
                "scope",
                "prompt",
                "login_hint",
                "response_mode",
                "code_challenge",
                "code_challenge_method",
            )
            if k in params
        },
    }
    problem = _check_authorize_params(params, txn)
    if problem is not None:
        return _error_redirect(txn, problem)
    return _start_sign_in(state, request, txn, app)


def _check_authorize_params(params: dict[str, str], txn: dict[str, str]) -> errors.EntraError | None:
    response_type = params.get("response_type", "")
    if not response_type:
        return errors.missing_parameter("response_type")
    if response_type != "code":
        return errors.unsupported_response_type(response_type)
    if not params.get("scope"):
        return errors.missing_parameter("scope")
    parsed = sc.parse(params["scope"])
    if parsed.invalid or parsed.mixes_default:
        return errors.invalid_scope(" ".join(parsed.invalid) or params["scope"])
    if params.get("code_challenge"):
        method = params.get("code_challenge_method", "plain")
        if method not in ("S256", "plain"):
            return errors.EntraError(
                "invalid_request", 501491, f"Invalid size of Code_Challenge parameter or method '{method}'."
            )
        txn["code_challenge_method"] = method
    if params.get("response_mode", "query") not in ("query", "fragment", "form_post"):
        return errors.EntraError("invalid_request", 900018, "The response_mode is not supported.")
    return None


def _start_sign_in(state: State, request: Request, txn: dict[str, str], app: App) -> Response:
    prompt = txn.get("prompt", "")
    user = _sso_user(state, request)
    hint = txn.get("login_hint", "")
    if user and hint and hint.lower() != user.upn.lower():
        user = None
    if prompt == "none":
        if user is None:
            return _error_redirect(txn, errors.silent_login_required())
        return _after_sign_in(state, txn, app, user)
    if user is not None and prompt not in ("login", "select_account"):
        return _after_sign_in(state, txn, app, user)
    ctx = _new_transaction(state, txn)
    return pages.login(action=f"/{txn['tenant']}/login", ctx=ctx, app_name=app.name, username=hint)


def _tenant_problem(state: State, txn: dict[str, str], app: App, user: User) -> errors.EntraError | None:
    authority = resolve_authority(state, txn["tenant"])
    tenant = state.directory.tenants[user.tenant_id]
    if isinstance(authority, Tenant) and authority.id != tenant.id:
        return errors.user_not_in_tenant(user.upn, tenant.id, authority.display_name, app.client_id)
    if tenant.is_personal and (authority == "organizations" or not app.allows_personal_accounts):
        return errors.personal_account_not_allowed(app.client_id)
    if not app.multitenant and tenant.id != app.home_tenant_id:
        return errors.app_not_found(app.client_id, tenant.display_name)
    return None


def _after_sign_in(state: State, txn: dict[str, str], app: App, user: User) -> Response:
    problem = _tenant_problem(state, txn, app, user)
    if problem is not None:
        return pages.error(str(problem))
    txn = {**txn, "user": user.id}
    if txn["kind"] == "adminconsent":
        return _admin_consent_page(state, txn, app, user)
    consented = state.consented_scopes(user, app)
    needed = needed_scopes(txn, app, consented)
    missing = needed - consented
    if not missing and txn.get("prompt") != "consent":
        return _issue_code(state, txn, app, user)
    if txn.get("prompt") == "none":
        return _error_redirect(txn, errors.silent_consent_required(app.client_id, app.name))
    tenant = state.directory.tenants[user.tenant_id]
    users_may_consent = tenant.user_consent and not (missing & sc.ADMIN_ONLY)
    if not (user.can_consent_for_tenant or users_may_consent):
        ctx = _new_transaction(state, txn)
        err = errors.admin_approval_required(app.name)
        return pages.approval_required(message=str(err), return_url=f"/{txn['tenant']}/consent/return?ctx={ctx}")
    ctx = _new_transaction(state, {**txn, "consent": " ".join(sorted(needed))})
    return pages.consent(
        action=f"/{txn['tenant']}/consent",
        ctx=ctx,
        app_name=app.name,
        user_upn=user.upn,
        scopes=sorted(needed),
        offer_tenant_wide=user.can_consent_for_tenant,
        admin_consent=False,
    )


def _admin_consent_page(state: State, txn: dict[str, str], app: App, user: User) -> Response:
    if not user.can_consent_for_tenant:
        return _error_redirect(txn, errors.admin_consent_by_non_admin(), admin_consent="True")
    needed = needed_scopes(txn, app)
    ctx = _new_transaction(state, {**txn, "consent": " ".join(sorted(needed))})
    return pages.consent(
        action=f"/{txn['tenant']}/consent",
        ctx=ctx,
        app_name=app.name,
        user_upn=user.upn,
        scopes=sorted(needed),
        offer_tenant_wide=True,
        admin_consent=True,
    )


def _issue_code(state: State, txn: dict[str, str], app: App, user: User) -> Response:
    code = state.new_code(
        AuthCode(
            client_id=app.client_id,
            tenant_id=user.tenant_id,
            redirect_uri=txn["redirect_uri"],
            scope=txn["scope"],
            user_id=user.id,
            nonce=txn.get("nonce"),
            code_challenge=txn.get("code_challenge"),
            code_challenge_method=txn.get("code_challenge_method", "plain"),
            expires=time.time() + float(state.settings["code_lifetime"]),
            auth_time=int(time.time()),
        )
    )
    params = {"code": code}
    if "state" in txn:
        params["state"] = txn["state"]
    params["session_state"] = hashlib.sha256(user.id.encode()).hexdigest()[:36]
    return _finish(txn, params)


# sign-in form ---------------------------------------------------------------------------
async def login(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    ctx = str(form.get("ctx", ""))
    txn = state.transactions.get(ctx)
    if txn is None:
        return pages.error("AADSTS90014: Your sign-in session has expired. Start again from the application.")
    app = state.directory.apps[txn["client_id"]]
    username = str(form.get("username", "")).strip()
    user = state.directory.user_by_upn(username)
    problem: errors.EntraError | None = None
    if user is None:
        problem = errors.user_not_found(username)
    elif not secrets.compare_digest(str(form.get("password", "")), user.password):
        problem = errors.bad_credentials()
    elif not state.is_enabled(user):
        problem = errors.user_disabled()
    if problem is not None or user is None:
        return pages.login(
            action=f"/{txn['tenant']}/login", ctx=ctx, app_name=app.name, username=username, error=str(problem)
        )
    del state.transactions[ctx]
    response = _after_sign_in(state, txn, app, user)
    response.set_cookie(
        SSO_COOKIE,
        state.seal({"t": "sso", "oid": user.id, "at": time.time()}),
        httponly=True,
        secure=True,
        samesite="lax",
    )
    return response


# consent ------------------------------------------------------------------------------
async def consent(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    txn = state.transactions.pop(str(form.get("ctx", "")), None)
    user = _sso_user(state, request)
    if txn is None or "consent" not in txn or user is None or user.id != txn.get("user"):
        return pages.error("AADSTS90014: Your sign-in session has expired. Start again from the application.")
    app = state.directory.apps[txn["client_id"]]
    admin = txn["kind"] == "adminconsent"
    if form.get("action") != "accept":
        extra = {"admin_consent": "True"} if admin else {}
        return _error_redirect(txn, errors.consent_declined(), **extra)
    tenant_wide = form.get("tenant_wide") == "on" and user.can_consent_for_tenant
    state.record_consent(user=user, app=app, scopes=set(txn["consent"].split()), tenant_wide=tenant_wide)
    if admin:
        params = {"admin_consent": "True", "tenant": user.tenant_id, "scope": txn["scope"]}
        if "state" in txn:
            params["state"] = txn["state"]
        return _finish(txn, params)
    return _issue_code(state, txn, app, user)


async def consent_return(request: Request) -> Response:
    state = _state(request)
    txn = state.transactions.pop(request.query_params.get("ctx", ""), None)
    if txn is None:
        return pages.error("AADSTS90014: Your sign-in session has expired. Start again from the application.")
    return _error_redirect(txn, errors.admin_consent_by_non_admin())


# /adminconsent ----------------------------------------------------------------------------
async def admin_consent(request: Request) -> Response:
    state = _state(request)
    params = dict(request.query_params)
    tenant_ref = request.path_params["tenant"]
    if tenant_ref.lower() == "common":
        return pages.error(str(errors.common_not_allowed_for_admin_consent()))
    if resolve_authority(state, tenant_ref) is None:
        return pages.error(str(errors.tenant_not_found(tenant_ref)))
    app = state.directory.apps.get(params.get("client_id", ""))
    if app is None:
        return pages.error(str(errors.app_not_found(params.get("client_id", ""), tenant_ref)))
    redirect_uri = params.get("redirect_uri") or app.redirect_uris[0]
    if not redirect_uri_registered(app, redirect_uri):
        return pages.error(str(errors.redirect_uri_mismatch(redirect_uri, app.client_id)))
    txn: dict[str, str] = {
        "kind": "adminconsent",
        "tenant": tenant_ref,
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        **{k: params[k] for k in ("state", "scope", "login_hint") if k in params},
    }
    if not params.get("scope"):
        return _error_redirect(txn, errors.missing_parameter("scope"), admin_consent="True")
    if sc.parse(params["scope"]).invalid:
        return _error_redirect(txn, errors.invalid_scope(params["scope"]), admin_consent="True")
    return _start_sign_in(state, request, txn, app)


async def logout(request: Request) -> Response:
    """Signs out; redirects only to a URI registered for the app named by `client_id`."""
    state = _state(request)
    target = request.query_params.get("post_logout_redirect_uri")
    app = state.directory.apps.get(request.query_params.get("client_id", ""))
    if target and (app is None or not redirect_uri_registered(app, target)):
        target = None
    response: Response = (
        RedirectResponse(target, status_code=302)
        if target
        else pages.page(
            "Signed out", "<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>"
        )
    )
    response.delete_cookie(SSO_COOKIE)
    return response


def pkce_matches(code: AuthCode, verifier: str) -> bool:
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return secrets.compare_digest(computed, code.code_challenge or "")


def routes() -> list[Any]:
    return [
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
        Route("/{tenant}/login", login, methods=["POST"]),
        Route("/{tenant}/consent", consent, methods=["POST"]),
        Route("/{tenant}/consent/return", consent_return, methods=["GET"]),
        Route("/{tenant}/v2.0/adminconsent", admin_consent, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/logout", logout, methods=["GET", "POST"]),
    ]
