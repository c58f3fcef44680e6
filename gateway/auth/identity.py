"""Who is calling: the one FastAPI dependency every ``/fhir`` route (except ``metadata``) goes through.

The OAuth issue fills ``authenticate`` with bearer-token verification. Until then the only way in is
a development header, accepted solely when ``GATEWAY_INSECURE_DEV_AUTH=1`` (never by default, and
refused by the settings in production). Without it every call is 401: fail closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, Request

from gateway.errors import Unauthorized

Role = Literal["prescriber", "pharmacist", "fund", "admin", "patient"]
ROLES: frozenset[str] = frozenset({"prescriber", "pharmacist", "fund", "admin", "patient"})
DEV_IDENTITY_HEADER = "x-insecure-dev-identity"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as later access decisions see it."""

    client_id: str
    role: Role
    nihdi: str | None = None  # professional NIHDI, or the pharmacy's organisation NIHDI
    ssin: str | None = None  # patients only
    scopes: frozenset[str] = field(default_factory=frozenset)


def _dev_principal(header: str) -> Principal:
    """Parse ``role=prescriber; nihdi=19234011004; client_id=dev`` (development only)."""
    fields: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            fields[name.strip().lower()] = value.strip()
    role = fields.get("role", "")
    if role not in ROLES:
        raise Unauthorized(
            "development identity needs role=prescriber|pharmacist|fund|admin|patient"
        )
    return Principal(
        client_id=fields.get("client_id") or f"dev-{role}",
        role=role,  # type: ignore[arg-type]  # checked against ROLES above
        nihdi=fields.get("nihdi") or None,
        ssin=fields.get("ssin") or None,
        scopes=frozenset(fields.get("scope", "").split()),
    )


async def authenticate(request: Request) -> Principal:
    settings = request.app.state.settings
    dev_header = request.headers.get(DEV_IDENTITY_HEADER)
    if settings.insecure_dev_auth and dev_header:
        return _dev_principal(dev_header)
    raise Unauthorized("authentication required")


Caller = Annotated[Principal, Depends(authenticate)]
