"""Interim access rules for prescriptions, by role only.

The full decision (consent, therapeutic relationship, exclusions, visibility: DESIGN.md 5) belongs to
``consent/`` in the access issue and replaces these checks; until then the rules here are the
strictest ones that still let each role do its job, and every unknown case is a refusal.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.auth.identity import Principal
from gateway.errors import Forbidden
from gateway.storage.store import Criteria, StoredVersion


def check_requester_is_caller(caller: Principal, requester_nihdi: str) -> None:
    """A prescriber writes prescriptions in their own name only (DESIGN.md 4, OAuth issue)."""
    if not caller.nihdi or caller.nihdi != requester_nihdi:
        raise Forbidden("not-author: requester must be the authenticated prescriber")


def may_see_conditional_match(caller: Principal, stored: StoredVersion) -> bool:
    return caller.nihdi is not None and stored.author_nihdi == caller.nihdi


def check_read(caller: Principal, stored: StoredVersion) -> None:
    if caller.role == "admin":
        return
    if caller.role == "prescriber" and caller.nihdi and stored.author_nihdi == caller.nihdi:
        return
    if caller.role == "pharmacist":
        # RX-17: a pharmacy holding the RID (or its id) may fetch that one prescription.
        return
    raise Forbidden("not-author: only the author reads this prescription for now")


def narrow_search(caller: Principal, criteria: Criteria) -> Criteria:
    if caller.role == "admin":
        return criteria
    if caller.role == "prescriber" and caller.nihdi:
        return replace(criteria, author_nihdi=caller.nihdi)
    if caller.role == "pharmacist":
        if criteria.identifier is None and criteria.patient_ssin is None:
            raise Forbidden("wrong-role: a pharmacy searches by RID or by patient")
        return criteria
    raise Forbidden("wrong-role: this role cannot search prescriptions")
