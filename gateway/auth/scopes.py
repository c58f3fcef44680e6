"""SMART on FHIR v2 system scopes, the ceiling of each role, and ``require_scopes``.

A scope is ``system/<Resource>.<permissions>`` (SMART App Launch 2.0, "Scopes for requesting FHIR
resources"): permissions are letters of ``cruds`` (create, read, update, delete, search) in that
order; ``*`` as the resource means every resource type. Backend clients have no user and no
launch context, so they hold ``system/`` scopes. Patients (the portal) hold ``patient/`` scopes:
the permission letters mean the same, and the patient compartment (PO-4: his own data only) is
enforced by the access decision (``consent.decide``), so ``require_scopes("system/X.r")`` is met
by ``patient/X.r`` as well. SMART v1 suffixes are accepted on
input and read as their v2 equivalent: ``.read`` = ``.rs``, ``.write`` = ``.cud``, ``.*`` =
``.cruds``. Granted scopes are always written in v2 form, one entry per resource.

Each role has a ceiling. The token endpoint grants what is asked if it lies within the role's
ceiling and refuses the whole request (``invalid_scope``, RFC 6749 section 5.2) otherwise; a
request without ``scope`` gets the whole ceiling (RFC 6749 section 3.3 lets the server pick a
default). The ceilings (also in docs/auth.md and ``/.well-known/smart-configuration``):

=========== ==============================================================================
role        ceiling
=========== ==============================================================================
prescriber  MedicationRequest.crus, MedicationDispense.rs, Claim.crus, ClaimResponse.rs,
            Consent.crus, Patient.rs, Communication.rs
pharmacist  MedicationRequest.rs, MedicationDispense.crus, Consent.crus, Patient.rs,
            Communication.crs
fund        Claim.rs, ClaimResponse.crus
admin       system/*.rs (read and search everything, for operators), nothing written
=========== ==============================================================================

A patient (``PATIENT_CEILING``, portal tokens only) holds ``patient/`` MedicationRequest.rus
($set-visibility), MedicationDispense.rs, Claim.rs, ClaimResponse.rs, Consent.crus, AuditEvent.rs
and Patient.rs; no Communication: feedback passes between pharmacy and prescriber (RX-8).

Nobody deletes: revoking a prescription or cancelling an attestation is an update with a reason
(RX-7, AT-7), and the history stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Depends, Request

from gateway.auth.errors import InsufficientScope
from gateway.auth.identity import Principal, authenticate
from gateway.errors import Forbidden

PERMISSIONS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(
    r"^(?P<context>system|patient)/(?P<resource>\*|[A-Z][A-Za-z]{1,63})\.(?P<perms>[a-z*]{1,6})$"
)

ROLE_CEILINGS: Mapping[str, tuple[str, ...]] = {
    "prescriber": (
        "system/MedicationRequest.crus",
        "system/MedicationDispense.rs",
        "system/Claim.crus",
        "system/ClaimResponse.rs",
        "system/Consent.crus",
        "system/Patient.rs",
        "system/Communication.rs",  # feedback on his prescriptions (RX-8)
    ),
    "pharmacist": (
        "system/MedicationRequest.rs",
        "system/MedicationDispense.crus",
        "system/Consent.crus",
        "system/Patient.rs",
        "system/Communication.crs",  # feedback to a prescriber (RX-8)
    ),
    "fund": ("system/Claim.rs", "system/ClaimResponse.crus"),
    "admin": ("system/*.rs",),
}

# What a patient's token (issued by the gateway's portal, never at the client-credentials token
# endpoint: no client has the role "patient") may hold. Not in ROLE_CEILINGS for that reason.
PATIENT_CEILING: tuple[str, ...] = (
    "patient/MedicationRequest.rus",
    "patient/MedicationDispense.rs",
    "patient/Claim.rs",
    "patient/ClaimResponse.rs",
    "patient/Consent.crus",
    "patient/AuditEvent.rs",
    "patient/Patient.rs",
)


class ScopeError(ValueError):
    """A scope string that is not a supported SMART system scope."""


@dataclass(frozen=True)
class Scope:
    resource: str  # a resource type, or "*"
    permissions: frozenset[str]
    context: str = "system"  # or "patient"

    def __str__(self) -> str:
        letters = "".join(p for p in PERMISSIONS if p in self.permissions)
        return f"{self.context}/{self.resource}.{letters}"


def parse(text: str) -> Scope:
    """One scope, v2 (``.cruds`` letters in order) or v1 (``.read``, ``.write``, ``.*``);
    context ``system/`` or ``patient/``."""
    resource, dot, suffix = text.rpartition(".")
    if dot and suffix in _V1:
        text = f"{resource}.{_V1[suffix]}"
    match = _SCOPE.match(text)
    if match is None:
        raise ScopeError("not a SMART system or patient scope")
    letters = match["perms"]
    ordered = "".join(p for p in PERMISSIONS if p in letters)
    if ordered != letters:  # SMART v2: letters appear once each, in the order c r u d s
        raise ScopeError("permissions must be letters of cruds, in that order")
    return Scope(match["resource"], frozenset(letters), match["context"])


def merge(scopes: Iterable[Scope]) -> tuple[Scope, ...]:
    """One scope per context and resource (the union of its permissions), sorted for a stable
    string."""
    by_resource: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        by_resource.setdefault((scope.context, scope.resource), set()).update(scope.permissions)
    return tuple(Scope(r, frozenset(p), c) for (c, r), p in sorted(by_resource.items()))


def _allowed(held: Iterable[Scope], resource: str) -> frozenset[str]:
    """Permissions ``held`` gives on ``resource``: its own entry plus the ``*`` entry."""
    letters: set[str] = set()
    for scope in held:
        if scope.resource in (resource, "*"):
            letters |= scope.permissions
    return frozenset(letters)


def within(held: Iterable[Scope], wanted: Scope) -> bool:
    """Whether ``held`` grants ``wanted`` (for granting: in ``wanted``'s own context)."""
    held = tuple(s for s in held if s.context == wanted.context)
    if wanted.resource == "*":
        wildcard = [s.permissions for s in held if s.resource == "*"]
        return any(wanted.permissions <= p for p in wildcard)
    return wanted.permissions <= _allowed(held, wanted.resource)


@lru_cache(maxsize=16)
def ceiling(role: str) -> tuple[Scope, ...]:
    return tuple(parse(s) for s in ROLE_CEILINGS.get(role, ()))


def patient_grant(requested: str | None) -> tuple[Scope, ...]:
    """The scopes for a patient's token (``PATIENT_CEILING``, or the part of it asked for)."""
    limit = tuple(parse(s) for s in PATIENT_CEILING)
    if requested is None or not requested.strip():
        return merge(limit)
    wanted = [parse(text) for text in requested.split()]
    if not all(within(limit, scope) for scope in wanted):
        raise ScopeError("a requested scope is beyond what a patient may be granted")
    return merge(wanted)


def grant(role: str, requested: str | None) -> tuple[Scope, ...]:
    """The scopes to grant ``role`` for the ``scope`` parameter of a token request.

    Raises ``ScopeError`` when a scope is malformed or beyond the role's ceiling.
    """
    limit = ceiling(role)
    if not limit:
        raise ScopeError("this role may not be granted any scope")
    if requested is None or not requested.strip():
        return merge(limit)
    wanted = [parse(text) for text in requested.split()]
    for scope in wanted:
        if not within(limit, scope):
            raise ScopeError("a requested scope is beyond what the client's role may be granted")
    return merge(wanted)


def to_string(scopes: Iterable[Scope]) -> str:
    return " ".join(str(s) for s in scopes)


@lru_cache(maxsize=1024)
def _held(scopes: frozenset[str]) -> tuple[Scope, ...]:
    parsed = []
    for text in scopes:
        try:
            parsed.append(parse(text))
        except ScopeError:
            continue  # a scope we do not understand grants nothing
    return tuple(parsed)


def covers(scopes: frozenset[str], required: Scope) -> bool:
    """Whether a caller holding ``scopes`` (strings, from its token) may do ``required``. A
    ``patient/`` scope meets a ``system/`` requirement: the decision confines it (docstring)."""
    held = tuple(Scope(s.resource, s.permissions, required.context) for s in _held(scopes))
    return within(held, required)


def all_scopes() -> list[str]:
    """Every scope some role can be granted (``scopes_supported`` in the SMART configuration)."""
    return sorted({s for ceiling_ in ROLE_CEILINGS.values() for s in ceiling_})


class ScopeCheck:
    """An authenticated caller holding every required scope (and, when roles are given, one of
    those roles); otherwise 403 (RFC 6750 section 3.1, ``insufficient_scope``).

    A FastAPI dependency (``Depends(check)``); the hot routes, which take no dependencies
    (``gateway.access.service.family_service``), ask ``await check.caller(request)`` instead:
    the same checks in the same order, authentication first.
    """

    def __init__(self, *required: str, roles: Iterable[str] | None = None) -> None:
        self.needed = tuple(parse(text) for text in required)  # a typo fails at import
        self.roles = frozenset(roles) if roles is not None else None

    async def __call__(self, caller: Principal = Depends(authenticate)) -> Principal:  # noqa: B008
        return self.checked(caller)

    async def caller(self, request: Request) -> Principal:
        return self.checked(await authenticate(request))

    def checked(self, caller: Principal) -> Principal:
        if self.roles is not None and caller.role not in self.roles:
            raise Forbidden("wrong-role: this interaction is not open to the caller's role")
        missing = [scope for scope in self.needed if not covers(caller.scopes, scope)]
        if missing:
            raise InsufficientScope(to_string(missing))
        return caller


def require_scopes(*required: str, roles: Iterable[str] | None = None) -> ScopeCheck:
    """``PrescriberWrite = Annotated[Principal, Depends(require_scopes("system/MedicationRequest.c",
    roles={"prescriber"}))]``"""
    return ScopeCheck(*required, roles=roles)
