"""OpenID discovery documents and the JWKS."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devcloud.directory import Tenant
from devcloud.entra import errors
from devcloud.entra.authorize import resolve_authority
from devcloud.state import State


def configuration(base: str, path_tenant: str, issuer: str, region: str | None) -> dict[str, Any]:
    root = f"{base}/{path_tenant}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": base.split("://", 1)[1],
        "rbac_url": "https://pas.windows.net",
    }


async def openid_configuration(request: Request) -> Response:
    state: State = request.app.state.devcloud
    ref = request.path_params["tenant"]
    authority = resolve_authority(state, ref)
    if authority is None:
        return errors.tenant_not_found(ref).response()
    if isinstance(authority, Tenant):
        doc = configuration(state.base_url, authority.id, f"{state.base_url}/{authority.id}/v2.0", "WW")
    else:
        doc = configuration(state.base_url, authority, state.base_url + "/{tenantid}/v2.0", None)
    return JSONResponse(doc, headers={"Cache-Control": "max-age=86400, private"})


async def jwks(request: Request) -> Response:
    state: State = request.app.state.devcloud
    if resolve_authority(state, request.path_params["tenant"]) is None:
        return errors.tenant_not_found(request.path_params["tenant"]).response()
    keys = state.keys.jwks()
    for key in keys["keys"]:
        key["issuer"] = state.base_url + "/{tenantid}/v2.0"
    return JSONResponse(keys, headers={"Cache-Control": "max-age=86400, private"})


async def user_realm(request: Request) -> Response:
    # Federation discovery for ROPC; devcloud's users are all managed (cloud-only).
    return JSONResponse({"error": "not_found"}, status_code=404)


def routes() -> list[Any]:
    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        Route("/{tenant}/discovery/v2.0/keys", jwks),
        Route("/{tenant}/discovery/keys", jwks),
        Route("/common/userrealm/{username}", user_realm),
    ]
