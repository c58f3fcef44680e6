"""Who may see attestations: the provider who sent them, the patient they are about, operators.

eAttest needs no therapeutic relationship (CO-9): a claim is the provider's own record of care it
gave and billed, so the rule is authorship (``consent.policy`` decides claims the same way:
``permit-author``, ``permit-patient-self``), not the consent decision. Care providers call with the
``prescriber`` role until a care-provider role exists (docs/claims.md). A patient (a portal token,
PO-4) sees the claims about themself and the funds' answers to them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from consent import same_provider
from gateway.auth.identity import Principal
from gateway.storage.persons import provider_match
from gateway.storage.store import Criteria, StoredVersion

PERMIT_AUTHOR = "permit-author"
PERMIT_PATIENT_SELF = "permit-patient-self"
PERMIT_ADMIN = "permit-admin"
NOT_AUTHOR = "not-author"
NOT_OWN_DATA = "not-own-data"
WRONG_ROLE = "wrong-role"


def patient_of(resource: dict[str, Any]) -> str | None:
    """The SSIN a Claim or ClaimResponse is about (``patient.identifier.value``), if any."""
    identifier = (resource.get("patient") or {}).get("identifier") or {}
    value = identifier.get("value")
    return value if isinstance(value, str) else None


def read_decision(caller: Principal, stored: StoredVersion) -> tuple[bool, str]:
    """(permit, reason code) for reading one Claim or ClaimResponse."""
    if caller.role == "admin":
        return True, PERMIT_ADMIN
    if caller.role == "patient":
        if caller.ssin is not None and patient_of(stored.json()) == caller.ssin:
            return True, PERMIT_PATIENT_SELF
        return False, NOT_OWN_DATA
    if same_provider(stored.author_nihdi, caller.nihdi, caller.role):  # a prescriber: the person
        return True, PERMIT_AUTHOR
    return False, NOT_AUTHOR


def narrow_search(caller: Principal, criteria: Criteria) -> tuple[Criteria | None, str]:
    """The search confined to what the caller may see, with the reason; ``None``: refused."""
    if caller.role == "admin":
        return criteria, PERMIT_ADMIN
    if caller.role == "patient":
        if caller.ssin is None:
            return None, WRONG_ROLE
        if criteria.patient_ssin not in (None, caller.ssin):
            return None, NOT_OWN_DATA
        return replace(criteria, patient_ssin=caller.ssin), PERMIT_PATIENT_SELF
    if caller.nihdi:
        return replace(
            criteria, author_nihdi=provider_match(caller.role, caller.nihdi)
        ), PERMIT_AUTHOR
    return None, WRONG_ROLE
