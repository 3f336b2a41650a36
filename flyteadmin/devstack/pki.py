"""Certificates and keys for the local control plane, made with `cryptography`.

One CA signs the apiserver's serving certificate (SANs 127.0.0.1 and localhost) and the admin
client certificate (O=system:masters); a separate RSA key signs service-account tokens.

The kubeconfig carries a bearer token (the same admin identity, from ``--token-auth-file``), not
the client certificate: kube-apiserver verifies a client certificate's chain on every request
(about 7% of its CPU per write in a profile of project creates), while a token is checked once
and then found in its 10-second cache, as the service-account token of a Pod is in production.
The certificate stays for the readiness probes of the control plane.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=3650)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files in ``folder``."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.folder / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.folder / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.folder / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.folder / "admin.key"

    @property
    def admin_token(self) -> Path:
        return self.folder / "admin.token"

    @property
    def token_file(self) -> Path:
        """kube-apiserver's ``--token-auth-file``: the admin token, user admin in system:masters."""
        return self.folder / "tokens.csv"

    @property
    def sa_key(self) -> Path:
        return self.folder / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.folder / "sa.pub"


def ensure_pki(folder: Path) -> Pki:
    """Create the files once; a persistent data directory keeps them across restarts."""
    pki = Pki(folder)
    if not all(p.exists() for p in (pki.ca_cert, pki.serving_cert, pki.admin_cert, pki.sa_key)):
        _write_certificates(pki)
    if not pki.token_file.exists():  # also for a data directory made before the token existed
        token = secrets.token_urlsafe(32)
        _write_private(pki.admin_token, token.encode())
        _write_private(pki.token_file, f"{token},admin,admin,system:masters\n".encode())
    return pki


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _write_certificates(pki: Pki) -> None:
    folder = pki.folder
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("flyteadmin-local-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = _key()
    serving = (
        _builder(_name("kube-apiserver"), ca_name, serving_key.public_key())
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    admin_key = _key()
    admin = (
        _builder(_name("admin", "system:masters"), ca_name, admin_key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = _key()
    files = {
        pki.ca_cert: _pem_cert(ca),
        pki.ca_key: _pem_key(ca_key),
        pki.serving_cert: _pem_cert(serving),
        pki.serving_key: _pem_key(serving_key),
        pki.admin_cert: _pem_cert(admin),
        pki.admin_key: _pem_key(admin_key),
        pki.sa_key: _pem_key(sa_key),
        pki.sa_pub: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for path, data in files.items():
        _write_private(path, data)
