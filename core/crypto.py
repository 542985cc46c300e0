"""Encryption at rest: AES-256-GCM with a key ring; the newest key encrypts, any listed key decrypts.

A sealed value is `v1.<key id>.<base64url(nonce + ciphertext)>`. The associated data names what
the value is and whose it is (`entra-token-cache:{tid}:{oid}`), so a value copied to another
row or field does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VERSION = "v1"


class DecryptionError(Exception):
    """The value was not sealed by one of our keys for this context."""


@dataclass(frozen=True)
class Key:
    id: str
    aead: AESGCM


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _key(encoded: str) -> Key:
    try:
        raw = _b64decode(encoded.strip())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured("Each ENCRYPTION_KEYS entry must be 32 bytes, base64url-encoded.")
    return Key(id=hashlib.sha256(raw).hexdigest()[:8], aead=AESGCM(raw))


@lru_cache(maxsize=4)
def _ring(keys: tuple[str, ...]) -> tuple[Key, ...]:
    if not keys:
        raise ImproperlyConfigured("ENCRYPTION_KEYS is empty.")
    return tuple(_key(k) for k in keys)


def keys() -> tuple[Key, ...]:
    return _ring(tuple(settings.ENCRYPTION_KEYS))


def seal(plaintext: str, *, context: str) -> str:
    key = keys()[0]
    nonce = os.urandom(12)
    ciphertext = key.aead.encrypt(nonce, plaintext.encode(), context.encode())
    payload = base64.urlsafe_b64encode(nonce + ciphertext).rstrip(b"=").decode()
    return f"{VERSION}.{key.id}.{payload}"


def unseal(sealed: str, *, context: str) -> str:
    version, _, rest = sealed.partition(".")
    key_id, _, payload = rest.partition(".")
    key = next((k for k in keys() if k.id == key_id), None)
    if version != VERSION or key is None:
        raise DecryptionError("sealed with an unknown key")
    try:
        raw = _b64decode(payload)
        return key.aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise DecryptionError("the value does not decrypt in this context") from exc


def digest(token: str) -> str:
    """The SHA-256 (hex) of a link's token: what is kept of it, to find it by, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def current_prefix() -> str:
    """How every value sealed with the newest key begins."""
    return f"{VERSION}.{keys()[0].id}."


def reseal(sealed: str, *, context: str) -> str:
    """The same plaintext, sealed with the newest key (DecryptionError if no listed key opens it)."""
    return seal(unseal(sealed, context=context), context=context)


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
