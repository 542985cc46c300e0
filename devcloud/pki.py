"""The CA that devcloud creates once in its state dir, and the server certificate it signs."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devcloud"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _create_ca(state_dir: Path) -> None:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("devcloud local CA"))
        .issuer_name(_name("devcloud local CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # Whoever trusts this CA trusts it for this machine's loopback names only.
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
                    x509.IPAddress(ipaddress.ip_network("::1/128")),
                ],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(state_dir / "ca-key.pem", _pem_key(key))
    (state_dir / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _create_server_cert(state_dir: Path) -> None:
    ca_key = serialization.load_pem_private_key((state_dir / "ca-key.pem").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((state_dir / "ca.pem").read_bytes())
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = _key()
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("devcloud"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(state_dir / "server-key.pem", _pem_key(key))
    (state_dir / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def system_ca_bundle() -> Path | None:
    """The system's CA bundle, so that ca-bundle.pem trusts the public internet too."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi
    except ImportError:
        return None
    return Path(certifi.where())


def ensure_pki(state_dir: Path) -> None:
    """Create the CA once; (re)create the server certificate and the bundle when missing."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if not (state_dir / "ca.pem").exists() or not (state_dir / "ca-key.pem").exists():
        _create_ca(state_dir)
        (state_dir / "server.pem").unlink(missing_ok=True)
    if not (state_dir / "server.pem").exists():
        _create_server_cert(state_dir)
    ours = (state_dir / "ca.pem").read_bytes()
    system = system_ca_bundle()
    bundle = (system.read_bytes().rstrip(b"\n") + b"\n" if system else b"") + ours
    bundle_path = state_dir / "ca-bundle.pem"
    if not bundle_path.exists() or bundle_path.read_bytes() != bundle:
        bundle_path.write_bytes(bundle)
