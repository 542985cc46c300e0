"""Entra's admin consent endpoint: only the three consent-capable roles may grant for the tenant."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
import pytest

from tests.devcloud.certificates import certificate_app, tailspin_generated, with_certificate
from tests.devcloud.conftest import REDIRECT_URI, msal_app
from tests.devcloud.test_entra_msal import auth_code_flow
from tests.devcloud_server import ACS_SCOPES, CONTOSO_APP, FABRIKAM, TAILSPIN_APP, USERS, DevCloud, sign_in

CALLBACK = "http://localhost:8000/onboarding/callback/"
SCOPE = "https://graph.microsoft.com/.default"


def admin_consent_url(devcloud: DevCloud, tenant: str = "organizations", **params: str) -> str:
    query = {"client_id": CONTOSO_APP, "redirect_uri": CALLBACK, "scope": SCOPE, "state": "s-123", **params}
    return f"{devcloud.base_url}/{tenant}/v2.0/adminconsent?{urlencode(query)}"


@pytest.mark.parametrize("admin", ["alice", "april", "cloe"])
def test_a_consent_capable_admin_grants_for_the_whole_tenant(devcloud: DevCloud, admin: str) -> None:
    params = sign_in(devcloud, admin_consent_url(devcloud), USERS[admin][0]).params
    assert params == {"admin_consent": "True", "tenant": FABRIKAM, "scope": SCOPE, "state": "s-123"}
    token = msal_app(devcloud, authority=FABRIKAM).acquire_token_for_client([SCOPE])
    assert "access_token" in token
    # Every member now signs in without a consent page.
    assert "access_token" in auth_code_flow(devcloud, msal_app(devcloud), "bob", consent=None)


@pytest.mark.parametrize("who", ["tom", "bob"])
def test_other_roles_get_the_error_redirect(devcloud: DevCloud, who: str) -> None:
    params = sign_in(devcloud, admin_consent_url(devcloud), USERS[who][0]).params
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS90094:")
    assert params["admin_consent"] == "True"
    assert params["state"] == "s-123"
    assert "tenant" not in params
    refused = msal_app(devcloud, authority=FABRIKAM).acquire_token_for_client([SCOPE])
    assert refused["error_codes"] == [700016]


def test_an_admin_who_cancels_grants_nothing(devcloud: DevCloud) -> None:
    params = sign_in(devcloud, admin_consent_url(devcloud), USERS["alice"][0], consent="cancel").params
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS65004:")
    assert f"{FABRIKAM}:{CONTOSO_APP}" not in devcloud.control("GET", "/directory")["grants"]


def test_the_common_authority_is_refused_for_admin_consent(devcloud: DevCloud) -> None:
    response = devcloud.session().get(admin_consent_url(devcloud, tenant="common"), allow_redirects=False)
    assert response.status_code == 400
    assert "AADSTS90134" in response.text


def test_an_admin_of_another_tenant_cannot_consent_for_this_one(devcloud: DevCloud) -> None:
    result = sign_in(devcloud, admin_consent_url(devcloud, tenant=FABRIKAM), "nina@northwind.example")
    assert result.redirect is None and "AADSTS50020" in (result.page or "")


def test_explicit_scopes_are_granted_as_listed(devcloud: DevCloud) -> None:
    scope = "https://graph.microsoft.com/User.Read https://auth.msft.communication.azure.com/Teams.ManageCalls"
    params = sign_in(devcloud, admin_consent_url(devcloud, scope=scope), USERS["alice"][0]).params
    assert params["scope"] == scope
    grants = devcloud.control("GET", "/directory")["grants"][f"{FABRIKAM}:{CONTOSO_APP}"]
    assert sorted(grants["admin_scopes"]) == sorted(scope.split())


# `.default` is static consent: every permission the registration requires, for all its APIs -------
REQUIRED = {
    "https://auth.msft.communication.azure.com/Teams.ManageCalls",
    "https://auth.msft.communication.azure.com/Teams.ManageChats",
    "https://graph.microsoft.com/User.Read",
    "https://graph.microsoft.com/Chat.ReadWrite",
    "https://graph.microsoft.com/ChatMessage.Send",
    "https://graph.microsoft.com/ChatMember.ReadWrite",
}


def _scp(token: dict[str, object] | None) -> set[str]:
    assert token is not None and "access_token" in token, token
    return set(jwt.decode(str(token["access_token"]), options={"verify_signature": False})["scp"].split())


def test_default_admin_consent_grants_every_required_scope_of_graph_and_acs(devcloud: DevCloud) -> None:
    params = sign_in(devcloud, admin_consent_url(devcloud), USERS["alice"][0]).params
    assert params["admin_consent"] == "True"
    grants = devcloud.control("GET", "/directory")["grants"][f"{FABRIKAM}:{CONTOSO_APP}"]
    assert set(grants["admin_scopes"]) == REQUIRED
    # A member signs in for Graph without a consent page, then gets either resource silently.
    app = msal_app(devcloud)
    assert "access_token" in auth_code_flow(devcloud, app, "bob", scopes=["User.Read"], consent=None)
    account = app.get_accounts()[0]
    assert _scp(app.acquire_token_silent(ACS_SCOPES, account=account)) == {"Teams.ManageCalls", "Teams.ManageChats"}
    graph = app.acquire_token_silent([SCOPE], account=account)
    assert _scp(graph) == {"User.Read", "Chat.ReadWrite", "ChatMessage.Send", "ChatMember.ReadWrite"}


def test_default_consent_at_authorize_by_an_admin_covers_every_resource(devcloud: DevCloud) -> None:
    app = msal_app(devcloud)
    flow = app.initiate_auth_code_flow([SCOPE], redirect_uri=REDIRECT_URI)
    page = sign_in(devcloud, flow["auth_uri"], USERS["alice"][0], consent=None).page or ""
    assert "Teams.ManageChats" in page
    params = sign_in(devcloud, flow["auth_uri"], USERS["alice"][0], tenant_wide=True).params
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, params)
    grants = devcloud.control("GET", "/directory")["grants"][f"{FABRIKAM}:{CONTOSO_APP}"]
    assert set(grants["admin_scopes"]) == REQUIRED


def test_default_at_authorize_asks_nothing_once_the_resource_holds_a_permission(devcloud: DevCloud) -> None:
    devcloud.grant_consent(FABRIKAM, scopes=["https://graph.microsoft.com/User.Read"])
    result = auth_code_flow(devcloud, msal_app(devcloud), "bob", scopes=[SCOPE], consent=None)
    assert _scp(result) == {"User.Read"}


def test_a_customer_admin_consents_tailspin_which_then_signs_in_by_certificate(devcloud: DevCloud) -> None:
    params = sign_in(devcloud, admin_consent_url(devcloud, client_id=TAILSPIN_APP), USERS["april"][0]).params
    assert params["tenant"] == FABRIKAM
    credential = with_certificate(tailspin_generated(devcloud))
    app = certificate_app(devcloud, TAILSPIN_APP, credential)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI)
    result = app.acquire_token_by_auth_code_flow(flow, sign_in(devcloud, flow["auth_uri"], USERS["bob"][0]).params)
    assert "access_token" in result, result
    account = app.get_accounts()[0]
    assert _scp(app.acquire_token_silent(ACS_SCOPES, account=account)) == {"Teams.ManageCalls", "Teams.ManageChats"}
    daemon = certificate_app(devcloud, TAILSPIN_APP, credential, authority=FABRIKAM)
    assert "access_token" in daemon.acquire_token_for_client(["https://auth.msft.communication.azure.com/.default"])
