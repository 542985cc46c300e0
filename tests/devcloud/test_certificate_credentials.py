"""Certificate credentials (client assertions) and secrets at Entra's token endpoint, driven by msal."""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tests.devcloud.certificates import (
    JWT_BEARER,
    KeyPair,
    RecordingSession,
    assertion,
    certificate_app,
    client_credentials_form,
    make_key_pair,
    post_token,
    register,
    tailspin_generated,
    token_endpoint,
    with_certificate,
    with_thumbprint,
)
from tests.devcloud.conftest import REDIRECT_URI, msal_app, verify_signature
from tests.devcloud_server import (
    ACS_SCOPES,
    CONTOSO_APP,
    FABRIKAM,
    NORTHWIND,
    TAILSPIN_ACS_INDEX,
    TAILSPIN_ACS_KEY,
    TAILSPIN_APP,
    TAILSPIN_CERTIFICATE_FILE,
    TAILSPIN_DOMAIN,
    TAILSPIN_KEY_FILE,
    TAILSPIN_SECRET,
    TAILSPIN_TENANT,
    USERS,
    DevCloud,
    sign_in,
)

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
ACS_DEFAULT = "https://auth.msft.communication.azure.com/.default"


def _header(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_header(token))


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _refused(response: requests.Response, status: int, error: str, code: int) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == status, body
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= body.keys()
    return body


def _tailspin_assertion(devcloud: DevCloud, pair: KeyPair | None = None, **kwargs: Any) -> str:
    kwargs.setdefault("audience", token_endpoint(devcloud, TAILSPIN_TENANT))
    return assertion(pair or tailspin_generated(devcloud), client_id=TAILSPIN_APP, **kwargs)


def _tailspin_client_credentials(devcloud: DevCloud, client_assertion: str) -> requests.Response:
    return post_token(devcloud, TAILSPIN_TENANT, client_credentials_form(TAILSPIN_APP, client_assertion, GRAPH_DEFAULT))


# The seeded, generated certificate -----------------------------------------------------------
def test_the_generated_tailspin_certificate_is_written_once_and_registered(devcloud: DevCloud) -> None:
    state_dir = Path(devcloud.state_dir)
    key_file, cert_file = state_dir / TAILSPIN_KEY_FILE, state_dir / TAILSPIN_CERTIFICATE_FILE
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    pair = tailspin_generated(devcloud)
    listed = devcloud.control("GET", f"/apps/{TAILSPIN_APP}/credentials")
    [certificate] = listed["certificates"]
    assert certificate["thumbprint"] == pair.sha1
    assert certificate["thumbprint_sha256"] == pair.sha256
    assert certificate["files"] == [str(key_file), str(cert_file)]
    assert certificate["expired"] is False
    [secret] = listed["secrets"]
    assert secret["hint"] == TAILSPIN_SECRET[:3]
    assert TAILSPIN_SECRET not in str(listed)
    assert TAILSPIN_SECRET not in devcloud.session().get(f"{devcloud.base_url}/_devcloud/directory").text
    # A reset keeps the files: the certificate a person registered by hand stays valid.
    devcloud.reset()
    assert tailspin_generated(devcloud) == pair


def test_tailspin_has_its_own_tenant_users_and_acs_resource(devcloud: DevCloud) -> None:
    directory = devcloud.control("GET", "/directory")
    tenant = next(t for t in directory["tenants"] if t["id"] == TAILSPIN_TENANT)
    assert (tenant["display_name"], tenant["domain"]) == ("Tailspin Toys", TAILSPIN_DOMAIN)
    roles = {u["upn"]: u["roles"] for u in tenant["users"]}
    assert roles == {"admin@tailspin.example": ["Global Administrator"], "sam@tailspin.example": []}
    acs = directory["acs_resources"][TAILSPIN_ACS_INDEX]
    assert acs["vendor_app"] == TAILSPIN_APP
    assert acs["connection_string"].endswith(f"accesskey={TAILSPIN_ACS_KEY}")
    app = next(a for a in directory["apps"] if a["client_id"] == TAILSPIN_APP)
    assert app["home_tenant"] == TAILSPIN_TENANT


