"""Where a prescription names its prescriber: the NIHDI number behind ``requester`` (RX-19, ID-20).

Three shapes are accepted. The first is the gateway's original one; the others are how the hl7-be
medication guide's examples name the prescriber (a contained PractitionerRole whose
``practitioner`` carries the NIHDI identifier):

- ``requester.identifier``: the NIHDI number itself;
- ``requester.reference = "#id"`` to a contained Practitioner with an NIHDI identifier;
- ``requester.reference = "#id"`` to a contained PractitionerRole with the NIHDI number on
  itself, on ``practitioner.identifier``, or on a contained Practitioner that
  ``practitioner.reference`` names.

Only identifiers in an NIHDI naming system count (generic or professional, ID-20; legacy aliases
folded in by ``normalise_system``, ID-22); a Practitioner's SSIN or local ids are ignored. The
gateway checks what it can see and fails closed on the rest: a reference outside the prescription
(``Practitioner/12``, an absolute URL), a reference to no contained resource, a resource without an
NIHDI number and NIHDI numbers that disagree are all refused. Whether the number found is valid and
belongs to a prescriber is ``rules.parties.rule_requester``; whether it is the caller's own is the
access decision (RX-5, ``consent``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles._json import canonical_system, items, obj, text
from fhir_profiles.issues import Issue

_MR: Final = "MedicationRequest"
_REQUESTER: Final = "MedicationRequest.requester"
# ID-20/ID-22: the generic NIHDI system is accepted for a prescriber too (the legacy
# nihdi-practitioner alias is folded into nihdi-professional by normalise_system).
PRESCRIBER_SYSTEMS: Final = frozenset({systems.NIHDI_PROFESSIONAL, systems.NIHDI})
_PRACTITIONER: Final = "Practitioner"
_ROLE: Final = "PractitionerRole"


@dataclass(frozen=True)
class NihdiFound:
    """The prescriber's NIHDI number as sent, and the FHIRPath of that value."""

    value: Any  # as sent: the rule reports a missing or non-string value at ``path``
    path: str


def locate_prescriber(body: Mapping[str, Any]) -> NihdiFound | Issue:
    """The prescriber's NIHDI number, or the one issue that keeps the gateway from finding it."""
    requester = obj(body.get("requester"))
    if requester is None:
        return Issue("required", _REQUESTER, "the prescriber is required", "RX-19")
    identifier = obj(requester.get("identifier"))
    direct = None if identifier is None else _direct(identifier)
    if requester.get("reference") is None:
        if direct is None:
            message = (
                "identify the prescriber by an NIHDI identifier or by a reference to a contained "
                "Practitioner or PractitionerRole"
            )
            return Issue("required", f"{_REQUESTER}.identifier", message, "RX-19")
        return direct
    referenced = _referenced(body, requester.get("reference"), f"{_REQUESTER}.reference")
    if isinstance(referenced, Issue):
        return referenced
    index, resource = referenced
    found = _nihdi_of(body, resource, index, (_PRACTITIONER, _ROLE), f"{_REQUESTER}.reference")
    if isinstance(found, Issue) or direct is None:
        return found
    # FHIR Reference: when both are given they SHALL be consistent.
    if isinstance(direct, Issue):
        return direct
    if direct.value != found.value:
        message = "the requester's identifier and the resource it references differ"
        return Issue("invariant", direct.path, message, "RX-19")
    return found


def _direct(identifier: Mapping[str, Any]) -> NihdiFound | Issue:
    """Today's shape: ``requester.identifier`` in an NIHDI naming system."""
    if canonical_system(identifier) not in PRESCRIBER_SYSTEMS:
        message = "the prescriber identifier must use the NIHDI professional naming system"
        return Issue("value", f"{_REQUESTER}.identifier.system", message, "ID-20")
    return NihdiFound(identifier.get("value"), f"{_REQUESTER}.identifier.value")


def _referenced(
    body: Mapping[str, Any], reference: Any, path: str
) -> tuple[int, dict[str, Any]] | Issue:
    """The contained resource a local reference (``#id``) names, with its index."""
    ref = text(reference)
    if ref is None or not ref.startswith("#"):
        message = (
            "the gateway cannot check a reference outside the prescription: contain the "
            "Practitioner or PractitionerRole, or give the NIHDI identifier"
        )
        return Issue("not-supported", path, message, "RX-19")
    matches = [
        (i, resource)
        for i, raw in enumerate(items(body.get("contained")))
        if (resource := obj(raw)) is not None and resource.get("id") == ref[1:]
    ]
    if not matches:
        return Issue("invariant", path, "the reference names no contained resource", "RX-19")
    if len(matches) > 1:
        message = "several contained resources have the referenced id"
        return Issue("invariant", path, message, "RX-19")
    return matches[0]


def _nihdi_of(
    body: Mapping[str, Any],
    resource: Mapping[str, Any],
    index: int,
    allowed: tuple[str, ...],
    reference_path: str,
) -> NihdiFound | Issue:
    """The NIHDI number a contained Practitioner or PractitionerRole carries."""
    kind = resource.get("resourceType")
    if kind not in allowed:
        message = f"the prescriber must be a {' or a '.join(allowed)}"
        return Issue("value", reference_path, message, "RX-19")
    path = f"{_MR}.contained[{index}]"
    found = _nihdi_identifiers(resource.get("identifier"), f"{path}.identifier")
    if kind == _PRACTITIONER:
        message = "the Practitioner carries no NIHDI identifier"
        return _one(found, Issue("required", f"{path}.identifier", message, "RX-19"))
    practitioner = obj(resource.get("practitioner")) or {}
    practitioner_path = f"{path}.practitioner"
    identifier = obj(practitioner.get("identifier"))
    if identifier is not None and canonical_system(identifier) in PRESCRIBER_SYSTEMS:
        found.append(NihdiFound(identifier.get("value"), f"{practitioner_path}.identifier.value"))
    if practitioner.get("reference") is not None:
        reference_path = f"{practitioner_path}.reference"
        referenced = _referenced(body, practitioner.get("reference"), reference_path)
        if isinstance(referenced, Issue):
            return referenced
        k, contained = referenced
        behind = _nihdi_of(body, contained, k, (_PRACTITIONER,), reference_path)
        if isinstance(behind, Issue):
            return behind
        found.append(behind)
    message = "the PractitionerRole names no practitioner with an NIHDI number"
    return _one(found, Issue("required", f"{practitioner_path}.identifier", message, "RX-19"))


def _nihdi_identifiers(raw: Any, path: str) -> list[NihdiFound]:
    return [
        NihdiFound(identifier.get("value"), f"{path}[{j}].value")
        for j, item in enumerate(items(raw))
        if (identifier := obj(item)) is not None
        and canonical_system(identifier) in PRESCRIBER_SYSTEMS
    ]


def _one(found: list[NihdiFound], missing: Issue) -> NihdiFound | Issue:
    """One prescriber: the same number wherever it is repeated, never two different ones."""
    if not found:
        return missing
    for other in found[1:]:
        if other.value != found[0].value:
            message = "the prescriber's NIHDI numbers disagree"
            return Issue("invariant", other.path, message, "RX-19")
    return found[0]
