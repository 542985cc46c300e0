"""Keys, certificates and client assertions for app credentials, made as a vendor makes them."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.devcloud_server import TAILSPIN_CERTIFICATE_FILE, TAILSPIN_KEY_FILE, DevCloud

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class KeyPair:
    key_pem: str
    certificate_pem: str

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    @property
    def sha1(self) -> str:
        """The thumbprint the admin center shows (SHA-1, hex)."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's identifier

    @property
    def sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()


def make_key_pair(name: str = "Tailspin Teams", *, valid_from_days: float = -1, days: float = 365) -> KeyPair:
    """An RSA key and a self-signed certificate valid from `valid_from_days` to `days` from now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=valid_from_days))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return KeyPair(key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode())


def tailspin_generated(devcloud: DevCloud) -> KeyPair:
    """The key and certificate devcloud generated for Tailspin Teams in its state dir."""
    state_dir = Path(devcloud.state_dir)
    return KeyPair((state_dir / TAILSPIN_KEY_FILE).read_text(), (state_dir / TAILSPIN_CERTIFICATE_FILE).read_text())


def register(devcloud: DevCloud, client_id: str, pair: KeyPair) -> dict[str, Any]:
    """Upload the public certificate, as in the admin center."""
    body = {"certificate": pair.certificate_pem}
    return dict(devcloud.control("POST", f"/apps/{client_id}/certificates", json=body))


class RecordingSession(requests.Session):
    """The HTTP client msal uses; remembers the forms it posts (to read the assertions it signs)."""

    def __init__(self, devcloud: DevCloud) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = devcloud.ca
        self.forms: list[dict[str, Any]] = []

    def post(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if isinstance(data, dict):
            self.forms.append(dict(data))
        return super().post(url, data=data, **kwargs)

    def assertions(self) -> list[str]:
        sent = [form["client_assertion"] for form in self.forms if "client_assertion" in form]
        return [a.decode() if isinstance(a, bytes) else str(a) for a in sent]


def certificate_app(
    devcloud: DevCloud,
    client_id: str,
    credential: dict[str, str],
    *,
    authority: str = "organizations",
    http: requests.Session | None = None,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{devcloud.base_url}/{authority}",
        instance_discovery=False,
        http_client=http or devcloud.session(),
    )


def with_thumbprint(pair: KeyPair) -> dict[str, str]:
    """msal's SHA-1 form: RS256, the certificate named by `x5t`."""
    return {"private_key": pair.key_pem, "thumbprint": pair.sha1}


def with_certificate(pair: KeyPair) -> dict[str, str]:
    """msal's SHA-256 form: PS256, the certificate named by `x5t#S256` and sent in `x5c`."""
    return {"private_key": pair.key_pem, "public_certificate": pair.certificate_pem}


def _b64url(hex_digest: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).rstrip(b"=").decode()


def assertion(
    pair: KeyPair,
    *,
    client_id: str,
    audience: str,
    algorithm: str = "PS256",
    headers: dict[str, Any] | None = None,
    signing_key: str | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A client assertion built by hand, as the docs describe it; `claims` override the defaults."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    for name in drop:
        payload.pop(name, None)
    header = {"x5t#S256": _b64url(pair.sha256)} if headers is None else headers
    return jwt.encode(payload, signing_key or pair.key_pem, algorithm=algorithm, headers=header)


def token_endpoint(devcloud: DevCloud, tenant: str) -> str:
    return f"{devcloud.base_url}/{tenant}/oauth2/v2.0/token"


def post_token(devcloud: DevCloud, tenant: str, data: dict[str, str]) -> requests.Response:
    return devcloud.session().post(token_endpoint(devcloud, tenant), data=data, timeout=10)


def client_credentials_form(client_id: str, client_assertion: str, scope: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "scope": scope,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion,
    }