# msal's two forms of certificate credential --------------------------------------------------
def test_client_credentials_with_a_sha1_thumbprint_are_an_rs256_assertion_naming_x5t(devcloud: DevCloud) -> None:
    pair = tailspin_generated(devcloud)
    http = RecordingSession(devcloud)
    app = certificate_app(devcloud, TAILSPIN_APP, with_thumbprint(pair), authority=TAILSPIN_TENANT, http=http)
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in result, result
    claims = verify_signature(devcloud, result["access_token"], "https://graph.microsoft.com")
    assert (claims["appid"], claims["tid"], claims["idtyp"]) == (TAILSPIN_APP, TAILSPIN_TENANT, "app")
    [sent] = http.assertions()
    header = _header(sent)
    assert header["alg"] == "RS256"
    assert base64.urlsafe_b64decode(header["x5t"] + "==").hex().upper() == pair.sha1
    assert "x5t#S256" not in header
    sent_claims = _claims(sent)
    assert sent_claims["aud"] == token_endpoint(devcloud, TAILSPIN_TENANT)
    assert sent_claims["iss"] == sent_claims["sub"] == TAILSPIN_APP


def test_client_credentials_with_the_public_certificate_are_a_ps256_assertion_naming_x5t_s256(
    devcloud: DevCloud,
) -> None:
    pair = tailspin_generated(devcloud)
    http = RecordingSession(devcloud)
    app = certificate_app(devcloud, TAILSPIN_APP, with_certificate(pair), authority=TAILSPIN_DOMAIN, http=http)
    result = app.acquire_token_for_client([ACS_DEFAULT])
    assert "access_token" in result, result
    claims = verify_signature(devcloud, result["access_token"], "https://auth.msft.communication.azure.com")
    assert claims["tid"] == TAILSPIN_TENANT
    [sent] = http.assertions()
    header = _header(sent)
    assert header["alg"] == "PS256"
    assert base64.urlsafe_b64decode(header["x5t#S256"] + "==").hex().upper() == pair.sha256
    assert header["x5c"]


def test_a_users_auth_code_flow_and_refresh_authenticate_the_app_with_a_certificate(devcloud: DevCloud) -> None:
    http = RecordingSession(devcloud)
    app = certificate_app(devcloud, TAILSPIN_APP, with_certificate(tailspin_generated(devcloud)), http=http)
    flow = app.initiate_auth_code_flow(["User.Read", "Chat.ReadWrite"], redirect_uri=REDIRECT_URI)
    # Tailspin's own admin granted the app for the home tenant: its staff sign in without a consent page.
    params = sign_in(devcloud, flow["auth_uri"], USERS["sam"][0], consent=None).params
    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, result
    assert result["id_token_claims"]["oid"] == USERS["sam"][1]
    acs = app.acquire_token_silent(ACS_SCOPES, account=app.get_accounts()[0])
    assert acs is not None and "access_token" in acs, acs
    grants = [form["grant_type"] for form in http.forms]
    assert grants == ["authorization_code", "refresh_token"]
    # At /organizations the assertion is addressed to /organizations' token endpoint.
    assert {_claims(a)["aud"] for a in http.assertions()} == {token_endpoint(devcloud, "organizations")}


def test_an_uploaded_certificate_serves_in_a_customer_tenant_after_consent(devcloud: DevCloud) -> None:
    pair = make_key_pair("Contoso Teams Connect")
    listed = register(devcloud, CONTOSO_APP, pair)
    assert (listed["thumbprint"], listed["display_name"]) == (pair.sha1, "CN=Contoso Teams Connect")
    app = certificate_app(devcloud, CONTOSO_APP, with_thumbprint(pair), authority=FABRIKAM)
    assert app.acquire_token_for_client([GRAPH_DEFAULT])["error_codes"] == [700016]
    devcloud.grant_consent(FABRIKAM)
    assert "access_token" in certificate_app(
        devcloud, CONTOSO_APP, with_thumbprint(pair), authority=FABRIKAM
    ).acquire_token_for_client([GRAPH_DEFAULT])


