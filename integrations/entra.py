"""Entra ID through msal: sign-in (auth code + PKCE + nonce), client credentials, admin consent URL.

Returns our dataclasses and raises our exceptions; knows nothing of the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msal
import requests
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from integrations.http import microsoft_session

# Scopes name Microsoft's resource identifiers, whatever host serves them.
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
# Error codes (AADSTS) that mean the app's consent is gone in the tenant.
CONSENT_REVOKED_CODES = frozenset({65001, 700016})
# Errors that Entra may answer differently if asked again later.
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "unreachable"})


class CertificateInvalid(ValueError):
    """The certificate or its private key can't serve as the app's credential; says why."""


@dataclass(frozen=True)
class Certificate:
    """An app's certificate credential: its private key and the certificate uploaded to Entra (PEM)."""

    private_key: str = field(repr=False)
    certificate: str
    thumbprint: str  # SHA-1, hex, as the Entra admin center shows it
    not_before: dt.datetime
    not_after: dt.datetime


@sensitive_variables("private_key", "key")
def certificate_from_pem(*, private_key: str, certificate: str) -> Certificate:
    """The credential, checked: both parse, the key is the certificate's; CertificateInvalid otherwise."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateInvalid("The certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----).") from None
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except TypeError:
        raise CertificateInvalid("The private key is protected by a passphrase: export it without one.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateInvalid("The private key is not a PEM private key (-----BEGIN PRIVATE KEY-----).") from None
    try:
        public = cert.public_key()
    except UnsupportedAlgorithm:
        public = None
    if not isinstance(key, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
        raise CertificateInvalid("Entra signs app assertions with RSA keys: use an RSA certificate and key.")
    if key.public_key().public_numbers() != public.public_numbers():
        raise CertificateInvalid("The private key does not belong to this certificate.")
    return Certificate(
        private_key=private_key,
        certificate=certificate,
        thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Entra's identifier
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


@dataclass(frozen=True)
class EntraApp:
    """A vendor's multitenant app registration, with its credential: a client secret or a certificate."""

    client_id: str
    client_secret: str = field(default="", repr=False)
    certificate: Certificate | None = field(default=None, repr=False)

    @property
    def login_url(self) -> str:
        return str(settings.ENTRA_LOGIN_URL)

    @property
    def credential(self) -> str | dict[str, str]:
        """msal's `client_credential`: with a certificate, msal signs a PS256 client assertion whose
        header names the certificate by its SHA-256 thumbprint (`x5t#S256`)."""
        if self.certificate is not None:
            return {"private_key": self.certificate.private_key, "public_certificate": self.certificate.certificate}
        return self.client_secret


class EntraError(Exception):
    """Entra refused; `codes` are its AADSTS numbers (never contains a token)."""

    def __init__(self, error: str, codes: list[int]) -> None:
        super().__init__(f"{error} {codes}")
        self.error = error
        self.codes = codes

    @property
    def consent_revoked(self) -> bool:
        return bool(CONSENT_REVOKED_CODES.intersection(self.codes))

    @property
    def transient(self) -> bool:
        return self.error in TRANSIENT_ERRORS and not self.consent_revoked


def error_from(result: dict[str, Any]) -> EntraError:
    """The one place where an msal error payload becomes our exception."""
    return EntraError(
        str(result.get("error", "unknown_error")),
        [int(c) for c in result.get("error_codes", [])],
    )


def client(
    app: EntraApp, *, authority: str = "organizations", cache: msal.TokenCache | None = None
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.credential,
        authority=f"{app.login_url}/{authority}",
        instance_discovery=False,
        http_client=microsoft_session(),
        token_cache=cache,
    )


def start_sign_in(
    app: EntraApp, *, redirect_uri: str, scopes: list[str], login_hint: str | None = None
) -> dict[str, Any]:
    """An auth code flow (state, nonce, PKCE) to keep in the session; `auth_uri` is where to go."""
    flow: dict[str, Any] = client(app).initiate_auth_code_flow(
        scopes, redirect_uri=redirect_uri, prompt="select_account", login_hint=login_hint
    )
    return flow


@dataclass(frozen=True)
class IdTokenClaims:
    """Who signed in, from an ID token that identity.id_tokens validated: `(tid, oid)` identify."""

    tid: str
    oid: str
    name: str
    preferred_username: str
    wids: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class SignInResult:
    id_token: str = field(repr=False)
    nonce: str
    cache: str = field(repr=False)


def finish_sign_in(app: EntraApp, *, flow: dict[str, Any], params: dict[str, str]) -> SignInResult:
    """Redeem the code; the ID token is returned unvalidated (identity.id_tokens validates it)."""
    cache = msal.SerializableTokenCache()
    try:
        result = client(app, cache=cache).acquire_token_by_auth_code_flow(flow, params)
    except ValueError:
        # msal raises when `state` does not match the flow: a forged or replayed callback.
        raise EntraError("state_mismatch", []) from None
    if "error" in result:
        raise error_from(result)
    return SignInResult(id_token=result["id_token"], nonce=_sent_nonce(flow), cache=cache.serialize())


