"""msal against devcloud's Entra ID: the flows the portal uses, and the errors Entra gives."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qsl, urlsplit

import msal
import pytest
import requests

from tests.devcloud.conftest import REDIRECT_URI, msal_app, verify_signature
from tests.devcloud_server import (
    ACS_SCOPES,
    CONTOSO_APP,
    FABRIKAM,
    NORTHWIND,
    USERS,
    DevCloud,
    sign_in,
)

GRAPH_SCOPES = ["User.Read", "Chat.ReadWrite"]
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def auth_code_flow(
    devcloud: DevCloud,
    app: msal.ConfidentialClientApplication,
    who: str,
    scopes: list[str] | None = None,
    **kwargs: object,
) -> dict[str, object]:
    flow = app.initiate_auth_code_flow(scopes or GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS[who][0], **kwargs)  # type: ignore[arg-type]
    return app.acquire_token_by_auth_code_flow(flow, result.params)


def test_discovery_templates_the_issuer_for_multitenant_authorities(devcloud: DevCloud) -> None:
    for alias in ("organizations", "common"):
        doc = devcloud.http.get(f"{devcloud.base_url}/{alias}/v2.0/.well-known/openid-configuration").json()
        assert doc["issuer"] == devcloud.base_url + "/{tenantid}/v2.0"
        assert doc["token_endpoint"] == f"{devcloud.base_url}/{alias}/oauth2/v2.0/token"
    by_domain = devcloud.http.get(f"{devcloud.base_url}/fabrikam.example/v2.0/.well-known/openid-configuration").json()
    assert by_domain["issuer"] == f"{devcloud.base_url}/{FABRIKAM}/v2.0"


def test_discovery_of_an_unknown_tenant_is_aadsts90002(devcloud: DevCloud) -> None:
    response = devcloud.http.get(f"{devcloud.base_url}/nowhere.example/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_auth_code_flow_with_pkce_through_the_sign_in_page(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    query = dict(parse_qsl(urlsplit(flow["auth_uri"]).query))
    assert query["code_challenge_method"] == "S256"
    result = contoso.acquire_token_by_auth_code_flow(
        flow, sign_in(devcloud, flow["auth_uri"], USERS["alice"][0]).params
    )
    assert "access_token" in result, result
    # MSAL sends the SHA-256 of its nonce; the id_token must echo what was sent.
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["oid"] == USERS["alice"][1]
    assert result["id_token_claims"]["tid"] == FABRIKAM
    assert GLOBAL_ADMIN in result["id_token_claims"]["wids"]
    client_info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert client_info == {"uid": USERS["alice"][1], "utid": FABRIKAM}
    claims = verify_signature(devcloud, result["access_token"], "https://graph.microsoft.com")
    assert set(claims["scp"].split()) >= {"User.Read", "Chat.ReadWrite"}
    assert claims["azp"] == claims["appid"] == CONTOSO_APP
    assert 3600 <= claims["exp"] - claims["iat"] <= 5400
    verify_signature(devcloud, result["id_token"], CONTOSO_APP)
    assert contoso.get_accounts()[0]["home_account_id"] == f"{USERS['alice'][1]}.{FABRIKAM}"


def test_a_tampered_code_verifier_is_aadsts501481(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    params = sign_in(devcloud, flow["auth_uri"], USERS["bob"][0]).params
    flow["code_verifier"] = "x" * 43
    result = contoso.acquire_token_by_auth_code_flow(flow, params)
    assert result["error_codes"] == [501481]


def test_a_code_is_redeemed_once(devcloud: DevCloud, contoso: msal.ConfidentialClientApplication) -> None:
    devcloud.grant_consent(FABRIKAM)
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    params = sign_in(devcloud, flow["auth_uri"], USERS["bob"][0]).params
    assert "access_token" in contoso.acquire_token_by_auth_code_flow(dict(flow), params)
    again = contoso.acquire_token_by_auth_code_flow(dict(flow), params)
    assert again["error_codes"] == [54005]


def test_refresh_to_a_second_resource_silently(devcloud: DevCloud, contoso: msal.ConfidentialClientApplication) -> None:
    devcloud.grant_consent(FABRIKAM)
    assert "access_token" in auth_code_flow(devcloud, contoso, "bob")
    account = contoso.get_accounts()[0]
    acs = contoso.acquire_token_silent(ACS_SCOPES, account=account)
    assert acs is not None and "access_token" in acs, acs
    claims = verify_signature(devcloud, acs["access_token"], "https://auth.msft.communication.azure.com")
    assert set(claims["scp"].split()) == {"Teams.ManageCalls", "Teams.ManageChats"}
    assert claims["oid"] == USERS["bob"][1]
    # Served from MSAL's cache the second time: no new token request.
    before = len(devcloud.requests(endpoint="entra.token.token"))
    assert contoso.acquire_token_silent(ACS_SCOPES, account=account)["access_token"] == acs["access_token"]
    assert len(devcloud.requests(endpoint="entra.token.token")) == before


def test_two_resources_in_one_token_request_is_aadsts28000(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    auth_code_flow(devcloud, contoso, "bob")
    result = contoso.acquire_token_silent_with_error([*ACS_SCOPES, "User.Read"], account=contoso.get_accounts()[0])
    assert result is not None and result["error_codes"] == [28000]


def test_a_bad_client_secret_is_aadsts7000215(devcloud: DevCloud) -> None:
    app = msal_app(devcloud, authority=FABRIKAM, secret="not-the-secret")
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_client_credentials_succeed_only_where_the_app_is_consented(devcloud: DevCloud) -> None:
    app = msal_app(devcloud, authority=FABRIKAM)
    refused = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert refused["error"] == "unauthorized_client"
    assert refused["error_codes"] == [700016]
    devcloud.grant_consent(FABRIKAM)
    granted = msal_app(devcloud, authority=FABRIKAM).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    claims = verify_signature(devcloud, granted["access_token"], "https://graph.microsoft.com")
    assert claims["tid"] == FABRIKAM
    assert claims["idtyp"] == "app"
    assert "scp" not in claims


def test_client_credentials_need_a_default_scope(devcloud: DevCloud) -> None:
    result = msal_app(devcloud, authority=FABRIKAM).acquire_token_for_client(["https://graph.microsoft.com/User.Read"])
    assert result["error"] == "invalid_scope"


def test_unconsented_scopes_on_refresh_are_aadsts65001(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM, scopes=["https://graph.microsoft.com/User.Read"])
    assert "access_token" in auth_code_flow(devcloud, contoso, "bob", scopes=["User.Read"])
    result = contoso.acquire_token_silent_with_error(ACS_SCOPES, account=contoso.get_accounts()[0])
    assert result is not None
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [65001]
    assert result["suberror"] == "consent_required"


def test_revoked_consent_is_aadsts65001_on_refresh(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    auth_code_flow(devcloud, contoso, "bob")
    devcloud.control("POST", f"/tenants/{FABRIKAM}/apps/{CONTOSO_APP}/revoke-consent")
    result = contoso.acquire_token_silent_with_error(ACS_SCOPES, account=contoso.get_accounts()[0])
    assert result is not None and result["error_codes"] == [65001]
    cc = msal_app(devcloud, authority=FABRIKAM).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert cc["error_codes"] == [700016]


def test_revoked_refresh_tokens_are_aadsts50173(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    auth_code_flow(devcloud, contoso, "bob")
    devcloud.control("POST", f"/users/{USERS['bob'][1]}/revoke-sessions")
    result = contoso.acquire_token_silent_with_error(ACS_SCOPES, account=contoso.get_accounts()[0])
    assert result is not None and result["error_codes"] == [50173]
    assert result["suberror"] == "bad_token"


def test_a_disabled_user_is_aadsts50057_on_refresh(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    auth_code_flow(devcloud, contoso, "bob")
    devcloud.control("POST", f"/users/{USERS['bob'][1]}/disable")
    result = contoso.acquire_token_silent_with_error(ACS_SCOPES, account=contoso.get_accounts()[0])
    assert result is not None and result["error_codes"] == [50057]


def test_a_disabled_user_cannot_sign_in(devcloud: DevCloud, contoso: msal.ConfidentialClientApplication) -> None:
    devcloud.grant_consent(FABRIKAM)
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS["dave"][0])
    assert result.redirect is None
    assert "AADSTS50057" in (result.page or "")


def test_a_wrong_password_is_aadsts50126_on_the_page(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS["bob"][0], password="wrong")
    assert "AADSTS50126" in (result.page or "")


def test_a_member_without_tenant_consent_needs_admin_approval(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS["bob"][0])
    assert "Need admin approval" in (result.page or "")
    assert "AADSTS90094" in (result.page or "")


def test_an_admin_consents_for_the_organization_in_the_consent_page(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    assert "access_token" in auth_code_flow(devcloud, contoso, "alice", tenant_wide=True)
    grants = devcloud.control("GET", "/directory")["grants"][f"{FABRIKAM}:{CONTOSO_APP}"]
    assert "https://graph.microsoft.com/Chat.ReadWrite" in grants["admin_scopes"]
    # Now a member of the tenant signs in without a consent page.
    other = msal_app(devcloud)
    assert "access_token" in auth_code_flow(devcloud, other, "bob", consent=None)


def test_declining_consent_redirects_with_access_denied(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    params = sign_in(devcloud, flow["auth_uri"], USERS["alice"][0], consent="cancel").params
    assert params["error"] == "access_denied"
    assert params["state"] == flow["state"]
    assert params["error_description"].startswith("AADSTS65004:")


def test_a_tenant_specific_authority_refuses_users_of_other_tenants(devcloud: DevCloud) -> None:
    devcloud.grant_consent(NORTHWIND)
    app = msal_app(devcloud, authority=FABRIKAM)
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS["charlie"][0])
    assert "AADSTS50020" in (result.page or "")


def test_the_organizations_authority_refuses_personal_accounts(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS["pat"][0])
    assert "AADSTS50020" in (result.page or "")


def test_an_unregistered_redirect_uri_is_an_error_page_not_a_redirect(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri="https://evil.example/callback")
    response = devcloud.session().get(flow["auth_uri"], allow_redirects=False)
    assert response.status_code == 400
    assert "AADSTS50011" in response.text


def test_loopback_redirect_uris_match_on_any_port(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    flow = contoso.initiate_auth_code_flow(
        GRAPH_SCOPES, redirect_uri="http://localhost:51234/accounts/microsoft/login/callback/"
    )
    result = sign_in(devcloud, flow["auth_uri"], USERS["bob"][0])
    assert result.redirect is not None and result.redirect.startswith("http://localhost:51234/")


def test_prompt_none_without_a_session_is_login_required(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI, prompt="none")
    response = devcloud.session().get(flow["auth_uri"], allow_redirects=False)
    params = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    assert params["error"] == "login_required"


def test_single_sign_on_skips_the_form_and_honours_login_hint(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    browser = devcloud.session()
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    sign_in(devcloud, flow["auth_uri"], USERS["bob"][0], browser=browser)
    again = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI, prompt="none")
    assert "code=" in browser.get(again["auth_uri"], allow_redirects=False).headers["location"]
    other = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI, login_hint=USERS["alice"][0])
    page = browser.get(other["auth_uri"], allow_redirects=False).text
    assert 'name="password"' in page and USERS["alice"][0] in page


def test_signing_keys_rotate_and_old_tokens_still_verify(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    old = auth_code_flow(devcloud, contoso, "bob")["access_token"]
    rotated = devcloud.control("POST", "/keys/rotate")
    assert len(rotated["published"]) == 2
    new = msal_app(devcloud)
    fresh = auth_code_flow(devcloud, new, "bob")["access_token"]
    assert verify_signature(devcloud, fresh, "https://graph.microsoft.com")
    assert verify_signature(devcloud, str(old), "https://graph.microsoft.com")
    devcloud.control("POST", "/keys/rotate", json={"retire_old": True})
    with pytest.raises(StopIteration):
        verify_signature(devcloud, fresh, "https://graph.microsoft.com")


def test_token_errors_have_entras_shape(devcloud: DevCloud) -> None:
    response = requests.post(
        f"{devcloud.base_url}/organizations/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": CONTOSO_APP, "client_secret": "wrong", "refresh_token": "x"},
        verify=devcloud.ca,
        timeout=5,
        headers={"client-request-id": "abc"},
    )
    body = response.json()
    assert response.status_code == 401
    assert set(body) >= {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["correlation_id"] == "abc"
    assert body["error_description"].startswith("AADSTS7000215: ")


def test_revoking_sessions_ends_single_sign_on_too(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    browser = devcloud.session()
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    sign_in(devcloud, flow["auth_uri"], USERS["bob"][0], browser=browser)
    devcloud.control("POST", f"/users/{USERS['bob'][1]}/revoke-sessions")
    silent = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI, prompt="none")
    location = browser.get(silent["auth_uri"], allow_redirects=False).headers["location"]
    assert dict(parse_qsl(urlsplit(location).query))["error"] == "login_required"


def test_a_code_is_redeemed_only_at_its_users_tenant(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    devcloud.grant_consent(FABRIKAM)
    flow = contoso.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    params = sign_in(devcloud, flow["auth_uri"], USERS["bob"][0]).params
    northwind = msal_app(devcloud, authority=NORTHWIND)
    result = northwind.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "invalid_grant"


def test_the_common_authority_refuses_personal_accounts_for_work_only_apps(devcloud: DevCloud) -> None:
    app = msal_app(devcloud, authority="common")
    flow = app.initiate_auth_code_flow(GRAPH_SCOPES, redirect_uri=REDIRECT_URI)
    result = sign_in(devcloud, flow["auth_uri"], USERS["pat"][0])
    assert "AADSTS50020" in (result.page or "")


def test_a_tenant_is_named_by_id_or_verified_domain_only(devcloud: DevCloud) -> None:
    response = devcloud.http.get(f"{devcloud.base_url}/fabrikam/v2.0/.well-known/openid-configuration")
    assert response.json()["error_codes"] == [90002]


def test_logout_redirects_only_to_a_registered_uri(devcloud: DevCloud) -> None:
    logout = f"{devcloud.base_url}/organizations/oauth2/v2.0/logout"
    evil = devcloud.session().get(
        logout,
        params={"post_logout_redirect_uri": "https://evil.example/", "client_id": CONTOSO_APP},
        allow_redirects=False,
    )
    assert evil.status_code == 200 and "signed out" in evil.text
    ours = devcloud.session().get(
        logout,
        params={"post_logout_redirect_uri": "http://localhost:8000/", "client_id": CONTOSO_APP},
        allow_redirects=False,
    )
    assert ours.status_code == 200
    registered = "http://localhost:8000/accounts/microsoft/login/callback/"
    back = devcloud.session().get(
        logout, params={"post_logout_redirect_uri": registered, "client_id": CONTOSO_APP}, allow_redirects=False
    )
    assert back.status_code == 302 and back.headers["location"] == registered


def test_users_may_consent_for_themselves_only_where_the_tenant_allows_and_not_to_admin_only_scopes(
    devcloud: DevCloud,
) -> None:
    app = msal_app(devcloud)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI)
    page = sign_in(devcloud, flow["auth_uri"], USERS["charlie"][0], consent=None).page or ""
    assert "idBtn_Accept" in page and "tenant_wide" not in page
    assert "access_token" in auth_code_flow(devcloud, msal_app(devcloud), "charlie", scopes=["User.Read"])
    flow = app.initiate_auth_code_flow(["User.Read.All"], redirect_uri=REDIRECT_URI)
    assert "Need admin approval" in (sign_in(devcloud, flow["auth_uri"], USERS["charlie"][0]).page or "")


def test_default_mixed_with_a_named_scope_of_the_same_resource_is_invalid(
    devcloud: DevCloud, contoso: msal.ConfidentialClientApplication
) -> None:
    flow = contoso.initiate_auth_code_flow(
        ["https://graph.microsoft.com/.default", "User.Read"], redirect_uri=REDIRECT_URI
    )
    response = devcloud.session().get(flow["auth_uri"], allow_redirects=False)
    assert dict(parse_qsl(urlsplit(response.headers["location"]).query))["error"] == "invalid_scope"
