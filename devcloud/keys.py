"""RS256 signing keys with `kid`, published as a JWKS and rotated through the control API."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    created: float

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        thumbprint = hashlib.sha1(der).digest()  # noqa: S324 - x5t is a SHA-1 thumbprint by definition
        kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
        return cls(kid=kid, private_key=key, created=time.time())

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "alg": "RS256",
        }

    def to_json(self) -> dict[str, Any]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"kid": self.kid, "pem": pem.decode(), "created": self.created}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        key = serialization.load_pem_private_key(data["pem"].encode(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(kid=data["kid"], private_key=key, created=data["created"])


class KeyRing:
    """The newest key signs; older keys stay published until retired."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            self.keys = [SigningKey.from_json(k) for k in json.loads(path.read_text())]
        else:
            self.keys = [SigningKey.generate()]
            self._save()

    def _save(self) -> None:
        self.path.touch(mode=0o600)
        self.path.chmod(0o600)
        self.path.write_text(json.dumps([k.to_json() for k in self.keys]))

    @property
    def active(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self, *, retire_old: bool) -> SigningKey:
        new = SigningKey.generate()
        self.keys = [new] if retire_old else [*self.keys[-1:], new]
        self._save()
        return new

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.active
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        for key in self.keys:
            if key.kid == kid:
                return key.private_key.public_key()
        return None


class InvalidToken(Exception):
    """A token that devcloud did not issue, or that is expired, or not for this audience."""


def verify(ring: KeyRing, token: str, *, audience: str, leeway: int = 0) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from exc
    key = ring.public_key(str(header.get("kid", "")))
    if key is None:
        raise InvalidToken("signing key not found")
    try:
        return jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            leeway=leeway,
            options={"require": ["exp", "iat", "nbf", "aud", "iss", "tid"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken("invalid audience") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
