"""The client registry: who may ask for tokens, with which role, NIHDI number and certificate.

Registration binds ``client_id`` <-> certificate (SHA-256 thumbprint, and its public key) <->
NIHDI number <-> role. A client is ``active`` or ``revoked``; revocation is final (register the
software again under a new client id). The token endpoint reads the registry on every request,
so a revoked client, or one whose certificate expired, gets no token from that moment on;
access tokens already issued are refused by the resource server once the status cache of each
instance (``client_status_cache_seconds``) expires, and never outlive the certificate (their
``exp`` is capped at its ``notAfter``).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal

from authlib.oauth2.rfc6749 import ClientMixin
from cryptography import x509
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fhir_profiles import nihdi as nihdi_numbers
from fhir_profiles.identifiers import is_valid_nihdi_professional
from gateway.auth import pki
from gateway.storage.tables import oauth_clients

ClientRole = Literal["prescriber", "pharmacist", "fund", "admin"]
CLIENT_ROLES: tuple[ClientRole, ...] = ("prescriber", "pharmacist", "fund", "admin")
ACTIVE, REVOKED = "active", "revoked"
AUTH_METHOD = "private_key_jwt"
GRANT_TYPE = "client_credentials"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIGITS = re.compile(r"^[0-9]+$")


class RegistrationError(ValueError):
    """A registration the registry refuses; the message says why."""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]  # authlib is untyped
    """One registered client; also authlib's client model (RFC 6749 section 2)."""

    client_id: str
    role: ClientRole
    nihdi: str | None
    qualification: str | None
    name: str
    organisation: str | None
    cert_pem: str
    cert_sha256: str
    spki_sha256: str
    cert_not_after: datetime
    status: str
    created_at: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = field(default=None, repr=False)

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode("ascii"))

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    # -- authlib ClientMixin --------------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Only private_key_jwt, only at the token endpoint (RFC 7523 section 2.2).
        return endpoint == "token" and method == AUTH_METHOD

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # there are no client secrets

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False


def _row_to_client(row: object) -> RegisteredClient:
    mapping = row._mapping  # type: ignore[attr-defined]
    return RegisteredClient(
        client_id=mapping["client_id"],
        role=mapping["role"],
        nihdi=mapping["nihdi"],
        qualification=mapping["qualification"],
        name=mapping["name"],
        organisation=mapping["organisation"],
        cert_pem=mapping["cert_pem"],
        cert_sha256=mapping["cert_sha256"],
        spki_sha256=mapping["spki_sha256"],
        cert_not_after=_aware(mapping["cert_not_after"]),
        status=mapping["status"],
        created_at=_aware(mapping["created_at"]),
        revoked_at=_aware(mapping["revoked_at"]) if mapping["revoked_at"] else None,
        revocation_reason=mapping["revocation_reason"],
    )


def check_nihdi(role: str, nihdi: str | None, *, check_digit: bool = True) -> str | None:
    """The NIHDI number a client of ``role`` must (or may) have (ID-6..ID-9)."""
    if role == "prescriber":
        if (
            not nihdi
            or len(nihdi) != 11
            or not is_valid_nihdi_professional(nihdi, check_digit=check_digit)
        ):
            raise RegistrationError(
                "a prescriber needs an 11-digit NIHDI professional number with valid check "
                "digits (ID-6, ID-7)"
            )
        return nihdi
    if role == "pharmacist":
        # ID-9: a pharmacy is identified by its NIHDI organisation number (digits).
        if not nihdi or not _DIGITS.match(nihdi) or not 8 <= len(nihdi) <= 11:
            raise RegistrationError("a pharmacy needs its NIHDI organisation number (8-11 digits)")
        return nihdi
    if nihdi and (not _DIGITS.match(nihdi) or len(nihdi) > 16):
        raise RegistrationError("a NIHDI number is digits only")
    return nihdi or None


def default_qualification(role: str, nihdi: str | None) -> str | None:
    """The profession (from the first digit) and competence code of a professional NIHDI number,
    e.g. ``physician (580)`` (ID-7, ID-8)."""
    if role == "prescriber" and nihdi:
        return nihdi_numbers.describe(nihdi)
    if role == "pharmacist":
        return "pharmacy"
    return None


