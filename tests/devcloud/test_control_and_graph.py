"""devcloud's control API (faults, request log) and the Graph user endpoints."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import time

import msal
import pytest
import requests
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncIdentityClient

from tests.devcloud.conftest import msal_app
from tests.devcloud.test_acs_identity import mint
from tests.devcloud.test_entra_msal import auth_code_flow
from tests.devcloud_server import ACS_SCOPES, CONTOSO_APP, FABRIKAM, USERS, DevCloud

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


def test_an_injected_429_reaches_the_client_with_retry_after(devcloud: DevCloud) -> None:
    devcloud.grant_consent(FABRIKAM)
    devcloud.control(
        "POST", "/faults", json={"service": "entra", "path": "/", "status": 429, "retry_after": 7, "count": 1}
    )
    response = devcloud.session().post(
        f"{devcloud.base_url}/{FABRIKAM}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CONTOSO_APP,
            "scope": GRAPH_DEFAULT,
            "client_secret": "x",
        },
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error"] == "temporarily_unavailable"
    # The fault was for one request only.
    assert "access_token" in msal_app(devcloud, authority=FABRIKAM).acquire_token_for_client([GRAPH_DEFAULT])
    assert [r["status"] for r in devcloud.requests(service="entra", endpoint="fault")] == [429]


def test_faults_apply_to_their_service_only_and_can_be_cleared(devcloud: DevCloud) -> None:
    devcloud.control("POST", "/faults", json={"service": "graph", "status": 503})
    token = mint(devcloud, "bob", ["https://graph.microsoft.com/User.Read"])
    me = devcloud.session().get(f"{devcloud.base_url}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 503
    assert me.json()["error"]["code"] == "serviceNotAvailable"
    discovery = devcloud.session().get(f"{devcloud.base_url}/organizations/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 200
    devcloud.control("DELETE", "/faults")
    me = devcloud.session().get(f"{devcloud.base_url}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200


def test_latency_is_injected(devcloud: DevCloud) -> None:
    devcloud.control("POST", "/faults", json={"service": "entra", "latency_ms": 300, "count": 1})
    started = time.monotonic()
    devcloud.session().get(f"{devcloud.base_url}/organizations/discovery/v2.0/keys")
    assert time.monotonic() - started >= 0.3


def test_a_fault_without_effect_is_refused(devcloud: DevCloud) -> None:
    with pytest.raises(requests.HTTPError):
        devcloud.control("POST", "/faults", json={"service": "entra"})
    with pytest.raises(requests.HTTPError):
        devcloud.control("POST", "/faults", json={"service": "mars", "status": 500})


def test_counters_count_requests_per_endpoint(devcloud: DevCloud, contoso: msal.ConfidentialClientApplication) -> None:
    devcloud.grant_consent(FABRIKAM)
    auth_code_flow(devcloud, contoso, "bob")
    counters = devcloud.control("GET", "/counters")
    assert counters["entra.token.token"] == 1
    assert counters["entra.authorize.authorize"] == 1
    grant_types = [r["grant_type"] for r in devcloud.requests(endpoint="entra.token.token")]
    assert grant_types == ["authorization_code"]


def test_graph_me_answers_with_the_users_profile(devcloud: DevCloud) -> None:
    token = mint(devcloud, "bob", ["https://graph.microsoft.com/User.Read"])
    body = (
        devcloud.session()
        .get(
            f"{devcloud.base_url}/v1.0/me",
            params={"$select": "id,displayName"},
            headers={"Authorization": f"Bearer {token}"},
        )
        .json()
    )
    assert body["id"] == USERS["bob"][1]
    assert body["displayName"] == "Bob Baker"
    assert set(body) == {"@odata.context", "id", "displayName"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer garbage", "IDX14100"),
        ("acs", "Invalid audience"),
        ("expired", "the token is expired"),
    ],
)
def test_graph_refuses_bad_tokens_in_graphs_shape(devcloud: DevCloud, header: str | None, message: str) -> None:
    if header == "acs":
        header = "Bearer " + mint(devcloud, "bob", ACS_SCOPES)
    elif header == "expired":
        header = "Bearer " + mint(devcloud, "bob", ["https://graph.microsoft.com/User.Read"], shift_seconds=-10_000)
    response = devcloud.session().get(
        f"{devcloud.base_url}/v1.0/me", headers={"Authorization": header} if header else {}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert message in error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_graph_users_needs_a_directory_scope_and_stays_in_the_tenant(devcloud: DevCloud) -> None:
    session = devcloud.session()
    basic = {"Authorization": "Bearer " + mint(devcloud, "bob", ["https://graph.microsoft.com/User.Read"])}
    assert session.get(f"{devcloud.base_url}/v1.0/users/{USERS['bob'][1]}", headers=basic).status_code == 200
    assert session.get(f"{devcloud.base_url}/v1.0/users/{USERS['alice'][1]}", headers=basic).status_code == 403
    directory = {"Authorization": "Bearer " + mint(devcloud, "bob", ["https://graph.microsoft.com/User.ReadBasic.All"])}
    assert session.get(f"{devcloud.base_url}/v1.0/users/{USERS['alice'][0]}", headers=directory).status_code == 200
    other_tenant = session.get(f"{devcloud.base_url}/v1.0/users/{USERS['charlie'][1]}", headers=directory)
    assert other_tenant.status_code == 404
    assert other_tenant.json()["error"]["code"] == "Request_ResourceNotFound"


def signed_exchange(devcloud: DevCloud, body: dict[str, str], date: dt.datetime) -> requests.Response:
    conn = dict(p.split("=", 1) for p in devcloud.acs_connection_string().split(";") if p)
    host = conn["endpoint"].split("//", 1)[1].rstrip("/")
    raw = json.dumps(body).encode()
    content_hash = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    path = "/teamsUser/:exchangeAccessToken?api-version=2023-10-01"
    x_ms_date = email.utils.format_datetime(date, usegmt=True)
    text = f"POST\n{path}\n{x_ms_date};{host};{content_hash}"
    signature = base64.b64encode(
        hmac.new(base64.b64decode(conn["accesskey"]), text.encode(), hashlib.sha256).digest()
    ).decode()
    headers = {
        "x-ms-date": x_ms_date,
        "x-ms-content-sha256": content_hash,
        "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
        "Content-Type": "application/json",
    }
    return devcloud.session().post(f"https://{host}{path}", data=raw, headers=headers)


def test_acs_refuses_a_request_signed_more_than_five_minutes_ago(devcloud: DevCloud) -> None:
    body = {"token": mint(devcloud, "bob", ACS_SCOPES), "appId": CONTOSO_APP, "userId": USERS["bob"][1]}
    now = dt.datetime.now(dt.UTC)
    assert signed_exchange(devcloud, body, now).status_code == 200
    stale = signed_exchange(devcloud, body, now - dt.timedelta(minutes=6))
    assert stale.status_code == 401
    assert stale.json()["error"]["code"] == "Denied"


def test_both_clients_sign_paths_with_colons_and_are_accepted(devcloud: DevCloud) -> None:
    """The sync client signs `8%3Aacs%3A…` as sent, the async one the unquoted `8:acs:…`."""
    conn = devcloud.acs_connection_string()
    sync_client = CommunicationIdentityClient.from_connection_string(conn, connection_verify=devcloud.ca)
    user = sync_client.create_user()
    assert ":" in user.properties["id"]
    assert sync_client.get_token(user, scopes=[CommunicationTokenScope.CHAT]).token

    async def issue() -> str:
        async with AsyncIdentityClient.from_connection_string(conn, connection_verify=devcloud.ca) as client:
            result = await client.get_token(user, scopes=[CommunicationTokenScope.CHAT])
        return str(result.token)

    assert asyncio.run(issue()).count(".") == 2
