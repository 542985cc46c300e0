"""azure-communication-identity against devcloud's ACS identity service."""

from __future__ import annotations

import datetime as dt

import jwt
import msal
import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.devcloud.test_entra_msal import auth_code_flow
from tests.devcloud_server import ACS_SCOPES, CONTOSO_APP, FABRIKAM, USERS, DevCloud


def acs_client(devcloud: DevCloud, connection_string: str | None = None) -> CommunicationIdentityClient:
    return CommunicationIdentityClient.from_connection_string(
        connection_string or devcloud.acs_connection_string(), connection_verify=devcloud.ca
    )


@pytest.fixture
def bob_acs_entra_token(devcloud: DevCloud, contoso: msal.ConfidentialClientApplication) -> str:
    devcloud.grant_consent(FABRIKAM)
    auth_code_flow(devcloud, contoso, "bob")
    result = contoso.acquire_token_silent(ACS_SCOPES, account=contoso.get_accounts()[0])
    assert result is not None
    return str(result["access_token"])


def mint(devcloud: DevCloud, who: str, scopes: list[str], shift_seconds: int = 0) -> str:
    body = {"user": USERS[who][1], "client_id": CONTOSO_APP, "scopes": scopes, "shift_seconds": shift_seconds}
    return str(devcloud.control("POST", "/tokens", json=body)["access_token"])


def error_of(excinfo: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int | None, str | None, str | None]:
    """Status, error code and target, read from the body the service sent."""
    assert excinfo.value.response is not None
    error = excinfo.value.response.json()["error"]
    return excinfo.value.status_code, error.get("code"), error.get("target")


def test_it_exchanges_an_entra_token_for_an_acs_token(devcloud: DevCloud, bob_acs_entra_token: str) -> None:
    token = acs_client(devcloud).get_token_for_teams_user(bob_acs_entra_token, CONTOSO_APP, USERS["bob"][1])
    entra = jwt.decode(bob_acs_entra_token, options={"verify_signature": False})
    acs = jwt.decode(token.token, options={"verify_signature": False})
    assert token.token.count(".") == 2
    assert acs["exp"] == entra["exp"]
    assert acs["skypeid"] == f"orgid:{USERS['bob'][1]}"
    assert dt.datetime.fromisoformat(str(token.expires_on)).timestamp() == entra["exp"]
    assert [r["endpoint"] for r in devcloud.requests(service="acs")] == ["acs.exchange"]


@pytest.mark.parametrize(
    ("app_id", "user_id", "status", "code", "target"),
    [
        ("", USERS["bob"][1], 400, "ValidationError", "AppId"),
        (CONTOSO_APP, "", 400, "ValidationError", "UserId"),
        ("not-a-guid", USERS["bob"][1], 400, "ValidationError", "appId"),
        (USERS["bob"][1], USERS["bob"][1], 400, "ValidationError", "appId"),
        (CONTOSO_APP, USERS["alice"][1], 400, "ValidationError", "userId"),
    ],
    ids=["empty-app", "empty-user", "malformed-app", "other-app", "other-user"],
)
def test_it_checks_app_and_user_against_the_token(
    devcloud: DevCloud, bob_acs_entra_token: str, app_id: str, user_id: str, status: int, code: str, target: str
) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        acs_client(devcloud).get_token_for_teams_user(bob_acs_entra_token, app_id, user_id)
    assert error_of(excinfo) == (status, code, target)


@pytest.mark.parametrize(
    "token_of",
    [
        lambda d: mint(d, "bob", ACS_SCOPES, shift_seconds=-10_000),
        lambda d: mint(d, "bob", ["https://graph.microsoft.com/User.Read"]),
        lambda d: mint(d, "bob", ACS_SCOPES[:1]),
        lambda d: "not-a-token",
        lambda d: mint(d, "bob", ACS_SCOPES)[:-4] + "AAAA",
    ],
    ids=["expired", "graph-audience", "one-scope-missing", "malformed", "bad-signature"],
)
def test_it_refuses_tokens_that_are_not_valid_teams_tokens(devcloud: DevCloud, token_of: object) -> None:
    token = token_of(devcloud)  # type: ignore[operator]
    with pytest.raises(HttpResponseError) as excinfo:
        acs_client(devcloud).get_token_for_teams_user(token, CONTOSO_APP, USERS["bob"][1])
    assert error_of(excinfo) == (401, "InvalidAccessToken", None)


def test_a_wrong_access_key_is_denied(devcloud: DevCloud, bob_acs_entra_token: str) -> None:
    wrong = devcloud.acs_connection_string().split("accesskey=")[0] + "accesskey=" + "A" * 43 + "="
    with pytest.raises(ClientAuthenticationError) as excinfo:
        acs_client(devcloud, wrong).get_token_for_teams_user(bob_acs_entra_token, CONTOSO_APP, USERS["bob"][1])
    assert error_of(excinfo) == (401, "Denied", None)  # type: ignore[arg-type]


def test_exchanges_are_limited_per_resource_with_retry_after(devcloud: DevCloud, bob_acs_entra_token: str) -> None:
    devcloud.control("PUT", "/settings", json={"acs_exchange_limit": 2})
    client = acs_client(devcloud)
    for _ in range(2):
        client.get_token_for_teams_user(bob_acs_entra_token, CONTOSO_APP, USERS["bob"][1])
    raw = devcloud.session()
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token_for_teams_user(bob_acs_entra_token, CONTOSO_APP, USERS["bob"][1], retry_total=0)
    assert excinfo.value.status_code == 429
    assert int(excinfo.value.response.headers["Retry-After"]) >= 1  # type: ignore[union-attr]
    # The other vendor's resource has its own budget.
    other = acs_client(devcloud, devcloud.acs_connection_string(1))
    assert other.get_token_for_teams_user(bob_acs_entra_token, CONTOSO_APP, USERS["bob"][1]).token
    raw.close()


def test_identities_are_created_issued_tokens_revoked_and_deleted(devcloud: DevCloud) -> None:
    client = acs_client(devcloud)
    user, token = client.create_user_and_token(
        scopes=[CommunicationTokenScope.VOIP], token_expires_in=dt.timedelta(hours=1)
    )
    assert user.properties["id"].startswith("8:acs:")
    assert jwt.decode(token.token, options={"verify_signature": False})["acsScope"] == "voip"
    assert client.get_token(user, scopes=[CommunicationTokenScope.CHAT]).token
    client.revoke_tokens(user)
    client.delete_user(user)
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(user, scopes=[CommunicationTokenScope.CHAT])
    assert excinfo.value.status_code == 404


def test_token_lifetime_outside_the_allowed_range_is_a_validation_error(devcloud: DevCloud) -> None:
    client = acs_client(devcloud)
    user = client.create_user()
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_token(user, scopes=[CommunicationTokenScope.CHAT], token_expires_in=dt.timedelta(minutes=30))
    assert error_of(excinfo) == (400, "ValidationError", "ExpiresInMinutes")