class ClientRegistry:
    """Registry operations, each in its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, client_id: str) -> RegisteredClient | None:
        if not _CLIENT_ID.match(client_id):
            return None
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(oauth_clients).where(oauth_clients.c.client_id == client_id)
                )
            ).first()
        return _row_to_client(row) if row is not None else None

    async def list(self) -> list[RegisteredClient]:
        async with self._sessions() as session:
            rows = (
                await session.execute(select(oauth_clients).order_by(oauth_clients.c.client_id))
            ).all()
        return [_row_to_client(row) for row in rows]

    async def register(
        self,
        *,
        role: str,
        cert_pem: str,
        trust: pki.TrustStore,
        nihdi: str | None = None,
        client_id: str | None = None,
        name: str | None = None,
        organisation: str | None = None,
        qualification: str | None = None,
        check_digit: bool = True,
        now: datetime | None = None,
    ) -> RegisteredClient:
        """Register a client after checking its certificate against the trusted CA at ``now``."""
        if role not in CLIENT_ROLES:
            raise RegistrationError(f"role must be one of {', '.join(CLIENT_ROLES)}")
        client_id = client_id or f"{role}-{secrets.token_hex(6)}"
        if not _CLIENT_ID.match(client_id):
            raise RegistrationError("client id: letters, digits, '.', '_', '-', at most 64")
        nihdi = check_nihdi(role, nihdi, check_digit=check_digit)
        cert = pki.load_pem(cert_pem.encode("ascii"))
        try:
            trust.verify(cert, now=now)
        except pki.CertificateRefused as exc:
            raise RegistrationError(f"certificate refused: {exc}") from exc
        cert_nihdi = pki.nihdi_of(cert)
        if cert_nihdi != nihdi and (cert_nihdi is not None or nihdi is not None):
            raise RegistrationError("the certificate's OU=NIHDI= must be the client's NIHDI number")
        moment = now or datetime.now(UTC)
        client = RegisteredClient(
            client_id=client_id,
            role=role,  # checked against CLIENT_ROLES above
            nihdi=nihdi,
            qualification=qualification or default_qualification(role, nihdi),
            name=name or pki.common_name(cert) or client_id,
            organisation=organisation,
            cert_pem=pki.pem(cert),
            cert_sha256=pki.thumbprint(cert),
            spki_sha256=pki.spki_thumbprint(cert),
            cert_not_after=_aware(cert.not_valid_after_utc),
            status=ACTIVE,
            created_at=moment,
        )
        values = {
            name_: getattr(client, name_)
            for name_ in (
                "client_id",
                "role",
                "nihdi",
                "qualification",
                "name",
                "organisation",
                "cert_pem",
                "cert_sha256",
                "spki_sha256",
                "cert_not_after",
                "status",
                "created_at",
            )
        }
        async with self._sessions() as session:
            try:
                await session.execute(insert(oauth_clients).values(**values))
                await session.commit()
            except IntegrityError as exc:
                raise RegistrationError("client id or certificate already registered") from exc
        return client

    async def revoke(self, client_id: str, reason: str | None = None) -> bool:
        """Mark the client revoked; false if there is no such active client."""
        async with self._sessions() as session:
            result = await session.execute(
                update(oauth_clients)
                .where(oauth_clients.c.client_id == client_id, oauth_clients.c.status == ACTIVE)
                .values(status=REVOKED, revoked_at=datetime.now(UTC), revocation_reason=reason)
            )
            await session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]


class ClientStatusCache:
    """Whether a client is still active, as the resource server sees it on every request.

    Reading the registry on every FHIR call would add a query per request; each instance keeps
    the answer for ``ttl`` seconds instead (0: read every time). ``forget`` drops an entry at once
    (revocation through this process).
    """

    def __init__(self, registry: ClientRegistry, ttl: float) -> None:
        self.registry = registry
        self.ttl = ttl
        self._known: dict[str, tuple[bool, float]] = {}

    async def is_active(self, client_id: str) -> bool:
        now = time.monotonic()
        cached = self._known.get(client_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        client = await self.registry.get(client_id)
        active = client is not None and client.active and client.cert_not_after > datetime.now(UTC)
        if self.ttl > 0:
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[client_id] = (active, now + self.ttl)
        return active

    def forget(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._known.clear()
        else:
            self._known.pop(client_id, None)
