"""App credentials as Entra keeps them: client secrets (passwordCredentials) and certificates (keyCredentials).

An app may hold several of each at once: that is how a vendor rotates a credential without downtime
(add the new one, switch, remove the old one). Each has a validity window; Entra keeps an expired
credential on the app and refuses it at the token endpoint.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# Graph's addPassword gives a secret two years when no endDateTime is asked for.
DEFAULT_SECRET_LIFETIME = dt.timedelta(days=730)
GENERATED_CERTIFICATE_LIFETIME = dt.timedelta(days=730)
_SECRET_ALPHABET = string.ascii_letters + string.digits + "~._-"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 date-time with `Z` or an offset (ValueError otherwise)."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True)
class Secret:
    key_id: str
    value: str = field(repr=False)
    display_name: str
    start: dt.datetime
    end: dt.datetime | None  # None: a seeded secret that never expires

    @property
    def hint(self) -> str:
        # The admin center and Graph show the first three characters (`hint`), never the value.
        return self.value[:3]

    def expired(self, now: dt.datetime) -> bool:
        return self.end is not None and now >= self.end

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "display_name": self.display_name,
            "hint": self.hint,
            "start_date_time": _iso(self.start),
            "end_date_time": _iso(self.end),
            "expired": self.expired(now),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(dt.datetime.now(dt.UTC)), "value": self.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Secret:
        end = data.get("end_date_time")
        return cls(
            key_id=data["key_id"],
            value=data["value"],
            display_name=data.get("display_name", ""),
            start=parse_time(data["start_date_time"]),
            end=parse_time(end) if end else None,
        )


@dataclass(frozen=True)
class Certificate:
    key_id: str
    display_name: str
    pem: str
    # The admin center shows the SHA-1 thumbprint in hex; MSAL names the key by SHA-1 (`x5t`) or SHA-256 (`x5t#S256`).
    thumbprint: str
    thumbprint_sha256: str
    start: dt.datetime
    end: dt.datetime
    files: tuple[str, ...] = ()  # where devcloud wrote a generated key and certificate

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = x509.load_pem_x509_certificate(self.pem.encode()).public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        return key

    def valid_at(self, now: dt.datetime) -> bool:
        return self.start <= now < self.end

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        body: dict[str, Any] = {
            "key_id": self.key_id,
            "display_name": self.display_name,
            "thumbprint": self.thumbprint,
            "thumbprint_sha256": self.thumbprint_sha256,
            "start_date_time": _iso(self.start),
            "end_date_time": _iso(self.end),
            "expired": now >= self.end,
        }
        if self.files:
            body["files"] = list(self.files)
        return body

    def to_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "display_name": self.display_name, "pem": self.pem, "files": list(self.files)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Certificate:
        certificate = certificate_from_pem(data["pem"], display_name=data.get("display_name") or None)
        return replace(certificate, key_id=data["key_id"], files=tuple(data.get("files", ())))


@dataclass
class AppCredentials:
    secrets: list[Secret] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)

    def certificate(self, *, sha1: str | None = None, sha256: str | None = None) -> Certificate | None:
        for certificate in self.certificates:
            if (sha1 and certificate.thumbprint == sha1.upper()) or (
                sha256 and certificate.thumbprint_sha256 == sha256.upper()
            ):
                return certificate
        return None

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "secrets": [s.summary(now) for s in self.secrets],
            "certificates": [c.summary(now) for c in self.certificates],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "secrets": [s.to_json() for s in self.secrets],
            "certificates": [c.to_json() for c in self.certificates],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppCredentials:
        return cls(
            secrets=[Secret.from_json(s) for s in data.get("secrets", [])],
            certificates=[Certificate.from_json(c) for c in data.get("certificates", [])],
        )

    def copy(self) -> AppCredentials:
        return AppCredentials(secrets=list(self.secrets), certificates=list(self.certificates))


def new_secret(*, display_name: str = "", end: dt.datetime | None = None, now: dt.datetime | None = None) -> Secret:
    """A secret as Entra generates one: 40 characters, the fourth and fifth `Q~`-style."""
    now = now or dt.datetime.now(dt.UTC)
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    value = head + str(secrets.randbelow(10)) + "Q~" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))
    return Secret(
        key_id=str(uuid.uuid4()),
        value=value,
        display_name=display_name,
        start=now,
        end=end if end is not None else now + DEFAULT_SECRET_LIFETIME,
    )


def seed_secret(app_client_id: str, value: str) -> Secret:
    """The seed's `client_secret`: a stable key id, valid from the epoch, never expiring (a demo value)."""
    return Secret(
        key_id=str(uuid.uuid5(uuid.UUID(app_client_id), "secret:" + value)),
        value=value,
        display_name="seed",
        start=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        end=None,
    )


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else cert.subject.rfc4514_string()
    return value if isinstance(value, str) else value.decode()


def certificate_from_pem(pem: str, *, display_name: str | None = None) -> Certificate:
    """A public certificate as uploaded in the admin center: its validity is the certificate's own
    (an expired one is accepted, as Entra keeps credentials that have expired). ValueError if it is
    not a PEM certificate with an RSA key (Entra verifies RS256 and PS256 assertions only)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValueError("not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ValueError("the certificate's key is not an RSA key")
    clean = cert.public_bytes(serialization.Encoding.PEM).decode()
    return Certificate(
        key_id=str(uuid.uuid4()),
        display_name=display_name or f"CN={_common_name(cert)}",
        pem=clean,
        thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Entra's identifier
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
        start=cert.not_valid_before_utc,
        end=cert.not_valid_after_utc,
    )


def file_stem(app_name: str) -> str:
    """`Tailspin Teams` → `tailspin-teams`: the name of an app's generated files."""
    return re.sub(r"[^a-z0-9]+", "-", app_name.lower()).strip("-")


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def _self_signed(app_name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, app_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + GENERATED_CERTIFICATE_LIFETIME)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def generated_certificate(state_dir: Path, app_name: str, client_id: str) -> Certificate:
    """The seed's `certificates: "generate"`: a key and a self-signed certificate, created once in
    `apps/` of the state dir (again only when missing or expired), so that a person can register the
    app by hand with the same files devcloud trusts."""
    folder = state_dir / "apps"
    folder.mkdir(parents=True, exist_ok=True)
    key_path = folder / f"{file_stem(app_name)}.key.pem"
    cert_path = folder / f"{file_stem(app_name)}.cert.pem"
    now = dt.datetime.now(dt.UTC)
    current = certificate_from_pem(cert_path.read_text()) if cert_path.exists() and key_path.exists() else None
    if current is None or now >= current.end:
        key_pem, cert_pem = _self_signed(app_name)
        _write_private(key_path, key_pem)
        cert_path.write_bytes(cert_pem)
        current = certificate_from_pem(cert_pem.decode())
    return replace(
        current,
        key_id=str(uuid.uuid5(uuid.UUID(client_id), "certificate:" + current.thumbprint)),
        files=(str(key_path), str(cert_path)),
    )