# The audience: this tenant's token endpoint, by any of its names -----------------------------
def test_the_audience_may_name_the_tenant_by_its_verified_domain(devcloud: DevCloud) -> None:
    audience = token_endpoint(devcloud, TAILSPIN_DOMAIN).replace("v2.0", "V2.0")
    response = _tailspin_client_credentials(devcloud, _tailspin_assertion(devcloud, audience=audience))
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "audience",
    [
        "{base}/" + FABRIKAM + "/oauth2/v2.0/token",
        "{base}/organizations/oauth2/v2.0/token",
        "{base}/" + TAILSPIN_TENANT + "/oauth2/token",
        "{base}/" + TAILSPIN_TENANT + "/v2.0",
        "https://login.microsoftonline.com/" + TAILSPIN_TENANT + "/oauth2/v2.0/token",
    ],
)
def test_an_assertion_for_another_audience_is_refused_with_aadsts700023(devcloud: DevCloud, audience: str) -> None:
    client_assertion = _tailspin_assertion(devcloud, audience=audience.format(base=devcloud.base_url))
    _refused(_tailspin_client_credentials(devcloud, client_assertion), 401, "invalid_client", 700023)


def test_at_organizations_an_assertion_for_common_is_refused_with_aadsts700023(devcloud: DevCloud) -> None:
    client_assertion = _tailspin_assertion(devcloud, audience=token_endpoint(devcloud, "common"))
    form = {
        "grant_type": "refresh_token",
        "client_id": TAILSPIN_APP,
        "refresh_token": "x",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion,
    }
    _refused(post_token(devcloud, "organizations", form), 401, "invalid_client", 700023)


# Refusals, with Entra's codes ------------------------------------------------------------------
def test_a_malformed_assertion_is_refused_with_aadsts50027(devcloud: DevCloud) -> None:
    _refused(_tailspin_client_credentials(devcloud, "not-a-jwt"), 400, "invalid_request", 50027)


def test_a_wrong_client_assertion_type_is_refused_with_aadsts90011(devcloud: DevCloud) -> None:
    form = client_credentials_form(TAILSPIN_APP, _tailspin_assertion(devcloud), GRAPH_DEFAULT)
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    _refused(post_token(devcloud, TAILSPIN_TENANT, form), 400, "invalid_request", 90011)
    del form["client_assertion_type"]
    body = _refused(post_token(devcloud, TAILSPIN_TENANT, form), 400, "invalid_request", 900144)
    assert "'client_assertion_type'" in body["error_description"]


def test_an_issuer_that_is_not_the_client_id_is_refused_with_aadsts700021(devcloud: DevCloud) -> None:
    client_assertion = _tailspin_assertion(devcloud, iss=CONTOSO_APP, sub=CONTOSO_APP)
    _refused(_tailspin_client_credentials(devcloud, client_assertion), 401, "invalid_client", 700021)


def test_a_subject_other_than_the_issuer_is_refused_with_aadsts50048(devcloud: DevCloud) -> None:
    client_assertion = _tailspin_assertion(devcloud, sub=CONTOSO_APP)
    _refused(_tailspin_client_credentials(devcloud, client_assertion), 401, "invalid_client", 50048)


@pytest.mark.parametrize("claim", ["aud", "iss", "sub", "jti"])
def test_an_assertion_without_a_required_claim_is_refused_with_aadsts90014(devcloud: DevCloud, claim: str) -> None:
    client_assertion = _tailspin_assertion(devcloud, drop=(claim,))
    body = _refused(_tailspin_client_credentials(devcloud, client_assertion), 400, "invalid_request", 90014)
    assert f"'{claim}'" in body["error_description"]


