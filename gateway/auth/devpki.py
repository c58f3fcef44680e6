"""The development PKI: a root CA, an issuing CA, and client certificates (``certs_dev/README.md``).

``gateway certs init`` and ``gateway certs issue`` call these. Production trusts the real eHealth
CA instead and never runs this code: only the CA *certificates* are needed by the gateway, and a
production trust directory holds no private key.

Every key is generated here, written with mode 0600 and never committed (``.gitignore``). Client
certificates follow what ``pki.TrustStore`` checks: subject ``C=BE, O=<organisation>,
OU=NIHDI=<number>, CN=<name>``, a subjectAltName URI, key usage digitalSignature, extended key
usage clientAuth, and key identifiers. Keys are EC P-256 (ES256) by default, RSA 3072 on request
(RS256/PS256).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.auth.pki import ISSUING_CA_FILE, NIHDI_OU_PREFIX, ROOT_CA_FILE, pem

ROOT_KEY_FILE = "root-ca.key"
ISSUING_KEY_FILE = "issuing-ca.key"
DEV_ORGANISATION = "eHealth gateway development PKI"
SAN_PREFIX = "urn:ehealth-gateway:"
ROOT_DAYS = 3650
ISSUING_DAYS = 1825
# SEC-1: eHealth certificates are valid 39 months.
CLIENT_DAYS = 1186
# Backdate notBefore a little so that clocks a minute apart still accept a fresh certificate.
_BACKDATE = timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ec", "rsa"]


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: PrivateKey


@dataclass(frozen=True)
class ClientFiles:
    key_path: Path
    cert_path: Path
    chain_path: Path


def generate_key(key_type: KeyType = "ec") -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organisation: str, unit: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """RFC 5280 section 4.2.1.3: a CA key signs certificates and CRLs only, a client key only
    signs (its JWT assertions)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_certificate(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issuer | None,
    *,
    path_length: int,
    days: int,
    now: datetime,
    valid_from: datetime,
) -> x509.Certificate:
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return builder.sign(signer_key, hashes.SHA256())


def write_private_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM, created with mode 0600 (never readable by others, even for a moment)."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_private_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: only EC and RSA keys are supported")
    return key


def ca_exists(ca_dir: Path) -> bool:
    return (ca_dir / ROOT_CA_FILE).is_file() and (ca_dir / ISSUING_KEY_FILE).is_file()


def init_ca(
    ca_dir: Path,
    *,
    force: bool = False,
    organisation: str = DEV_ORGANISATION,
    valid_from: datetime | None = None,
) -> Issuer:
    """Create the root and issuing CAs in ``ca_dir`` (or keep existing ones unless ``force``).

    ``valid_from`` backdates the CAs (tests that need certificates from the past).
    """
    if ca_exists(ca_dir) and not force:
        return load_issuer(ca_dir)
    now = datetime.now(UTC)
    valid_from = valid_from or now - _BACKDATE
    root_key = generate_key("ec")
    root_cert = _ca_certificate(
        _name("Development Root CA", organisation),
        root_key,
        None,
        path_length=1,
        days=ROOT_DAYS,
        now=now,
        valid_from=valid_from,
    )
    issuing_key = generate_key("ec")
    issuing_cert = _ca_certificate(
        _name("Development Issuing CA", organisation),
        issuing_key,
        Issuer(root_cert, root_key),
        path_length=0,
        days=ISSUING_DAYS,
        now=now,
        valid_from=valid_from,
    )
    ca_dir.mkdir(parents=True, exist_ok=True)
    write_private_key(ca_dir / ROOT_KEY_FILE, root_key)
    write_private_key(ca_dir / ISSUING_KEY_FILE, issuing_key)
    (ca_dir / ROOT_CA_FILE).write_text(pem(root_cert))
    (ca_dir / ISSUING_CA_FILE).write_text(pem(issuing_cert))
    return Issuer(issuing_cert, issuing_key)


def load_issuer(ca_dir: Path) -> Issuer:
    cert = x509.load_pem_x509_certificate((ca_dir / ISSUING_CA_FILE).read_bytes())
    return Issuer(cert, load_private_key(ca_dir / ISSUING_KEY_FILE))


def issue_client_certificate(
    issuer: Issuer,
    *,
    common_name: str,
    nihdi: str | None,
    organisation: str | None = None,
    key: PrivateKey | None = None,
    key_type: KeyType = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = CLIENT_DAYS,
) -> tuple[x509.Certificate, PrivateKey]:
    """A client certificate for one professional or organisation (and its new key)."""
    key = key or generate_key(key_type)
    now = datetime.now(UTC)
    start = not_before or now - _BACKDATE
    end = not_after or now + timedelta(days=days)
    unit = f"{NIHDI_OU_PREFIX}{nihdi}" if nihdi else None
    san = f"{SAN_PREFIX}nihdi:{nihdi}" if nihdi else f"{SAN_PREFIX}name:{quote(common_name)}"
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organisation or DEV_ORGANISATION, unit))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san)]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return cert, key


def write_client(
    out_dir: Path, cert: x509.Certificate, key: PrivateKey, issuer_cert: x509.Certificate
) -> ClientFiles:
    """``key.pem`` (0600), ``cert.pem``, and ``chain.pem`` (certificate then issuing CA)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ClientFiles(out_dir / "key.pem", out_dir / "cert.pem", out_dir / "chain.pem")
    write_private_key(files.key_path, key)
    files.cert_path.write_text(pem(cert))
    files.chain_path.write_text(pem(cert) + pem(issuer_cert))
    return files
