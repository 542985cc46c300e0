"""Validation of Entra ID tokens: our own checks, never msal's decoding.

RS256 only, signature against Entra's JWKS (refetched once on an unknown `kid`, at most once a
minute), `iss` equal to the issuer of the token's own `tid`, `aud` the vendor's client id, the
`nonce` we sent, `exp`/`nbf` within 5 minutes of skew.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache

from integrations import entra
from integrations.entra import IdTokenClaims

SKEW_SECONDS = 300
JWKS_TTL = 24 * 3600


def _cache_key(name: str) -> str:
    return f"entra:{name}:{settings.ENTRA_LOGIN_URL}"


class InvalidIdToken(Exception):
    """The reason is safe to log and to show an admin; it never contains the token."""


def _signing_keys(*, refresh: bool) -> dict[str, Any]:
    keys: dict[str, Any] | None = None if refresh else cache.get(_cache_key("jwks"))
    if keys is None:
        keys = {k["kid"]: k for k in entra.jwks().get("keys", []) if k.get("kid")}
        cache.set(_cache_key("jwks"), keys, JWKS_TTL)
    return keys


def _key_for(kid: str) -> Any:
    keys = _signing_keys(refresh=False)
    # An unknown kid may be a rotated key: refetch, but at most once a minute.
    if kid not in keys and cache.add(_cache_key("jwks-refetched"), 1, 60):
        keys = _signing_keys(refresh=True)
    if kid not in keys:
        raise InvalidIdToken("unknown signing key")
    return jwt.PyJWK(keys[kid]).key


def _guid(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidIdToken("tid or oid is not a GUID") from None


def validate_id_token(token: str, *, client_id: str, nonce: str) -> IdTokenClaims:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidIdToken("malformed token") from None
    if header.get("alg") != "RS256":
        raise InvalidIdToken("algorithm is not RS256")
    key = _key_for(str(header.get("kid", "")))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=client_id,
            leeway=SKEW_SECONDS,
            options={"require": ["iss", "aud", "exp", "nbf", "iat", "tid", "oid", "nonce"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidIdToken("expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidIdToken("not valid yet") from None
    except jwt.InvalidAudienceError:
        raise InvalidIdToken("wrong audience") from None
    except jwt.InvalidSignatureError:
        raise InvalidIdToken("bad signature") from None
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"invalid token: {type(exc).__name__}") from None
    tid = _guid(claims["tid"])
    if claims["iss"] != f"{settings.ENTRA_LOGIN_URL}/{tid}/v2.0":
        raise InvalidIdToken("issuer does not match the token's tenant")
    if not hmac.compare_digest(str(claims["nonce"]), nonce):
        raise InvalidIdToken("nonce does not match")
    return IdTokenClaims(
        tid=tid,
        oid=_guid(claims["oid"]),
        name=str(claims.get("name", "")),
        preferred_username=str(claims.get("preferred_username", "")),
        wids=tuple(str(w) for w in claims.get("wids", [])),
        raw=claims,
    )