def test_an_expired_assertion_is_refused_with_aadsts700024(devcloud: DevCloud) -> None:
    now = int(time.time())
    expired = _tailspin_assertion(devcloud, nbf=now - 1200, iat=now - 1200, exp=now - 600)
    body = _refused(_tailspin_client_credentials(devcloud, expired), 401, "invalid_client", 700024)
    assert "Client assertion is not within its valid time range." in body["error_description"]
    without_exp = _tailspin_assertion(devcloud, drop=("exp",))
    body = _refused(_tailspin_client_credentials(devcloud, without_exp), 401, "invalid_client", 700024)
    assert "expiry time of assertion 1970-01-01T00:00:00" in body["error_description"]


def test_an_assertion_not_yet_valid_is_refused_with_aadsts700024(devcloud: DevCloud) -> None:
    now = int(time.time())
    early = _tailspin_assertion(devcloud, nbf=now + 900, iat=now, exp=now + 1500)
    _refused(_tailspin_client_credentials(devcloud, early), 401, "invalid_client", 700024)


def test_clock_skew_of_a_few_minutes_is_tolerated_and_nbf_is_optional(devcloud: DevCloud) -> None:
    now = int(time.time())
    just_expired = _tailspin_assertion(devcloud, nbf=now - 600, iat=now - 600, exp=now - 60)
    assert _tailspin_client_credentials(devcloud, just_expired).status_code == 200
    slightly_early = _tailspin_assertion(devcloud, nbf=now + 60, exp=now + 600)
    assert _tailspin_client_credentials(devcloud, slightly_early).status_code == 200
    without_nbf = _tailspin_assertion(devcloud, drop=("nbf",))
    assert _tailspin_client_credentials(devcloud, without_nbf).status_code == 200


def test_a_replayed_assertion_is_accepted_as_entra_does(devcloud: DevCloud) -> None:
    """msal reuses one signed assertion for most of its life; Entra does not refuse a jti seen before."""
    client_assertion = _tailspin_assertion(devcloud)
    assert _tailspin_client_credentials(devcloud, client_assertion).status_code == 200
    assert _tailspin_client_credentials(devcloud, client_assertion).status_code == 200
    http = RecordingSession(devcloud)
    app = certificate_app(
        devcloud, TAILSPIN_APP, with_certificate(tailspin_generated(devcloud)), authority=TAILSPIN_TENANT, http=http
    )
    assert "access_token" in app.acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in app.acquire_token_for_client([ACS_DEFAULT])
    first, second = http.assertions()
    assert first == second


def test_a_thumbprint_of_no_registered_certificate_is_refused_with_aadsts700027(devcloud: DevCloud) -> None:
    stranger = make_key_pair("Someone else")
    app = certificate_app(devcloud, TAILSPIN_APP, with_thumbprint(stranger), authority=TAILSPIN_TENANT)
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert "The key was not found." in result["error_description"]
    assert stranger.sha1 in result["error_description"]


def test_an_assertion_without_a_thumbprint_is_refused_with_aadsts5002723(devcloud: DevCloud) -> None:
    client_assertion = _tailspin_assertion(devcloud, headers={})
    _refused(_tailspin_client_credentials(devcloud, client_assertion), 401, "invalid_client", 5002723)


def test_an_unsupported_algorithm_is_refused_with_aadsts5002738(devcloud: DevCloud) -> None:
    client_assertion = _tailspin_assertion(devcloud, algorithm="HS256", signing_key="a-shared-secret-" * 4)
    body = _refused(_tailspin_client_credentials(devcloud, client_assertion), 401, "invalid_client", 5002738)
    assert "'HS256' is not a supported signature algorithm" in body["error_description"]


def test_a_bad_signature_is_refused_with_aadsts700027(devcloud: DevCloud) -> None:
    # The header names Tailspin's registered certificate; another key signed it.
    forged = _tailspin_assertion(devcloud, signing_key=make_key_pair().key_pem)
    body = _refused(_tailspin_client_credentials(devcloud, forged), 401, "invalid_client", 700027)
    assert "The provided signature value did not match the expected signature value." in body["error_description"]


