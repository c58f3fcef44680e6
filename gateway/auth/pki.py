"""Client certificates: chain to the trusted CA, validity, and the facts the gateway reads in them.

SEC-1 (docs/domain.md): professionals and organisations authenticate with a certificate
issued by the eHealth CA. The gateway trusts the CA certificates in its trust directory
(``Settings.trust_dir()``, layout in ``certs_dev/README.md``):

* ``root-ca.pem``: trust anchors (one or more certificates);
* ``issuing-ca.pem``: intermediate CAs (one or more), used to build chains for certificates that
  arrive without them (a registered certificate, an ``x5c`` holding only the leaf).

Chains are built and checked by ``cryptography.x509.verification`` (``ClientVerifier``, RFC 5280
path validation with the CA/Browser-Forum-style profile: the leaf needs a subjectAltName and the
clientAuth extended key usage). Revocation is the client registry's status, not a CRL: a revoked
client is refused before its certificate is even looked at (``registry.py``).

The professional's NIHDI number is carried in the subject as an organisational unit
``OU=NIHDI=<number>`` (as eHealth certificates carry ``NIHII=`` units); registration binds it to
the client, and an ``x5c`` certificate must carry the same one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

ROOT_CA_FILE = "root-ca.pem"
ISSUING_CA_FILE = "issuing-ca.pem"
NIHDI_OU_PREFIX = "NIHDI="
# An x5c header is the leaf, then at most a few intermediates (RFC 7515 section 4.1.6).
MAX_X5C_CERTIFICATES = 4
# A verified chain is remembered this long (seconds); validity dates are still checked every time.
CHAIN_CACHE_SECONDS = 300.0
_CHAIN_CACHE_SIZE = 4096
_SHA256 = hashes.SHA256()


class CertificateRefused(Exception):
    """The certificate cannot authenticate a client. The message is safe to show the client."""


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex (what the registry stores)."""
    return cert.fingerprint(_SHA256).hex()


def spki_thumbprint(cert: x509.Certificate) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, hex: the same key across a renewed certificate."""
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def nihdi_of(cert: x509.Certificate) -> str | None:
    """The NIHDI number in the subject's ``OU=NIHDI=<number>``, if any."""
    for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        value = attribute.value if isinstance(attribute.value, str) else ""
        if value.startswith(NIHDI_OU_PREFIX):
            return value[len(NIHDI_OU_PREFIX) :]
    return None


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def load_pem(data: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateRefused("not a PEM certificate") from exc


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def from_x5c(value: object) -> list[x509.Certificate]:
    """Parse a JWS ``x5c`` header: base64 (not base64url) DER, leaf first (RFC 7515 4.1.6)."""
    if not isinstance(value, list) or not value or len(value) > MAX_X5C_CERTIFICATES:
        raise CertificateRefused(f"x5c must list 1 to {MAX_X5C_CERTIFICATES} certificates")
    certs = []
    for item in value:
        if not isinstance(item, str):
            raise CertificateRefused("x5c entries must be base64 DER certificates")
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(item, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise CertificateRefused("x5c entries must be base64 DER certificates") from exc
    return certs


def to_x5c(certs: Sequence[x509.Certificate]) -> list[str]:
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in certs]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class VerifiedChain:
    """A chain from the leaf to a trust anchor, valid from ``not_before`` to ``not_after``
    (the intersection of the validity of every certificate in it)."""

    leaf: x509.Certificate
    not_before: datetime
    not_after: datetime


class TrustStore:
    """The trusted CA certificates, and chain verification with a small cache of verified chains.

    Path validation costs about a millisecond (two signature checks and the policy), so a chain
    once verified is remembered for ``CHAIN_CACHE_SECONDS``; the validity period is checked at
    every use, so an expired certificate stops working at its ``notAfter`` exactly.
    """

    def __init__(
        self, roots: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate] = ()
    ) -> None:
        if not roots:
            raise CertificateRefused("no trusted CA is configured")
        self.roots = list(roots)
        self.intermediates = list(intermediates)
        self._store = Store(self.roots)
        self._verified: dict[tuple[str, ...], tuple[VerifiedChain, float]] = {}

    @classmethod
    def from_dir(cls, directory: Path) -> TrustStore:
        root_path = directory / ROOT_CA_FILE
        if not root_path.is_file():
            raise CertificateRefused("no trusted CA is configured")
        roots = x509.load_pem_x509_certificates(root_path.read_bytes())
        issuing_path = directory / ISSUING_CA_FILE
        intermediates = (
            x509.load_pem_x509_certificates(issuing_path.read_bytes())
            if issuing_path.is_file()
            else []
        )
        return cls(roots, intermediates)

    def verify(
        self,
        leaf: x509.Certificate,
        presented: Sequence[x509.Certificate] = (),
        *,
        now: datetime | None = None,
    ) -> VerifiedChain:
        """Check that ``leaf`` chains to a trust anchor and is valid at ``now``.

        ``presented`` are intermediates sent by the client (the rest of its ``x5c``).
        Raises ``CertificateRefused`` with a client-safe reason.
        """
        moment = now or datetime.now(UTC)
        key = (thumbprint(leaf), *(thumbprint(c) for c in presented))
        cached = self._verified.get(key)
        if cached is not None and cached[1] > time.monotonic():
            chain = cached[0]
        else:
            chain = self._build(leaf, presented, moment)
            if len(self._verified) >= _CHAIN_CACHE_SIZE:
                self._verified.clear()
            self._verified[key] = (chain, time.monotonic() + CHAIN_CACHE_SECONDS)
        if moment < chain.not_before:
            raise CertificateRefused("certificate is not yet valid")
        if moment > chain.not_after:
            raise CertificateRefused("certificate has expired")
        return chain

    def _build(
        self, leaf: x509.Certificate, presented: Sequence[x509.Certificate], moment: datetime
    ) -> VerifiedChain:
        not_before = _aware(leaf.not_valid_before_utc)
        not_after = _aware(leaf.not_valid_after_utc)
        # Check the leaf's own dates first, so the client hears the precise reason.
        if moment < not_before:
            raise CertificateRefused("certificate is not yet valid")
        if moment > not_after:
            raise CertificateRefused("certificate has expired")
        verifier = PolicyBuilder().store(self._store).time(moment).build_client_verifier()
        try:
            verified = verifier.verify(leaf, [*presented, *self.intermediates])
        except VerificationError as exc:
            raise CertificateRefused("certificate does not chain to the trusted CA") from exc
        for cert in verified.chain[1:]:
            not_before = max(not_before, _aware(cert.not_valid_before_utc))
            not_after = min(not_after, _aware(cert.not_valid_after_utc))
        return VerifiedChain(leaf, not_before, not_after)


class TrustDirectory:
    """Loads the trust store from its directory on first use, and again if the files change
    (``gateway certs init`` after the gateway started, or an operator replacing the CA files).
    The files are looked at no more than once a second."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._store: TrustStore | None = None
        self._stamp: tuple[float, ...] = ()
        self._checked = -1.0

    def _mtimes(self) -> tuple[float, ...]:
        stamps = []
        for name in (ROOT_CA_FILE, ISSUING_CA_FILE):
            try:
                stamps.append((self.directory / name).stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        return tuple(stamps)

    def get(self) -> TrustStore:
        if self._store is not None and time.monotonic() - self._checked < 1.0:
            return self._store
        stamp = self._mtimes()
        if self._store is None or stamp != self._stamp:
            self._store = TrustStore.from_dir(self.directory)
            self._stamp = stamp
        self._checked = time.monotonic()
        return self._store
