"""Entra's admin consent endpoint: only the three consent-capable roles may grant for the tenant."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.devcloud.conftest import msal_app
from tests.devcloud.test_entra_msal import auth_code_flow
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, USERS, DevCloud, sign_in

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