def test_an_expired_certificate_is_refused_with_aadsts700027(devcloud: DevCloud) -> None:
    expired = make_key_pair(valid_from_days=-400, days=-1)
    listed = register(devcloud, TAILSPIN_APP, expired)  # Entra lets a credential expire after upload
    assert listed["expired"] is True
    app = certificate_app(devcloud, TAILSPIN_APP, with_certificate(expired), authority=TAILSPIN_TENANT)
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error_codes"] == [700027]
    assert "The key used is expired." in result["error_description"]


def test_a_certificate_not_yet_valid_is_refused_with_aadsts700027(devcloud: DevCloud) -> None:
    future = make_key_pair(valid_from_days=2, days=400)
    register(devcloud, TAILSPIN_APP, future)
    app = certificate_app(devcloud, TAILSPIN_APP, with_thumbprint(future), authority=TAILSPIN_TENANT)
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error_codes"] == [700027]
    assert "not yet valid" in result["error_description"]


def test_a_secret_and_an_assertion_together_are_refused_with_aadsts9002313(devcloud: DevCloud) -> None:
    form = client_credentials_form(TAILSPIN_APP, _tailspin_assertion(devcloud), GRAPH_DEFAULT)
    form["client_secret"] = TAILSPIN_SECRET
    _refused(post_token(devcloud, TAILSPIN_TENANT, form), 400, "invalid_request", 9002313)


def test_neither_a_secret_nor_an_assertion_is_refused_with_aadsts7000216_or_7000218(devcloud: DevCloud) -> None:
    form = {"grant_type": "client_credentials", "client_id": TAILSPIN_APP, "scope": GRAPH_DEFAULT}
    _refused(post_token(devcloud, TAILSPIN_TENANT, form), 401, "invalid_client", 7000216)
    form = {"grant_type": "refresh_token", "client_id": TAILSPIN_APP, "refresh_token": "x"}
    _refused(post_token(devcloud, "organizations", form), 401, "invalid_client", 7000218)
    form = {"grant_type": "authorization_code", "client_id": TAILSPIN_APP, "code": "x", "redirect_uri": REDIRECT_URI}
    _refused(post_token(devcloud, "organizations", form), 401, "invalid_client", 7000218)


# Rotation: several secrets and certificates at once -------------------------------------------
def test_a_second_secret_works_alongside_the_first_until_the_first_is_removed(devcloud: DevCloud) -> None:
    added = devcloud.control("POST", f"/apps/{TAILSPIN_APP}/secrets", json={"display_name": "2025 rotation"})
    new_secret = added["secret_text"]
    assert added["hint"] == new_secret[:3] and added["end_date_time"]
    old = msal_app(devcloud, authority=TAILSPIN_TENANT, secret=TAILSPIN_SECRET, client_id=TAILSPIN_APP)
    new = msal_app(devcloud, authority=TAILSPIN_TENANT, secret=new_secret, client_id=TAILSPIN_APP)
    assert "access_token" in old.acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in new.acquire_token_for_client([GRAPH_DEFAULT])
    listed = devcloud.control("GET", f"/apps/{TAILSPIN_APP}/credentials")
    assert new_secret not in str(listed)
    seeded = next(s for s in listed["secrets"] if s["key_id"] != added["key_id"])
    remaining = devcloud.control("DELETE", f"/apps/{TAILSPIN_APP}/secrets/{seeded['key_id']}")
    assert [s["key_id"] for s in remaining["secrets"]] == [added["key_id"]]
    again = msal_app(devcloud, authority=TAILSPIN_TENANT, secret=TAILSPIN_SECRET, client_id=TAILSPIN_APP)
    assert again.acquire_token_for_client([GRAPH_DEFAULT])["error_codes"] == [7000215]
    fresh = msal_app(devcloud, authority=TAILSPIN_TENANT, secret=new_secret, client_id=TAILSPIN_APP)
    assert "access_token" in fresh.acquire_token_for_client([GRAPH_DEFAULT])


