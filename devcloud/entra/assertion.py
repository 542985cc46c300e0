"""Certificate credentials: the client assertion (`private_key_jwt`) checked as Entra checks it.

MSAL signs the assertion with the app's private key: RS256 naming the certificate by its SHA-1
thumbprint (`x5t`), or PS256 naming it by its SHA-256 thumbprint (`x5t#S256`, with `x5c`). The
claims are `aud` (the token endpoint), `iss` = `sub` = the client id, `jti`, `exp`, `iat` and,
from some libraries, `nbf`.

What Entra does not check, devcloud does not either:
- a `jti` seen before: MSAL reuses one signed assertion for every request during most of its
  ten-minute life (msal's AutoRefresher, MSAL.NET and msal-node cache it too), and Entra accepts it;
- a missing `nbf`: Entra reports such an assertion as "valid from 1970-01-01".
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import jwt

from devcloud.credentials import AppCredentials, Certificate
from devcloud.directory import App, Tenant
from devcloud.entra import errors
from devcloud.entra.authorize import resolve_authority
from devcloud.state import State

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Entra's tolerance for clocks that differ: not documented; five minutes is the default of
# Microsoft.IdentityModel's token validation, which Entra's own checks most plausibly share.
CLOCK_SKEW = dt.timedelta(minutes=5)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256")
REQUIRED_CLAIMS = ("aud", "iss", "sub", "jti")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _b64url_hex(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex().upper()
    except (binascii.Error, ValueError):
        return None


def _parts(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise errors.malformed_assertion() from None
    if not isinstance(claims, dict):
        raise errors.malformed_assertion()
    return header, claims


def _moment(claims: dict[str, Any], name: str) -> dt.datetime:
    """`nbf` / `exp` as a time; an absent one counts as the epoch, as Entra reports it."""
    value = claims.get(name)
    if value is None:
        return EPOCH
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.malformed_assertion()
    return dt.datetime.fromtimestamp(value, dt.UTC)


def audience_matches(state: State, audience: Any, *, authority: Tenant | str, origins: set[str]) -> bool:
    """`aud` is this tenant's token endpoint: named by tenant id or verified domain for a tenant,
    by the same alias (`organizations`, `common`) for an alias; `v2.0` in any case, as in Entra's
    own example (`…/contoso.onmicrosoft.com/oauth2/V2.0/token`)."""
    if not isinstance(audience, str):
        return False
    parts = urlsplit(audience)
    if f"{parts.scheme}://{parts.netloc}".lower() not in origins or parts.query or parts.fragment:
        return False
    segments = parts.path.split("/")
    if len(segments) != 5 or segments[0] or [s.lower() for s in segments[2:]] != ["oauth2", "v2.0", "token"]:
        return False
    named = resolve_authority(state, segments[1])
    if isinstance(authority, Tenant):
        return isinstance(named, Tenant) and named.id == authority.id
    return named == authority


def _certificate(held: AppCredentials, header: dict[str, Any]) -> tuple[Certificate | None, str]:
    """The registered certificate the header names, and the thumbprint as the error shows it."""
    sha256 = _b64url_hex(header.get("x5t#S256"))
    sha1 = _b64url_hex(header.get("x5t"))
    if sha256 is None and sha1 is None:
        raise errors.assertion_without_thumbprint()
    found = (held.certificate(sha256=sha256) if sha256 else None) or (held.certificate(sha1=sha1) if sha1 else None)
    return found, sha1 or sha256 or ""


def verify(
    state: State,
    app: App,
    assertion: str,
    *,
    authority: Tenant | str,
    origins: set[str],
    now: dt.datetime | None = None,
) -> Certificate:
    """The certificate that signed a valid assertion for `app`; an EntraError otherwise."""
    now = now or dt.datetime.now(dt.UTC)
    header, claims = _parts(assertion)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise errors.assertion_algorithm(str(alg), ",".join(ALGORITHMS))
    certificate, thumbprint = _certificate(state.credentials[app.client_id], header)
    for name in REQUIRED_CLAIMS:
        if claims.get(name) in (None, ""):
            raise errors.assertion_claim_missing(name)
    if claims["iss"] != app.client_id:
        raise errors.assertion_other_client()
    if claims["sub"] != claims["iss"]:
        raise errors.assertion_subject_mismatch()
    if isinstance(claims["aud"], list):
        # A list of audiences is refused as malformed (seen with openid-client's issuer + endpoint).
        raise errors.malformed_assertion()
    if not audience_matches(state, claims["aud"], authority=authority, origins=origins):
        raise errors.assertion_audience()
    valid_from, expires = _moment(claims, "nbf"), _moment(claims, "exp")
    if now < valid_from - CLOCK_SKEW or now >= expires + CLOCK_SKEW:
        raise errors.assertion_time_range(now, valid_from, expires)
    if certificate is None:
        raise errors.assertion_key_not_found(thumbprint, app.client_id)
    _check_key(certificate, assertion, str(alg), thumbprint, app, now)
    return certificate


def _check_key(certificate: Certificate, assertion: str, alg: str, thumbprint: str, app: App, now: dt.datetime) -> None:
    def refused(reason: str) -> errors.EntraError:
        return errors.assertion_invalid_signature(reason, thumbprint, certificate.start, certificate.end, app.client_id)

    # The key's validity is the certificate's, as uploaded; Entra keeps an expired key and refuses it.
    if now >= certificate.end:
        raise refused("The key used is expired.")
    if now < certificate.start:
        # Wording not confirmed; Entra's code for a key that is not valid yet is the same 700027.
        raise refused("The key used is not yet valid.")
    try:
        jwt.decode(
            assertion,
            certificate.public_key,
            algorithms=[alg],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise refused("The provided signature value did not match the expected signature value.") from None
    except jwt.PyJWTError:
        raise errors.malformed_assertion() from None
