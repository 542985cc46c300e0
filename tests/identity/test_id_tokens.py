"""Our ID-token checks against real devcloud tokens and forgeries of them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import msal
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from identity.id_tokens import InvalidIdToken, validate_id_token
from tests.devcloud.conftest import REDIRECT_URI, msal_app
from tests.devcloud_server import CONTOSO_APP, FABRIKAM, NORTHWIND, USERS, DevCloud, sign_in

ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def real(devcloud_settings: DevCloud) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A real ID token for bob, the nonce msal sent, its header and its claims."""
    devcloud_settings.grant_consent(FABRIKAM)
    app: msal.ConfidentialClientApplication = msal_app(devcloud_settings)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI)
    result = app.acquire_token_by_auth_code_flow(
        flow, sign_in(devcloud_settings, flow["auth_uri"], USERS["bob"][0]).params
    )
    token = result["id_token"]
    nonce = hashlib.sha256(flow["nonce"].encode()).hexdigest()
    return token, nonce, jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def forge(header: dict[str, Any], claims: dict[str, Any], *, key: Any = ATTACKER_KEY, alg: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={k: v for k, v in header.items() if k != "alg"})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_real_token_is_valid(real: tuple[str, str, dict[str, Any], dict[str, Any]]) -> None:
    token, nonce, _, _ = real
    claims = validate_id_token(token, client_id=CONTOSO_APP, nonce=nonce)
    assert (claims.tid, claims.oid) == (FABRIKAM, USERS["bob"][1])
    assert claims.preferred_username == USERS["bob"][0]


def test_a_bad_signature_is_refused(real: tuple[str, str, dict[str, Any], dict[str, Any]]) -> None:
    _, nonce, header, claims = real
    with pytest.raises(InvalidIdToken, match="bad signature"):
        validate_id_token(forge(header, claims), client_id=CONTOSO_APP, nonce=nonce)


def test_alg_none_is_refused(real: tuple[str, str, dict[str, Any], dict[str, Any]]) -> None:
    _, nonce, header, claims = real
    unsigned = f"{b64({**header, 'alg': 'none'})}.{b64(claims)}."
    with pytest.raises(InvalidIdToken, match="not RS256"):
        validate_id_token(unsigned, client_id=CONTOSO_APP, nonce=nonce)


def test_hs256_signed_with_the_public_key_is_refused(
    real: tuple[str, str, dict[str, Any], dict[str, Any]], devcloud_settings: DevCloud
) -> None:
    _, nonce, header, claims = real
    jwks = devcloud_settings.http.get(f"{devcloud_settings.base_url}/common/discovery/v2.0/keys").json()
    public = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"])).key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({**header, 'alg': 'HS256'})}.{b64(claims)}"
    signature = (
        base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    )
    with pytest.raises(InvalidIdToken, match="not RS256"):
        validate_id_token(f"{signing_input}.{signature}", client_id=CONTOSO_APP, nonce=nonce)


def test_an_unknown_kid_is_refused_after_one_refetch(
    real: tuple[str, str, dict[str, Any], dict[str, Any]], devcloud_settings: DevCloud
) -> None:
    _, nonce, header, claims = real
    forged = forge({**header, "kid": "attacker-kid"}, claims)
    before = len(devcloud_settings.requests(endpoint="entra.meta.jwks"))
    for _ in range(3):
        with pytest.raises(InvalidIdToken, match="unknown signing key"):
            validate_id_token(forged, client_id=CONTOSO_APP, nonce=nonce)
    # One fetch, one refetch for the unknown kid; not one per attempt.
    assert len(devcloud_settings.requests(endpoint="entra.meta.jwks")) - before == 2


def test_a_rotated_key_is_picked_up_by_the_refetch(
    devcloud_settings: DevCloud, real: tuple[str, str, dict[str, Any], dict[str, Any]]
) -> None:
    token, nonce, _, _ = real
    validate_id_token(token, client_id=CONTOSO_APP, nonce=nonce)  # caches the JWKS
    devcloud_settings.control("POST", "/keys/rotate")
    app = msal_app(devcloud_settings)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI)
    fresh = app.acquire_token_by_auth_code_flow(
        flow, sign_in(devcloud_settings, flow["auth_uri"], USERS["bob"][0]).params
    )
    nonce2 = hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert validate_id_token(fresh["id_token"], client_id=CONTOSO_APP, nonce=nonce2).oid == USERS["bob"][1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aud": "00000000-0000-0000-0000-000000000001"}, "wrong audience"),
        ({"tid": NORTHWIND}, "issuer does not match"),
        ({"iss": "https://login.example/" + FABRIKAM + "/v2.0"}, "issuer does not match"),
        # Times as offsets from when the test runs (not from when it was collected).
        ({"exp": -400, "nbf": -4000, "iat": -4000}, "expired"),
        ({"nbf": 600}, "not valid yet"),
        ({"nonce": "someone-elses-nonce"}, "nonce does not match"),
    ],
    ids=["aud", "tid-vs-iss", "iss", "expired", "not-yet-valid", "nonce"],
)
def test_forged_claims_are_refused(
    devcloud_settings: DevCloud,
    real: tuple[str, str, dict[str, Any], dict[str, Any]],
    change: dict[str, Any],
    message: str,
) -> None:
    """Signed with devcloud's own key, so that only the claim check can refuse them."""
    _, nonce, header, claims = real
    keys = json.loads((devcloud_settings.state_dir / "signing-keys.json").read_text())
    key = serialization.load_pem_private_key(keys[-1]["pem"].encode(), None)
    now = int(time.time())
    change = {k: now + v if k in ("exp", "nbf", "iat") else v for k, v in change.items()}
    with pytest.raises(InvalidIdToken, match=message):
        validate_id_token(forge(header, {**claims, **change}, key=key), client_id=CONTOSO_APP, nonce=nonce)


def test_five_minutes_of_clock_skew_are_tolerated(
    devcloud_settings: DevCloud, real: tuple[str, str, dict[str, Any], dict[str, Any]]
) -> None:
    _, nonce, header, claims = real
    keys = json.loads((devcloud_settings.state_dir / "signing-keys.json").read_text())
    key = serialization.load_pem_private_key(keys[-1]["pem"].encode(), None)
    skewed = {**claims, "exp": int(time.time()) - 200}
    assert validate_id_token(forge(header, skewed, key=key), client_id=CONTOSO_APP, nonce=nonce).oid == USERS["bob"][1]