def _sent_nonce(flow: dict[str, Any]) -> str:
    # msal sends the SHA-256 (hex) of the flow's nonce; the ID token must echo that value.
    return hashlib.sha256(str(flow["nonce"]).encode()).hexdigest()


def confirm_app_in_tenant(app: EntraApp, tid: str) -> None:
    """A client-credentials token for `tid` proves the app is consented there; raises otherwise."""
    result = client(app, authority=tid).acquire_token_for_client([GRAPH_DEFAULT])
    if "access_token" not in result:
        raise error_from(result)


def confirm_scopes_consented(app: EntraApp, *, cache: str, scopes: list[str]) -> None:
    """Silently get a token for each resource of `scopes` with the signed-in admin's refresh token.

    Succeeds only where those delegated scopes are consented in the tenant, so a consent
    callback that Entra did not really send activates nothing. Raises EntraError otherwise.
    """
    token_cache = msal.SerializableTokenCache()
    token_cache.deserialize(cache)
    msal_app = client(app, cache=token_cache)
    accounts = msal_app.get_accounts()
    if not accounts:
        raise EntraError("no_account", [])
    for resource_scopes in by_resource(scopes):
        result = msal_app.acquire_token_silent_with_error(resource_scopes, account=accounts[0], force_refresh=True)
        if not result or "access_token" not in result:
            raise error_from(result or {"error": "no_token"})


def by_resource(scopes: list[str]) -> list[list[str]]:
    """Scopes grouped per resource (one token request serves one resource); OIDC scopes dropped."""
    groups: dict[str, list[str]] = {}
    for scope in scopes:
        resource, _, name = scope.rpartition("/")
        if name.lower() in ("offline_access", "openid", "profile", "email"):
            continue
        groups.setdefault(resource or "https://graph.microsoft.com", []).append(scope)
    return list(groups.values())


def admin_consent_url(app: EntraApp, *, tenant: str, redirect_uri: str, scopes: list[str], state: str) -> str:
    query = urlencode(
        {"client_id": app.client_id, "scope": " ".join(scopes), "redirect_uri": redirect_uri, "state": state}
    )
    return f"{app.login_url}/{tenant}/v2.0/adminconsent?{query}"


def tenant_id(tenant: str) -> str:
    """The tenant id of a tenant named by id or verified domain, from its OpenID metadata (the
    issuer names it); EntraError when Entra knows no such tenant (AADSTS90002)."""
    url = f"{settings.ENTRA_LOGIN_URL}/{quote(tenant, safe='')}/v2.0/.well-known/openid-configuration"
    try:
        response = microsoft_session().get(url)
    except requests.RequestException:
        raise EntraError("unreachable", []) from None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise EntraError("unreachable", []) from None
    if response.status_code != 200:
        raise error_from(body)
    issuer = urlsplit(str(body.get("issuer", ""))).path.strip("/").split("/")
    return issuer[0].lower()


def jwks() -> dict[str, Any]:
    """Entra's signing keys (the same for every tenant)."""
    url = f"{settings.ENTRA_LOGIN_URL}/common/discovery/v2.0/keys"
    response = microsoft_session().get(url)
    response.raise_for_status()
    keys: dict[str, Any] = response.json()
    return keys


@dataclass(frozen=True)
class UserToken:
    """An access token of a signed-in user; `cache` is the serialized cache when msal changed it."""

    access_token: str = field(repr=False)
    expires_at: dt.datetime
    cache: str | None = field(repr=False)


@sensitive_variables("cache", "token_cache", "result")
def acquire_user_token(
    app: EntraApp, *, cache: str, tid: str, oid: str, scopes: list[str], min_valid_seconds: int
) -> UserToken:
    """A token for one resource from the user's cache, refreshed when it is valid for less than asked.

    Raises EntraError: `consent_revoked`, `transient`, or else the user must sign in again.
    """
    token_cache = msal.SerializableTokenCache()
    if cache:
        token_cache.deserialize(cache)
    try:
        # The sign-in's authority: msal files cached tokens under the authority that issued them.
        msal_app = client(app, cache=token_cache)
        # client_info makes the home account `{oid}.{tid}`: the user of our records, nobody else.
        account = next((a for a in msal_app.get_accounts() if a.get("home_account_id") == f"{oid}.{tid}"), None)
        if account is None:
            raise EntraError("no_account", [])
        result = msal_app.acquire_token_silent_with_error(scopes, account=account)
        if result and "access_token" in result and int(result.get("expires_in", 0)) < min_valid_seconds:
            result = msal_app.acquire_token_silent_with_error(scopes, account=account, force_refresh=True)
    except (requests.RequestException, ValueError, msal.exceptions.MsalServiceError):
        # No answer, one that is not JSON (a gateway's error page), or a 5xx that msal raises.
        raise EntraError("unreachable", []) from None
    if not result:
        raise EntraError("no_refresh_token", [])
    if "access_token" not in result:
        raise error_from(result)
    return UserToken(
        access_token=result["access_token"],
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(result["expires_in"])),
        cache=token_cache.serialize() if token_cache.has_state_changed else None,
    )