def test_a_second_certificate_works_alongside_the_first_until_the_first_is_removed(devcloud: DevCloud) -> None:
    old_pair, new_pair = tailspin_generated(devcloud), make_key_pair("Tailspin Teams 2026")
    register(devcloud, TAILSPIN_APP, new_pair)
    for pair in (old_pair, new_pair):
        app = certificate_app(devcloud, TAILSPIN_APP, with_certificate(pair), authority=TAILSPIN_TENANT)
        assert "access_token" in app.acquire_token_for_client([GRAPH_DEFAULT])
    remaining = devcloud.control("DELETE", f"/apps/{TAILSPIN_APP}/certificates/{old_pair.sha1.lower()}")
    assert remaining["removed"] == old_pair.sha1
    assert [c["thumbprint"] for c in remaining["certificates"]] == [new_pair.sha1]
    old = certificate_app(devcloud, TAILSPIN_APP, with_thumbprint(old_pair), authority=TAILSPIN_TENANT)
    refused = old.acquire_token_for_client([GRAPH_DEFAULT])
    assert refused["error_codes"] == [700027] and "The key was not found." in refused["error_description"]
    new = certificate_app(devcloud, TAILSPIN_APP, with_thumbprint(new_pair), authority=TAILSPIN_TENANT)
    assert "access_token" in new.acquire_token_for_client([GRAPH_DEFAULT])
    # A reset brings back the seeded credentials only.
    devcloud.reset()
    listed = devcloud.control("GET", f"/apps/{TAILSPIN_APP}/credentials")
    assert [c["thumbprint"] for c in listed["certificates"]] == [old_pair.sha1]


def test_an_expired_secret_is_refused_with_aadsts7000222(devcloud: DevCloud) -> None:
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    added = devcloud.control("POST", f"/apps/{TAILSPIN_APP}/secrets", json={"end_date_time": yesterday})
    assert added["expired"] is True
    app = msal_app(devcloud, authority=TAILSPIN_TENANT, secret=added["secret_text"], client_id=TAILSPIN_APP)
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000222]
    assert f"for app '{TAILSPIN_APP}' are expired" in result["error_description"]


def test_the_credentials_control_api_refuses_what_the_admin_center_would(devcloud: DevCloud) -> None:
    base = f"{devcloud.base_url}/_devcloud/apps"
    http = devcloud.session()
    assert http.get(f"{base}/{NORTHWIND}/credentials").status_code == 404
    not_pem = http.post(f"{base}/{TAILSPIN_APP}/certificates", json={"certificate": "-----BEGIN NOTHING-----"})
    assert not_pem.status_code == 400
    pair = tailspin_generated(devcloud)
    twice = http.post(f"{base}/{TAILSPIN_APP}/certificates", json={"certificate": pair.certificate_pem})
    assert twice.status_code == 409
    assert http.delete(f"{base}/{TAILSPIN_APP}/certificates/{'0' * 40}").status_code == 404
    assert http.delete(f"{base}/{TAILSPIN_APP}/secrets/{CONTOSO_APP}").status_code == 404
    bad_date = http.post(f"{base}/{TAILSPIN_APP}/secrets", json={"end_date_time": "next week"})
    assert bad_date.status_code == 400


def test_credentials_and_the_generated_certificate_survive_a_restart(tmp_path: Path) -> None:
    first = DevCloud.start(tmp_path)
    try:
        pair = tailspin_generated(first)
        secret = first.control("POST", f"/apps/{TAILSPIN_APP}/secrets", json={})["secret_text"]
    finally:
        first.stop()
    second = DevCloud.start(tmp_path)
    try:
        assert tailspin_generated(second) == pair
        app = msal_app(second, authority=TAILSPIN_TENANT, secret=secret, client_id=TAILSPIN_APP)
        assert "access_token" in app.acquire_token_for_client([GRAPH_DEFAULT])
        by_certificate = certificate_app(second, TAILSPIN_APP, with_certificate(pair), authority=TAILSPIN_TENANT)
        assert "access_token" in by_certificate.acquire_token_for_client([GRAPH_DEFAULT])
    finally:
        second.stop()
    assert os.stat(tmp_path / TAILSPIN_KEY_FILE).st_mode & 0o077 == 0
