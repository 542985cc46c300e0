from __future__ import annotations

from typing import Any

import jwt
import msal
import pytest

from tests.devcloud_server import CONTOSO_APP, CONTOSO_SECRET, DevCloud

REDIRECT_URI = "http://localhost:8000/accounts/microsoft/login/callback/"


def msal_app(
    devcloud: DevCloud,
    authority: str = "organizations",
    secret: str = CONTOSO_SECRET,
    client_id: str = CONTOSO_APP,
    cache: msal.SerializableTokenCache | None = None,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{devcloud.base_url}/{authority}",
        instance_discovery=False,
        http_client=devcloud.session(),
        token_cache=cache,
    )


@pytest.fixture
def contoso(devcloud: DevCloud) -> msal.ConfidentialClientApplication:
    return msal_app(devcloud)


def verify_signature(devcloud: DevCloud, token: str, audience: str) -> dict[str, Any]:
    """Check a token against the published JWKS, as a resource server would."""
    jwks = devcloud.http.get(f"{devcloud.base_url}/organizations/discovery/v2.0/keys", timeout=5).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=audience)
    assert claims["iss"] == f"{devcloud.base_url}/{claims['tid']}/v2.0"
    return claims
